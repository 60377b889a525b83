"""The application's entry point to litejobs: adapters, queues, job definitions, schedulers."""

from __future__ import annotations

import dataclasses
import json
import logging
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, overload

from .adapters.base import Adapter, JobRecord, JobState, NewJob
from .bounds import check_whole
from .clock import Clock
from .config import WorkerConfig
from .errors import (
    ConfigurationError,
    JobNotFoundError,
    UnimportableJobError,
    UnknownAdapterError,
    ValidationError,
)
from .hooknames import HOOK_NAMES, Hook
from .job import Job, RetrySpec
from .recurring import Recurring, Ticker, check_cron, parse_timezone
from .retention import STATS_KEEP, Keep, Retention, keep_seconds
from .retry import RetryPolicy, as_policy
from .scheduling import (
    JobRef,
    Wait,
    build_job_batch,
    build_new_job,
    check_max_attempts,
    check_max_runtime,
    check_priority,
    check_queue,
    check_unique_for,
    check_unique_states,
    resolve_job_ref,
)

#: The options ``@jobs.job(...)`` / ``jobs.create_job(...)`` take besides hooks.
JOB_OPTIONS = (
    "queue",
    "priority",
    "max_attempts",
    "max_runtime",
    "retry",
    "unique_for",
    "unique_states",
    "keep_result",
    "keep_succeeded",
    "keep_failed",
    "name",
    "adapter",
    "cron",
    "timezone",
)

if TYPE_CHECKING:  # the runtime is imported by worker(): listing or enqueueing never needs it
    from .worker import Worker, WorkerStats


class Scheduler:
    """``later(job, args, wait=..., wait_until=..., queue=..., priority=...) -> job id``.

    Per call: ``max_attempts``, ``max_runtime`` (s or a timedelta), ``retry`` (a list of
    intervals or a :class:`~litejobs.retry.RetryPolicy` without a function: stored with the
    job), ``unique_key`` / ``unique=True``, ``unique_for`` and ``unique_states``.
    """

    def __init__(self, manager: JobManager, adapter: Adapter, name: str | None = None) -> None:
        self.manager = manager
        self._adapter = adapter
        self._adapter_name = name

    @property
    def adapter(self) -> Adapter:
        """Looked up by name on each call, so ``litejobs.testing`` can swap in a temp database."""
        if self._adapter_name is None:
            return self._adapter
        return self.manager.adapters.get(self._adapter_name, self._adapter)

    def __call__(
        self,
        job: JobRef,
        args: Sequence[Any] | None = None,
        *,
        kwargs: Mapping[str, Any] | None = None,
        wait: Wait | None = None,
        wait_until: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        max_attempts: int | None = None,
        unique_key: str | None = None,
        unique: bool = False,
        max_runtime: float | timedelta | None = None,
        retry: RetryPolicy | Sequence[float] | None = None,
        unique_for: float | timedelta | None = None,
        unique_states: Sequence[JobState] | None = None,
        keep_result: bool | None = None,
    ) -> int:
        new = self.build(
            job,
            args,
            kwargs=kwargs,
            wait=wait,
            wait_until=wait_until,
            queue=queue,
            priority=priority,
            max_attempts=max_attempts,
            unique_key=unique_key,
            unique=unique,
            max_runtime=max_runtime,
            retry=retry,
            unique_for=unique_for,
            unique_states=unique_states,
            keep_result=keep_result,
        )
        if self.manager.inline is not None:  # litejobs.testing.inline(): run it now instead
            return self.manager.inline(new)
        return self.adapter.enqueue(new)

    def build(self, job: JobRef, args: Sequence[Any] | None = None, **options: Any) -> NewJob:
        """Validate one request without storing it."""
        return build_new_job(
            job, args, now=self.adapter.clock.now(), allowed_queues=self.manager.queues, **options
        )

    def many(
        self,
        calls: Iterable[tuple[JobRef, Sequence[Any] | None] | JobRef],
        **options: Any,
    ) -> list[int]:
        """Schedule many jobs in one transaction (all or nothing); returns their ids.

        Each item is ``(job, args)`` or just ``job``; ``options`` apply to every item.
        """
        rows = build_job_batch(
            calls, now=self.adapter.clock.now(), allowed_queues=self.manager.queues, **options
        )
        if self.manager.inline is not None:  # litejobs.testing.inline(): run them now
            # Every row built before the first job runs (a job could change later arguments).
            return [self.manager.inline(row) for row in list(rows)]
        return self.adapter.enqueue_many(rows)


