"""Helpers for testing an application that uses litejobs, in the application's own test suite.

::

    from litejobs.testing import temp_jobs
    from myapp.jobs import jobs, send_welcome_email, later

    def test_signup_sends_a_welcome_email(tmp_path):
        with temp_jobs(jobs, tmp_path) as tj:
            signup("ada@example.com")                       # calls later(send_welcome_email, ...)
            tj.assert_enqueued(send_welcome_email, args=[42])
            stats = tj.drain()                              # runs it (and its retries), now
            assert stats.succeeded == 1

:func:`temp_jobs` points the application's own :class:`~litejobs.JobManager` (and every ``later``
made from it, even at import time) at a fresh SQLite file driven by a
:class:`~litejobs.FakeClock`, and puts everything back afterwards. Jobs run through the real
worker code -- JSON arguments, hooks, retries -- with the settings of the worker group that would
run them in production (:func:`serving_group`), so a test sees what production would.
:func:`inline` is the other style: ``later()`` runs the job at once, in the caller.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .adapters.base import ACTIVE_STATES, Adapter, ClaimedJob, JobRecord, NewJob
from .adapters.sqlite import SQLiteAdapter
from .clock import FakeClock
from .config import WorkerConfig
from .errors import ConfigurationError
from .executor import Executor
from .handler import decode_handler
from .manager import JobManager, Scheduler
from .scheduling import JobRef, resolve_job_ref
from .worker import WorkerStats

__all__ = [
    "DrainError",
    "InlineRun",
    "JobsHarness",
    "inline",
    "jobs_fixture",
    "serving_group",
    "temp_jobs",
]


class DrainError(AssertionError):
    """``drain()`` kept finding work (a job that schedules itself again and again, say), or found
    a due job that no worker group serves (production would never run it)."""


def serving_group(
    workers: Sequence[WorkerConfig], queue: str, adapter: str | None = None
) -> WorkerConfig | None:
    """The worker group whose settings a job of ``queue`` runs with: the first group that names
    the queue, else the first that takes every queue (``"*"``); ``None`` if no group serves it.

    A group dedicated to a queue is the one meant to run it; where a ``"*"`` group runs too,
    production may hand it some of those jobs, and a test cannot follow both. ``adapter``
    (a name) leaves out groups bound to another adapter.
    """
    mine = [w for w in workers if adapter is None or w.adapter in (None, adapter)]
    named = next((w for w in mine if w.queues is not None and queue in w.queues), None)
    return named or next((w for w in mine if w.queues is None), None)


@dataclass
class JobsHarness:
    """A manager on a temporary database with a fake clock; see :func:`temp_jobs`."""

    manager: JobManager
    clock: FakeClock
    adapters: dict[str, Adapter]

    @property
    def adapter(self) -> Adapter:
        """The temporary adapter (the only one, or the first of several)."""
        return next(iter(self.adapters.values()))

    @property
    def later(self) -> Scheduler:
        """A scheduler on the (first) temporary adapter."""
        return self.manager.create_scheduler(next(iter(self.adapters)))

    def advance(self, seconds: float | timedelta) -> None:
        """Move the fake clock forward (nothing runs until :meth:`drain`)."""
        self.clock.advance(_seconds(seconds))

    # -- running ----------------------------------------------------------------------------
    def drain(
        self, within: float | timedelta | None = None, *, max_rounds: int = 1000
    ) -> WorkerStats:
        """Run every job that is due, then jump the clock to the next scheduled one, and so on.

        Waits and retry backoffs are jumped over however long they are. Recurring ticks are
        only followed with ``within`` (seconds or a timedelta): then the clock moves at most
        that far, and ends exactly there. Returns what the workers did (``succeeded``,
        ``errored``, ``failed``, ``errors``). Raises :class:`DrainError` after ``max_rounds``
        rounds that kept finding new work.
        """
        limit = None if within is None else self.clock.now() + _seconds(within)
        total = WorkerStats()
        for _ in range(max_rounds):
            total.merge(self._work_round())
            target = self._next_due(recurring=limit is not None)
            if target is None or (limit is not None and target > limit):
                if limit is not None and self.clock.now() < limit:
                    self.clock.set(limit)
                    total.merge(self._work_round())
                return total
            self.clock.set(max(target, self.clock.now()))
        raise DrainError(
            f"drain() still found work after {max_rounds} rounds (clock now "
            f"{datetime.fromtimestamp(self.clock.now()).isoformat()}); does a job keep "
            "scheduling itself? pass within=... to bound it"
        )

    def _work_round(self) -> WorkerStats:
        """Each adapter's due ticks, then each worker group's due jobs, with that group's
        settings (attempts, timeout, what is kept), as production would run them."""
        total = WorkerStats()
        for name, adapter in self.adapters.items():
            ticker = self.manager.ticker(name)
            if ticker is not None:
                ticker.run()
            for config in self._groups(name, adapter):
                total.merge(self.manager.workoff(config))
        return total

    def _groups(self, name: str, adapter: Adapter) -> list[WorkerConfig]:
        """The worker groups to run now, each limited to the queues it serves (a ``"*"`` group
        to those no named group takes); a due job in a queue no group serves is an error."""
        owned: dict[int, tuple[WorkerConfig, list[str]]] = {}
        for queue, states in sorted(adapter.counts().items()):
            group = serving_group(self.manager.workers, queue, name)
            if group is None:
                if states.get("ready"):
                    raise DrainError(_unserved(adapter, queue))
                continue
            owned.setdefault(id(group), (group, []))[1].append(queue)
        return [
            replace(group, adapter=name, queue=queues, sleep_delay=0)
            for group, queues in owned.values()
        ]

    def _served(self, name: str) -> list[str] | None:
        """The queues this adapter's worker groups serve (``None``: every queue)."""
        groups = [w for w in self.manager.workers if w.adapter in (None, name)]
        if any(w.queues is None for w in groups):
            return None
        return sorted({queue for w in groups for queue in w.queues or ()})

    def _next_due(self, *, recurring: bool) -> float | None:
        times: list[float] = []
        for name, adapter in self.adapters.items():
            at = adapter.next_run_at(self._served(name))
            if at is not None:
                times.append(at)
            ticker = self.manager.ticker(name) if recurring else None
            if ticker is not None:
                ticker.run()  # learns when the next tick is due (records the starting point)
                if ticker.due_at is not None:
                    times.append(ticker.due_at)
        return min(times) if times else None

    # -- inspecting -------------------------------------------------------------------------
    def enqueued(
        self,
        job: JobRef | None = None,
        *,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
    ) -> list[JobRecord]:
        """Active (scheduled, ready or running) jobs, optionally only ``job``'s with these
        arguments."""
        path = None if job is None else resolve_job_ref(job, check_import=False)[1]
        found: list[JobRecord] = []
        for adapter in self.adapters.values():
            for record in adapter.list_jobs(limit=None):
                if record.state not in ACTIVE_STATES:
                    continue
                if path is not None and record.path != path:
                    continue
                if args is not None and record.args != _plain(list(args)):
                    continue
                if kwargs is not None and record.kwargs != _plain(dict(kwargs)):
                    continue
                found.append(record)
        return found

    def assert_enqueued(
        self,
        job: JobRef,
        *,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        count: int | None = None,
    ) -> list[JobRecord]:
        """Fail unless ``job`` is enqueued (with these args/kwargs; ``count`` times if given).

        Returns the matching jobs, e.g. to check their ``run_at`` or ``queue``.
        """
        found = self.enqueued(job, args=args, kwargs=kwargs)
        if (count is None and found) or (count is not None and len(found) == count):
            return found
        want = _describe(resolve_job_ref(job, check_import=False)[1], args, kwargs)
        times = "at least once" if count is None else f"{count} time(s)"
        raise AssertionError(
            f"expected {want} to be enqueued {times}, found {len(found)}; enqueued now: "
            + (", ".join(_describe(r.path, r.args, r.kwargs) for r in self.enqueued()) or "none")
        )

    def assert_not_enqueued(
        self,
        job: JobRef,
        *,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.assert_enqueued(job, args=args, kwargs=kwargs, count=0)


@contextmanager
def temp_jobs(
    manager: JobManager,
    directory: str | Path | None = None,
    *,
    clock: FakeClock | None = None,
    start: datetime | float | None = None,
) -> Iterator[JobsHarness]:
    """Point ``manager`` at fresh SQLite files in ``directory`` (default: a temporary one) with a
    fake clock (starting at ``start``, default 2030-01-01 UTC); restore it on exit.

    Every adapter of the manager is replaced, PostgreSQL ones included, so tests need no
    server. Schedulers made earlier (``later = jobs.create_scheduler()`` at import time) follow.
    """
    fake = clock or FakeClock(start)
    saved = dict(manager.adapters)
    with ExitStack() as stack:
        if directory is None:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="litejobs-"))
        folder = Path(directory)
        temps: dict[str, Adapter] = {
            name: SQLiteAdapter(folder / f"jobs-{index}.db", clock=fake)
            for index, name in enumerate(saved)
        }
        manager.adapters.clear()
        manager.adapters.update(temps)
        try:
            yield JobsHarness(manager=manager, clock=fake, adapters=temps)
        finally:
            manager.adapters.clear()
            manager.adapters.update(saved)
            for adapter in temps.values():
                adapter.close()


