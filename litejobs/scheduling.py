"""Validating a scheduling request and turning it into a :class:`NewJob`.

Shared by ``later(...)``, ``litejobs.enqueue(...)`` and the CLI, so every door into the queue
applies the same rules and the same error messages. Nothing is stored if validation fails.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from .adapters.base import (
    ACTIVE_STATES,
    JOB_STATES,
    JobBatch,
    JobRun,
    JobState,
    NewJob,
    compact_json,
)
from .arguments import check_arguments, job_function, positional_range
from .bounds import MAX_ATTEMPTS_LIMIT, check_text, check_whole
from .config import MAX_RUNTIME_LIMIT
from .errors import (
    ArgumentsError,
    InvalidPriorityError,
    InvalidWaitError,
    SerializationError,
    UnknownQueueError,
    ValidationError,
)
from .handler import callable_path, encode_handler, resolve
from .job import Job, RetrySpec
from .retry import as_policy

JobRef = Job | Callable[..., Any] | str
Wait = float | int | timedelta
#: The finished states a unique key held for a period counts by default (as Oban's default).
DEFAULT_UNIQUE_STATES: tuple[JobState, ...] = ("succeeded",)


def check_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidPriorityError(
            f"priority must be a whole number from 1 (first) to 100 (last), got {priority!r}"
        )
    if not 1 <= priority <= 100:
        raise InvalidPriorityError(
            f"priority must be from 1 (runs first) to 100 (runs last), got {priority}"
        )
    return priority


def check_max_attempts(max_attempts: Any) -> int:
    return check_whole(max_attempts, "max_attempts", 1, MAX_ATTEMPTS_LIMIT)


def _seconds(value: Any, what: str) -> float:
    """A number of seconds (or a ``timedelta``), finite and more than 0."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise ValidationError(f"{what} must be more than 0 seconds (or a timedelta), got {value!r}")
    return float(seconds)


def check_max_runtime(value: Any) -> float:
    """A job's own hard timeout: more than 0, at most 10 years (the timer's bound)."""
    seconds = _seconds(value, "max_runtime")
    if seconds > MAX_RUNTIME_LIMIT:
        raise ValidationError(
            f"max_runtime must be at most {MAX_RUNTIME_LIMIT:g} s (10 years), got {value!r}; "
            "for 'no limit', give a long time"
        )
    return seconds


def check_unique_for(value: Any) -> float:
    """How long a unique key stays held after enqueue: more than 0, at most ~292 years."""
    seconds = _seconds(value, "unique_for")
    if seconds > LATEST_RUN_AT:
        raise ValidationError(f"unique_for is past the last storable time, got {value!r}")
    return seconds


def check_unique_states(states: Any) -> tuple[JobState, ...]:
    """Which states hold a key for its period. Active states always hold it (one active job per
    key, the unique index): naming some of them but not all would promise what cannot be."""
    names = (states,) if isinstance(states, str) else tuple(states)
    unknown = [s for s in names if s not in JOB_STATES]
    if unknown:
        raise ValidationError(
            f"unknown state(s) in unique_states: {', '.join(map(repr, unknown))}; "
            f"use {', '.join(JOB_STATES)}"
        )
    active = [s for s in names if s in ACTIVE_STATES]
    if active and len(set(active)) < len(ACTIVE_STATES):
        raise ValidationError(
            f"unique_states names {', '.join(active)} but not every active state: a key is "
            f"always held while its job is {', '.join(ACTIVE_STATES)} (one active job per key); "
            "list which finished states also hold it: succeeded, failed, cancelled"
        )
    return tuple(s for s in names if s not in ACTIVE_STATES)


def retry_data(value: RetrySpec | None) -> str | None:
    """A per-call retry policy as data to store with the job (a function cannot be)."""
    from .errors import ConfigurationError

    if value is None:
        return None
    try:
        return as_policy(value).to_data()
    except ConfigurationError as exc:
        raise ValidationError(str(exc)) from None


def check_queue(queue: Any, allowed: Collection[str] | None) -> str:
    if not isinstance(queue, str) or not queue.strip() or queue == "*":
        raise UnknownQueueError(f"queue must be a non-empty name (not '*'), got {queue!r}")
    check_text(queue, "queue")
    if allowed is not None and queue not in allowed:
        raise UnknownQueueError(
            f"unknown queue {queue!r}; declare it in JobManager(queues=[...]) "
            f"(known: {', '.join(sorted(allowed))})"
        )
    return queue