class JobManager:
    """Holds adapters, declared queues, worker groups and job definitions.

    ``queues=None`` accepts any queue name; a list makes scheduling to any other queue an
    :class:`~litejobs.errors.UnknownQueueError`. ``queue_limits={"email": 2}``: at most that many
    of a queue's jobs held (reserved or running) at once, across every worker and host; the
    workers of this app write them to storage when they start (``None`` removes a limit).
    ``keep_succeeded`` / ``keep_failed``: how long finished jobs are kept (a ``timedelta`` or
    seconds; ``None``: the worker groups' ``delete_*`` settings), unless a job says otherwise
    (:mod:`litejobs.retention`); cancelled jobs are kept like failed ones. ``keep_stats``: how
    long per-minute outcome statistics are kept (their totals stay).
    """

    def __init__(
        self,
        adapters: Mapping[str, Adapter] | None = None,
        queues: Sequence[str] | None = None,
        logger: logging.Logger | None = None,
        workers: Sequence[WorkerConfig] | None = None,
        *,
        clock: Clock | None = None,
        queue_limits: Mapping[str, int | None] | None = None,
        keep_succeeded: Keep = None,
        keep_failed: Keep = None,
        keep_stats: Keep = STATS_KEEP,
    ) -> None:
        if adapters is None:
            from .adapters import adapter_for_url

            adapters = {"default": adapter_for_url(None)}
        if not adapters:
            raise ConfigurationError("JobManager needs at least one adapter")
        from .location import check_agrees

        check_agrees(adapters)  # no silent split between LITEJOBS_DB and the app's storage
        self.adapters: dict[str, Adapter] = dict(adapters)
        if clock is not None:
            for adapter in self.adapters.values():
                adapter.clock = clock
        self.default_retention = Retention(
            keep_seconds(keep_succeeded, "keep_succeeded"),
            keep_seconds(keep_failed, "keep_failed"),
        )
        self.keep_stats = keep_seconds(keep_stats, "keep_stats") or 0.0
        self.queues: list[str] | None = list(queues) if queues is not None else None
        if self.queues is not None:
            for queue in self.queues:
                check_queue(queue, None)
        self.logger = logger or logging.getLogger("litejobs")
        #: Given explicitly: then it is also the logger of worker groups without their own.
        self.own_logger = logger is not None
        self.workers: list[WorkerConfig] = list(workers) if workers else [WorkerConfig()]
        for config in self.workers:
            self.adapter(config.adapter)  # validate names early
            for queue in config.queues or ():
                check_queue(queue, self.queues)
        self.queue_limits: dict[str, int | None] = {
            check_queue(queue, self.queues): _check_limit(queue, limit)
            for queue, limit in (queue_limits or {}).items()
        }
        self.jobs: dict[str, Job] = {}
        self.hooks: dict[str, list[Hook]] = {name: [] for name in HOOK_NAMES}
        self.schedules: dict[str, Recurring] = {}
        #: Set by :func:`litejobs.testing.inline`: ``later()`` hands the job to it instead.
        self.inline: Callable[[NewJob], int] | None = None

    # -- adapters ---------------------------------------------------------------------------
    def adapter(self, name: str | None = None) -> Adapter:
        """The named adapter; with no name, the only one (ambiguous if there are several)."""
        if name is None:
            if len(self.adapters) == 1:
                return next(iter(self.adapters.values()))
            raise UnknownAdapterError(
                f"several adapters ({', '.join(self.adapters)}); name one with adapter=..."
            )
        try:
            return self.adapters[name]
        except KeyError:
            raise UnknownAdapterError(
                f"unknown adapter {name!r}; known: {', '.join(self.adapters)}"
            ) from None

    # -- defining jobs ----------------------------------------------------------------------
    @overload
    def job(self, func: Callable[..., Any], /) -> Job: ...
    @overload
    def job(self, func: None = None, /, **options: Any) -> Callable[[Callable[..., Any]], Job]: ...

    def job(
        self, func: Callable[..., Any] | None = None, /, **options: Any
    ) -> Job | Callable[[Callable[..., Any]], Job]:
        """Decorator: ``@jobs.job`` or ``@jobs.job(queue="email", priority=1, max_attempts=5,
        max_runtime=30, retry=[10, 60], unique_for=3600)``; see :meth:`create_job`."""
        if func is not None:
            return self.create_job(perform=func, **options)
        return lambda f: self.create_job(perform=f, **options)

    def create_job(
        self,
        *,
        perform: Callable[..., Any],
        queue: str = "default",
        priority: int = 50,
        max_attempts: int | None = None,
        name: str | None = None,
        adapter: str | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        max_runtime: float | timedelta | None = None,
        retry: RetrySpec | None = None,
        unique_for: float | timedelta | None = None,
        unique_states: Sequence[JobState] | None = None,
        keep_result: bool = False,
        keep_succeeded: Keep = None,
        keep_failed: Keep = None,
        **hooks: Hook | Sequence[Hook],
    ) -> Job:
        """Register ``perform`` as a job with its defaults (validated now, not at first use).

        ``max_runtime``: its own hard timeout (s or a timedelta), stored with each job;
        ``retry``: its own :class:`~litejobs.retry.RetryPolicy`, a list of intervals or a
        function ``attempts -> seconds``; ``unique_for``: enqueues of the same function and
        arguments within that time return the first job (``unique_states``: which finished
        states also hold the key; default succeeded). Per call, ``later(...)`` overrides them.
        ``keep_result=True`` stores its return value for :meth:`result`; ``keep_succeeded`` /
        ``keep_failed`` keep its finished row that long (over the manager's rule).
        """
        self._check_job_options(hooks, queue, priority, max_attempts, adapter)
        kept = keep_seconds(keep_succeeded, "keep_succeeded")
        if keep_result is not True and keep_result is not False:
            raise ConfigurationError(f"keep_result must be True or False, got {keep_result!r}")
        if keep_result and kept == 0:
            raise ConfigurationError(
                "keep_result=True needs its success kept: drop keep_succeeded=0, or give a period"
            )
        job = Job(
            func=perform,
            queue=queue,
            priority=priority,
            max_attempts=max_attempts,
            name=name or "",
            adapter=adapter,
            keep_result=keep_result,
            keep_succeeded=kept,
            keep_failed=keep_seconds(keep_failed, "keep_failed"),
            hooks={k: [v] if callable(v) else list(v) for k, v in hooks.items()},
            max_runtime=None if max_runtime is None else check_max_runtime(max_runtime),
            retry=None if retry is None else _policy(retry),
            unique_for=None if unique_for is None else check_unique_for(unique_for),
            unique_states=None if unique_states is None else check_unique_states(unique_states),
        )
        # A job in a script run as __main__ can still be defined and performed inline;
        # scheduling it will say why no worker could run it.
        with suppress(UnimportableJobError):
            self.jobs[job.path] = job
            _DECLARED[job.path] = self
        if cron is not None:
            self.recurring(job, cron=cron, timezone=timezone)
        elif timezone is not None:
            raise ConfigurationError("timezone= only applies with cron=...")
        return job

    def _check_job_options(
        self,
        hooks: Mapping[str, Any],
        queue: str,
        priority: int,
        max_attempts: int | None,
        adapter: str | None,
    ) -> None:
        unknown = set(hooks) - set(HOOK_NAMES)
        if unknown:
            raise ConfigurationError(
                f"unknown job option(s) {', '.join(sorted(unknown))}; the options are "
                f"{', '.join(JOB_OPTIONS)}, and the hooks {', '.join(HOOK_NAMES)}"
            )
        check_queue(queue, self.queues)
        check_priority(priority)
        if max_attempts is not None:
            check_max_attempts(max_attempts)
        if adapter is not None:
            self.adapter(adapter)

    def recurring(
        self,
        job: JobRef,
        *,
        cron: str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        timezone: str | tzinfo | None = None,
        name: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        max_attempts: int | None = None,
        adapter: str | None = None,
        unique: bool = False,
    ) -> Recurring:
        """Enqueue ``job(*args, **kwargs)`` at every tick of ``cron`` (in ``timezone``, UTC
        by default). Each tick runs once, whatever the number of workers; see
        :mod:`litejobs.recurring` for the catch-up rule. ``name`` (default: the job's path)
        keys the schedule in the database; ``unique=True`` skips a tick while the previous
        run is still pending or running.
        """
        new = build_new_job(
            job,
            args,
            kwargs,
            now=0.0,
            queue=queue,
            priority=priority,
            max_attempts=max_attempts,
            unique=unique,
            allowed_queues=self.queues,
        )
        if adapter is None and isinstance(job, Job):
            adapter = job.adapter
        if adapter is not None:
            self.adapter(adapter)
        path = json.loads(new.handler)["path"]
        key = name or path
        if key in self.schedules:
            raise ConfigurationError(
                f"a recurring schedule named {key!r} already exists; give each one a name=..."
            )
        schedule = Recurring(
            name=key,
            cron=check_cron(cron),
            job=new,
            timezone=parse_timezone(timezone),
            adapter=adapter,
        )
        self.schedules[key] = schedule
        return schedule

    def ticker(self, adapter: str | None = None) -> Ticker | None:
        """The recurring schedules of one adapter, ready for a worker (``None`` if none)."""
        names = list(self.adapters)
        default = names[0] if len(names) == 1 else None
        chosen = adapter or default
        mine = [s for s in self.schedules.values() if (s.adapter or default) == chosen]
        if not mine:
            return None
        return Ticker(self.adapter(adapter), mine, log=self.logger)

    def hook(self, name: str) -> Callable[[Hook], Hook]:
        """Register a global lifecycle hook: ``@jobs.hook("after_failure")``."""
        if name not in HOOK_NAMES:
            raise ConfigurationError(f"unknown hook {name!r}; use one of {', '.join(HOOK_NAMES)}")

        def register(fn: Hook) -> Hook:
            self.hooks[name].append(fn)
            return fn

        return register

    def job_hooks(self, path: str) -> Mapping[str, Sequence[Hook]]:
        job = self.jobs.get(path)
        return job.hooks if job is not None else {}

    def job_retry(self, path: str) -> RetryPolicy | None:
        """The retry policy of the job declared at ``path`` (its decorator's), if it has one."""
        job = self.jobs.get(path)
        return job.retry if job is not None else None

    # -- job control ------------------------------------------------------------------------
    def cancel(self, job_id: int, *, adapter: str | None = None) -> JobState:
        """Cancel a job: one that has not started never starts; a running one is stopped by
        its worker within about a second (its ``after_cancel`` hooks run there). Returns the
        state the job was in (``failed``, ``succeeded``, ``cancelled``: finished, nothing was
        done); an unknown id is a :class:`~litejobs.errors.JobNotFoundError`."""
        state = self.adapter(adapter).cancel(job_id)  # the adapter checks the id
        if state is None:
            raise JobNotFoundError(f"no job with id {job_id}; `litejobs list` shows the ids")
        return state

    def pause(self, queue: str, *, adapter: str | None = None) -> bool:
        """No worker on any host claims ``queue``'s jobs until :meth:`resume` (running jobs
        finish); stored, so it outlives restarts. ``False``: it was paused already."""
        return self.adapter(adapter).pause(check_queue(queue, self.queues))

    def resume(self, queue: str, *, adapter: str | None = None) -> bool:
        """Let workers claim ``queue``'s jobs again. ``False``: it was not paused."""
        return self.adapter(adapter).resume(check_queue(queue, self.queues))

    def retention(self, path: str) -> Retention:
        """What is kept of job ``path`` once it finishes: its own rule over the manager's."""
        job = self.jobs.get(path)
        if job is None:
            return self.default_retention
        own = Retention(job.keep_succeeded, job.keep_failed, job.keep_result)
        return own.over(self.default_retention)

    # -- history and results ----------------------------------------------------------------
    def get(self, job_id: int, *, adapter: str | None = None) -> JobRecord:
        """The stored job (state, attempts, times, error, result), finished ones included while
        they are kept. A missing id raises :class:`~litejobs.errors.JobDeletedError` when the
        job was there and is gone, :class:`~litejobs.errors.JobNotFoundError` when it never
        was."""
        return self.adapter(adapter).require(job_id)

    def result(
        self, job_id: int, *, timeout: float | None = None, adapter: str | None = None
    ) -> Any:
        """The return value of job ``job_id``, waiting up to ``timeout`` seconds (``None``: as
        long as it takes) for it to finish. Raises the job's error if it failed for good
        (:class:`~litejobs.errors.JobFailedError`), a
        :class:`~litejobs.errors.ResultTimeoutError` if it is not done in time, and a
        :class:`~litejobs.errors.ResultUnavailableError` if no result is kept for it."""
        from .results import wait_for_result

        def keeps(record: JobRecord) -> bool:
            return record.keep_result or self.retention(record.path).keep_result

        return wait_for_result(self.adapter(adapter), job_id, timeout=timeout, keeps=keeps)

    # -- scheduling -------------------------------------------------------------------------
    def create_scheduler(self, adapter: str | None = None) -> Scheduler:
        """A ``later`` function bound to one adapter."""
        if adapter is None and len(self.adapters) == 1:
            adapter = next(iter(self.adapters))
        return Scheduler(self, self.adapter(adapter), adapter)

    # -- running in this process ------------------------------------------------------------
    def worker(
        self, config: WorkerConfig | None = None, *, worker_id: int | None = None, **kwargs: Any
    ) -> Worker:
        """A :class:`Worker` for ``config`` (default: the first worker group).

        ``worker_id``: run as ``litejobs-worker.<queues>.<id>`` exactly (refused while a live
        worker has that name); without it, the worker takes the first free id when it starts,
        so a worker from Python never takes the name of one a ``litejobs work`` runs.
        """
        from .worker import Worker  # the runtime: listing or enqueueing never needs it

        config = config or self.workers[0]
        if config.logger is None and self.own_logger:  # WorkerConfig.logger or the manager's
            config = dataclasses.replace(config, logger=self.logger)
        return Worker(
            self.adapter(config.adapter),
            config,
            worker_id=worker_id,
            hooks=self.hooks,
            job_hooks=self.job_hooks,
            job_retry=self.job_retry,
            queue_limits=self.queue_limits,
            retention=self.retention,
            keep_stats=self.keep_stats,
            ticker=kwargs.pop("ticker", None) or self.ticker(config.adapter),
            **kwargs,
        )

    def workoff(self, config: WorkerConfig | None = None, **kwargs: Any) -> WorkerStats:
        """Run every job eligible now in this process (under a free worker name), then return
        what happened."""
        return self.worker(config, **kwargs).run(workoff=True)