@dataclass(frozen=True)
class InlineRun:
    """A job ``later()`` ran inline: what was called, with what (after a JSON round trip)."""

    id: int
    name: str
    path: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


@contextmanager
def inline(manager: JobManager) -> Iterator[list[InlineRun]]:
    """Make ``later()`` run each job immediately, in the caller, instead of storing it.

    Arguments still go through JSON and hooks still run, as in a worker, with the settings of
    the worker group that serves the job's queue (:func:`serving_group`: its ``max_runtime`` and
    ``max_attempts`` unless the job has its own); a queue no group serves is a
    :class:`~litejobs.errors.ConfigurationError`, as production would never run the job.
    ``wait`` and ``wait_until`` are ignored. A job that raises makes ``later()`` raise the same
    exception (inline runs one attempt: no retries; ``Discard`` is raised as any error, while
    ``Snooze`` and ``Cancel`` return quietly: nothing runs later). While a job with a
    ``unique_key`` (or ``unique=True``) runs, ``later()`` with the same key returns its id and
    runs nothing, as production would; once it returned, the key is free again. An async job
    scheduled from async code runs on a fresh event loop in a helper thread (``later()`` cannot
    await on yours). Yields the list of jobs run so far. ``later()`` returns ids from a counter
    (nothing is stored).
    """
    runner = _InlineRunner(manager)
    previous = manager.inline
    manager.inline = runner
    try:
        yield runner.runs
    finally:
        manager.inline = previous
        runner.executor.close()