def run_at_for(now: float, wait: Wait | None, wait_until: datetime | None) -> float | None:
    """When a job may start: ``wait > 0`` wins over ``wait_until``; neither means now (None).

    A naive ``wait_until`` is read as local time, as :meth:`datetime.timestamp` does.
    """
    if wait is not None:
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else wait
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise InvalidWaitError(f"wait must be a number of seconds, got {wait!r}")
        if seconds != seconds or seconds < 0:
            raise InvalidWaitError(f"wait must be zero or more seconds, got {wait!r}")
        if seconds > 0:
            total = now + float(seconds) if seconds <= LATEST_RUN_AT else float("inf")
            return _storable(total, f"wait={wait!r}")
    if wait_until is not None:
        if not isinstance(wait_until, datetime):
            raise InvalidWaitError(
                f"wait_until must be a datetime, got {type(wait_until).__name__}; "
                "e.g. datetime(2030, 1, 1, tzinfo=UTC)"
            )
        try:
            when = wait_until.timestamp()
        except (ValueError, OverflowError, OSError):  # a naive date at the calendar's edge
            raise InvalidWaitError(
                f"wait_until={wait_until.isoformat()} cannot be converted from local time; "
                "give an aware datetime, e.g. datetime(2030, 1, 1, tzinfo=UTC)"
            ) from None
        return _storable(when, f"wait_until={wait_until.isoformat()}")
    return None


#: 9999-12-31T23:59:59Z: the last instant a stored time (ISO 8601 text) can express.
LATEST_RUN_AT = 253_402_300_799.0


def _storable(run_at: float, what: str) -> float:
    """Reject times storage cannot hold (``inf``, year 10000) as a typed error, not a crash."""
    if not run_at <= LATEST_RUN_AT:
        raise InvalidWaitError(
            f"{what} is past the last storable time (9999-12-31 23:59:59 UTC); "
            "give a wait in seconds or a real date"
        )
    return run_at


def resolve_job_ref(job: JobRef, *, check_import: bool = True) -> tuple[str, str, Job | None]:
    """Return ``(name, path, Job or None)`` for a Job, a plain function or a path string.

    Only functions (and class- or static methods) and :class:`Job` objects are jobs: another
    callable, such as a ``Scheduler`` or an instance with ``__call__``, is refused, whether
    passed or named by its path, because a worker would call the object it imports, not
    whatever the caller meant.
    """
    if isinstance(job, Job):
        return job.name, job.path, job
    if isinstance(job, str):
        definition = None
        if check_import:
            job_function(resolve(job), job)  # resolve raises HandlerNotFoundError precisely
            definition = _job_of(job)
        name = job.partition(":")[2].rsplit(".", 1)[-1] or job
        return (definition.name if definition else name), job, definition
    if callable(job):
        job_function(job, getattr(job, "__qualname__", None) or type(job).__name__)
        return getattr(job, "__name__", "job"), callable_path(job), None
    raise ValidationError(
        f"cannot schedule a {type(job).__name__}: pass a job, a function or a 'module:func' path"
    )


def _job_of(path: str) -> Job | None:
    """The :class:`Job` object behind ``path``, if the function was decorated."""
    import importlib

    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target if isinstance(target, Job) else None


def build_new_job(
    job: JobRef,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    *,
    now: float,
    wait: Wait | None = None,
    wait_until: datetime | None = None,
    queue: str | None = None,
    priority: int | None = None,
    max_attempts: int | None = None,
    unique_key: str | None = None,
    unique: bool = False,
    keep_result: bool | None = None,
    allowed_queues: Collection[str] | None = None,
    check_import: bool = True,
    max_runtime: float | timedelta | None = None,
    retry: RetrySpec | None = None,
    unique_for: float | timedelta | None = None,
    unique_states: Sequence[str] | None = None,
) -> NewJob:
    """Validate everything and build the row to store; raises a ValidationError subclass.

    Options not given come from the job's decorator (``@jobs.job(...)``), if it has one. A
    retry policy given here is stored with the job, so it must be data (intervals, jitter).
    """
    name, path, definition = resolve_job_ref(job, check_import=check_import)
    if args is not None and (isinstance(args, str | bytes | Mapping) or not _is_seq(args)):
        raise SerializationError(
            f"args must be a list of positional arguments, got {type(args).__name__}; "
            "e.g. later(job, [42])"
        )
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise SerializationError(f"kwargs must be a dict, got {type(kwargs).__name__}")
    if queue is None:
        queue = definition.queue if definition else "default"
    if priority is None:
        priority = definition.priority if definition else 50
    if max_attempts is None and definition is not None:
        max_attempts = definition.max_attempts
    if max_attempts is not None:
        check_max_attempts(max_attempts)
    if definition is not None:
        max_runtime = definition.max_runtime if max_runtime is None else max_runtime
        unique_for = definition.unique_for if unique_for is None else unique_for
        unique_states = definition.unique_states if unique_states is None else unique_states
    if keep_result is None:
        keep_result = definition.keep_result if definition else False
    if not isinstance(keep_result, bool):
        raise ValidationError(f"keep_result must be True or False, got {keep_result!r}")
    handler = _handler_json(name, path, list(args or ()), dict(kwargs) if kwargs else None)
    if unique_for is not None:
        unique = True  # held for a period: the key is the function and arguments unless given
    if unique and unique_key is None:
        body = json.dumps([path, list(args or ()), dict(kwargs or {})], sort_keys=True)
        import hashlib  # here: loading OpenSSL costs every CLI command ~4 ms at start-up

        unique_key = "auto:" + hashlib.sha256(body.encode()).hexdigest()
    if unique_key is not None and (not isinstance(unique_key, str) or not unique_key):
        raise ValidationError(f"unique_key must be a non-empty string, got {unique_key!r}")
    if unique_key is not None:
        check_text(unique_key, "unique_key")
    new = NewJob(
        handler=handler,
        queue=check_queue(queue, allowed_queues),
        priority=check_priority(priority),
        run_at=run_at_for(now, wait, wait_until),
        max_attempts=max_attempts,
        unique_key=unique_key,
        max_runtime=None if max_runtime is None else check_max_runtime(max_runtime),
        retry=retry_data(retry),
        unique_for=None if unique_for is None else check_unique_for(unique_for),
        unique_states=_unique_states(unique_for, unique_states),
        keep_result=keep_result,
    )
    func = _function_of(job, definition, check_import)
    if func is not None:  # last: a bad option or an unstorable value is the first thing to fix
        check_arguments(func, args or (), kwargs, name)
    return new