def _check_limit(queue: str, limit: Any) -> int | None:
    if limit is None:
        return None
    try:
        return check_whole(limit, f"queue_limits[{queue!r}]", 1, 2**31 - 1)
    except ValidationError as exc:
        raise ConfigurationError(str(exc)) from None


def _policy(retry: RetrySpec) -> RetryPolicy:
    """The decorator's retry policy, checked now (a bad list fails at import, not at 3 a.m.)."""
    return as_policy(retry)


def declared_scheduler(job: JobRef, *, check_import: bool = True) -> Scheduler | None:
    """The ``later`` of the manager that declares ``job`` (``@jobs.job``), if one does.

    A job declared on a manager is stored where that manager stores it, whichever door it
    comes through (``litejobs.enqueue("myapp.jobs:f")``, ``litejobs enqueue``): its queue and
    adapter are the manager's. ``None`` for plain functions, for paths not imported
    (``check_import=False``), and when the manager has several adapters and the job names none.
    """
    _, path, definition = resolve_job_ref(job, check_import=check_import)
    manager = _DECLARED.get(path) if definition is not None else None
    if manager is None or definition is None:
        return None
    if definition.adapter is None and len(manager.adapters) != 1:
        return None
    return manager.create_scheduler(definition.adapter)


#: Which manager declared each job path (``@jobs.job``); weak, so a manager is never kept
#: alive by it. Kept here, not on the :class:`Job`, which sits a layer below the manager.
_DECLARED: weakref.WeakValueDictionary[str, JobManager] = weakref.WeakValueDictionary()