class _InlineRunner:
    """What ``later()`` hands each job to under :func:`inline`: one attempt, now, here."""

    def __init__(self, manager: JobManager) -> None:
        self.manager = manager
        self.executor = Executor(
            logger=manager.logger, hooks=manager.hooks, job_hooks=manager.job_hooks
        )
        self.runs: list[InlineRun] = []
        self._ids = itertools.count(1)
        self._running: dict[str, int] = {}  # unique key -> id of the job running with it

    def __call__(self, new: NewJob) -> int:
        key = new.unique_key
        if key is not None and key in self._running:
            return self._running[key]
        handler = decode_handler(new.handler)
        config = serving_group(self.manager.workers, new.queue)
        if config is None:
            raise ConfigurationError(
                f"inline(): no worker group serves queue {new.queue!r}, so production would "
                f"never run {handler.get('path')}; add WorkerConfig(queue={new.queue!r}) "
                "(or queue='*') to the manager's workers"
            )
        job_id = next(self._ids)
        self.runs.append(
            InlineRun(
                job_id,
                str(handler.get("name", "")),
                str(handler["path"]),
                list(handler.get("args") or []),
                dict(handler.get("kwargs") or {}),
            )
        )
        if key is not None:
            self._running[key] = job_id
        try:
            self._execute(new, job_id, config)
        finally:
            if key is not None:
                del self._running[key]
        return job_id

    def _execute(self, new: NewJob, job_id: int, config: WorkerConfig) -> None:
        """Run the job as ``config``'s worker would; raise what it raised."""
        max_attempts = new.max_attempts if new.max_attempts is not None else config.max_attempts
        claimed = ClaimedJob(
            id=job_id,
            handler=new.handler,
            queue=new.queue,
            priority=new.priority,
            attempts=1,
            max_attempts=max_attempts,
            locked_by="inline",
            lock_token="inline",
            locked_at=0.0,
        )
        max_runtime = new.max_runtime if new.max_runtime is not None else config.max_runtime
        result = self.executor.execute(
            claimed, max_runtime=max_runtime, max_attempts=max_attempts, worker="inline"
        )
        if result.directive in ("snoozed", "cancelled"):
            return  # the job chose its outcome: not an error (nothing is stored to run later)
        if not result.ok and result.exception is not None:
            raise result.exception


def jobs_fixture(manager: JobManager, *, name: str = "litejobs") -> Callable[..., Any]:
    """A pytest fixture yielding a :class:`JobsHarness` for ``manager``; in ``conftest.py``::

    from litejobs.testing import jobs_fixture
    from myapp.jobs import jobs

    litejobs = jobs_fixture(jobs)          # tests then take a `litejobs` argument
    """
    import pytest

    @pytest.fixture(name=name)
    def fixture(tmp_path: Path) -> Iterator[JobsHarness]:
        with temp_jobs(manager, tmp_path) as harness:
            yield harness

    return fixture


def _unserved(adapter: Adapter, queue: str) -> str:
    [job] = adapter.list_jobs(queue=queue, state="ready", limit=1)
    return (
        f"job {job.id} ({job.path}) is due in queue {queue!r}, which no worker group of this "
        f"manager serves, so production would never run it; add WorkerConfig(queue={queue!r}) "
        "(or queue='*') to the manager's workers"
    )


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _plain(value: Any) -> Any:
    """What ``value`` looks like after the JSON round trip a stored job's arguments take."""
    import json

    return json.loads(json.dumps(value))


def _describe(path: str, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None) -> str:
    parts = [repr(a) for a in (args or [])]
    parts += [f"{k}={v!r}" for k, v in (kwargs or {}).items()]
    shown = "..." if args is None and kwargs is None else ", ".join(parts)
    return f"{path}({shown})"