def _unique_states(
    unique_for: float | timedelta | None, states: Sequence[str] | None
) -> tuple[JobState, ...] | None:
    if unique_for is None:
        if states is not None:
            raise ValidationError("unique_states only applies with unique_for=...")
        return None
    return DEFAULT_UNIQUE_STATES if states is None else check_unique_states(states)


def _function_of(job: JobRef, definition: Job | None, imported: bool) -> Callable[..., Any] | None:
    """The function a worker will call for ``job`` (``None``: not imported, not checked)."""
    if definition is not None:
        return definition.func
    if isinstance(job, str):
        return resolve(job) if imported else None
    return job if callable(job) else None


def _is_seq(value: Any) -> bool:
    return isinstance(value, list | tuple)


_encode_json = compact_json


def _handler_json(name: str, path: str, args: list[Any], kwargs: dict[str, Any] | None) -> str:
    """:func:`encode_handler` with one shared encoder (``json.dumps`` with options builds a
    new encoder per call: a tenth of an enqueue); on failure, it words the error."""
    body: dict[str, Any] = {"name": name, "path": path, "args": args}
    if kwargs:
        body["kwargs"] = kwargs
    try:
        return _encode_json(body)
    except (TypeError, ValueError, RecursionError):
        return encode_handler(name, path, args, kwargs)  # raises SerializationError


def build_new_jobs(
    calls: Iterable[tuple[JobRef, Sequence[Any] | None] | JobRef],
    *,
    now: float,
    allowed_queues: Collection[str] | None = None,
    **options: Any,
) -> list[NewJob]:
    """:func:`build_new_job` for many ``(job, args)`` items sharing ``options``: the rows of
    :func:`build_job_batch`, one :class:`NewJob` each."""
    return list(build_job_batch(calls, now=now, allowed_queues=allowed_queues, **options))


def build_job_batch(
    calls: Iterable[tuple[JobRef, Sequence[Any] | None] | JobRef],
    *,
    now: float,
    allowed_queues: Collection[str] | None = None,
    **options: Any,
) -> Sequence[NewJob]:
    """Validate many ``(job, args)`` items sharing ``options``; nothing is stored.

    The rules and errors are exactly :func:`build_new_job`'s (which builds the first item of
    every distinct job), raised for the first bad item in order; an error about an item's
    arguments also says which item (``item 3 of the batch``). Batches usually repeat one job,
    so the job reference and the options are validated once per distinct job, and each item
    only has its arguments type-checked and collected: a run of consecutive items of one job
    is then JSON-encoded by one call (:class:`JobRun`). That, and storing a run with one
    statement, is what takes a batch enqueue past 100k jobs/s (``scripts/bench``); with
    ``unique``, ``unique_key``, ``unique_for`` or ``kwargs`` (given here, or a unique key from a
    job's decorator) each item is built on its own (a list).
    """
    items = list(_pairs(calls))
    if any(options.get(k) for k in ("unique", "unique_key", "unique_for")) or "kwargs" in options:
        return _build_items(items, now, allowed_queues, options)
    try:
        return _build_runs(items, now, allowed_queues, options)
    except _KeyedItems:
        return _build_items(items, now, allowed_queues, options)


class _KeyedItems(Exception):
    """A job of the batch carries a unique key of its own (its decorator's ``unique_for``):
    its items cannot share a template."""


def _build_items(
    items: list[tuple[JobRef, Sequence[Any] | None]],
    now: float,
    allowed_queues: Collection[str] | None,
    options: dict[str, Any],
) -> list[NewJob]:
    """Each item validated and built on its own."""
    rows: list[NewJob] = []
    for index, (job, args) in enumerate(items):
        try:
            rows.append(build_new_job(job, args, now=now, allowed_queues=allowed_queues, **options))
        except (SerializationError, ArgumentsError) as exc:
            raise _item_error(exc, index, job) from None
    return rows


def _build_runs(
    items: list[tuple[JobRef, Sequence[Any] | None]],
    now: float,
    allowed_queues: Collection[str] | None,
    options: dict[str, Any],
) -> JobBatch:
    """Items as runs of one job sharing a template (see :func:`build_job_batch`)."""
    templates: dict[int, tuple[JobRef, NewJob, str, tuple[float, float]]] = {}
    runs: list[JobRun] = []
    run_job: Any = _NO_JOB
    run_start = 0
    template: NewJob | None = None
    head = ""
    pending: list[list[Any]] = []

    def close_run() -> None:
        """Encode the current run's arguments; on failure, raise the first bad item's error."""
        if not pending:
            return
        assert template is not None
        try:
            items = _encode_json(pending)
        except (TypeError, ValueError, RecursionError):
            name, path = _name_path(template)
            for offset, args in enumerate(pending):
                try:
                    encode_handler(name, path, args, None)
                except SerializationError as exc:
                    raise _item_error(exc, run_start + offset, run_job) from None
            raise
        runs.append(JobRun(template, head, "}", pending, items))

    for index, (job, args) in enumerate(items):
        if job is not run_job:
            close_run()
            known = templates.get(id(job))
            if known is None or known[0] is not job:
                try:
                    first = build_new_job(
                        job, args, now=now, allowed_queues=allowed_queues, **options
                    )
                except (SerializationError, ArgumentsError) as exc:
                    raise _item_error(exc, index, job) from None
                if first.unique_key is not None:
                    raise _KeyedItems
                name, path = _name_path(first)
                prefix = _encode_json({"name": name, "path": path})[:-1] + ',"args":'
                known = templates[id(job)] = (job, first, prefix, _batch_arity(job))
            _, template, head, (low, high) = known
            run_job, run_start, pending = job, index, []
        if type(args) is list:
            pending.append(args)
        elif args is None:
            pending.append([])
        elif isinstance(args, str | bytes | Mapping) or not _is_seq(args):
            close_run()  # an earlier item's bad arguments are the first error
            raise _item_error(
                SerializationError(
                    f"args must be a list of positional arguments, got {type(args).__name__}; "
                    "e.g. later(job, [42])"
                ),
                index,
                job,
            )
        else:
            pending.append(list(args))
        if not low <= len(pending[-1]) <= high:  # the whole per-item signature check
            bad = pending.pop()
            close_run()  # an earlier item's bad arguments are the first error
            raise _item_error(_arguments_error(job, bad), index, job)
    close_run()
    return JobBatch(runs)


def _batch_arity(job: JobRef) -> tuple[float, float]:
    func = job.func if isinstance(job, Job) else _function_of(job, None, True)
    return (0, math.inf) if func is None else positional_range(func)


def _arguments_error(job: JobRef, args: list[Any]) -> ArgumentsError:
    func = job.func if isinstance(job, Job) else _function_of(job, None, True)
    assert func is not None
    try:
        check_arguments(func, args, None, resolve_job_ref(job, check_import=False)[0])
    except ArgumentsError as exc:
        return exc
    raise AssertionError(f"{args!r} fits {func!r}")  # pragma: no cover - range and bind agree


_NO_JOB = object()


def _name_path(template: NewJob) -> tuple[str, str]:
    body = json.loads(template.handler)
    return body["name"], body["path"]


def _item_error(exc: ValidationError, index: int, job: JobRef) -> ValidationError:
    """The same error, saying which item of the batch (counted from 0) and which job."""
    path = resolve_job_ref(job, check_import=False)[1]
    return type(exc)(f"item {index} of the batch ({path}): {exc}")


def _pairs(
    calls: Iterable[tuple[JobRef, Sequence[Any] | None] | JobRef],
) -> Iterator[tuple[JobRef, Sequence[Any] | None]]:
    for call in calls:
        yield call if isinstance(call, tuple) else (call, None)
