"""Typed errors raised by litejobs.

Every message says what went wrong *and* what to do about it, because these messages are what a
developer or an operator sees first (the CLI prints them as one line, without a traceback).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .liveness import WorkerRecord


class LiteJobsError(Exception):
    """Base class for every error litejobs raises on purpose."""


class ConfigurationError(LiteJobsError):
    """The manager, a worker config or a command line is set up wrongly."""


class UnknownAdapterError(ConfigurationError):
    """A job or scheduler names an adapter the manager does not have."""


class UnknownQueueError(ConfigurationError):
    """A job names a queue the manager did not declare in ``queues``."""


class ValidationError(LiteJobsError):
    """A scheduling request is invalid: nothing was stored."""


class InvalidPriorityError(ValidationError):
    """Priority outside 1..100."""


class InvalidWaitError(ValidationError):
    """Negative wait, or an unusable ``wait_until``."""


class SerializationError(ValidationError):
    """Job arguments cannot be stored as JSON."""


class UnimportableJobError(ValidationError):
    """A job's function cannot be imported by a worker (lambda, nested function, ``__main__``)."""


class HandlerNotFoundError(ValidationError):
    """A ``module:func`` path does not resolve to a callable."""


class ArgumentsError(ValidationError):
    """Job arguments do not fit the job function's signature (wrong count, unknown keyword)."""


class JobNotFoundError(LiteJobsError):
    """No job with the given id exists."""


class JobRunningError(ValidationError):
    """The request would pull a job from under the worker running it (``delete`` of a running
    job): cancel it first, or force it."""


class JobDeletedError(JobNotFoundError):
    """The id was issued, but the job is gone: it finished and was deleted (the default for a
    success), was pruned, or a person deleted it."""


class JobFailedError(LiteJobsError):
    """``result()`` of a job that ended without succeeding (failed for good, or cancelled).

    ``error`` is the stored error text in full (type, message, traceback); ``state`` the job's.
    """

    def __init__(self, job_id: int, state: str, error: str | None, attempts: int) -> None:
        self.job_id = job_id
        self.state = state
        self.error = error
        first = (error or "").strip().splitlines()[0] if error and error.strip() else "no error"
        super().__init__(
            f"job {job_id} {state} after {attempts} attempt{'s' if attempts != 1 else ''}: "
            f"{first}; `litejobs show {job_id}` has the traceback, `litejobs retry {job_id}` "
            "runs it again"
        )


class ResultTimeoutError(LiteJobsError, TimeoutError):
    """``result(timeout=...)`` ran out of time before the job finished."""


class ResultUnavailableError(LiteJobsError):
    """The job succeeded (or will) but no result is stored for it: it does not keep results,
    its return value was not JSON, or its row was deleted."""


class StorageError(LiteJobsError):
    """The storage backend is unavailable: missing directory, read-only, corrupt or locked.

    ``permanent``: waiting will not help (corrupt or read-only database, a schema newer than
    this litejobs, permission denied, no such database): ``workoff`` stops with exit 3 instead
    of retrying. Otherwise (locked, server restarting) waiting and retrying is the cure.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class WorkerNameTaken(ConfigurationError):
    """Every worker name asked for is held by a live worker (on this database)."""

    def __init__(self, live: Sequence[WorkerRecord]) -> None:
        self.live = list(live)
        names = ", ".join(f"{w.name} (pid {w.pid})" for w in self.live) or "?"
        super().__init__(
            f"worker name already in use by a live worker: {names}; stop it first "
            "(`litejobs stop`), or let litejobs pick free names"
        )


class JobTimeoutError(BaseException):
    """Raised inside a job that ran past its worker's ``max_runtime``.

    Derives from ``BaseException``, like ``KeyboardInterrupt`` and ``asyncio.CancelledError``:
    a job's own ``except Exception:`` around slow work must not swallow its timeout and be
    recorded as a success. The executor records it as the job's error (``timed out after N s``).
    """


class JobCancelledError(BaseException):
    """Raised inside a running job whose cancellation a person asked for (``litejobs cancel``).

    A ``BaseException`` for the reason :class:`JobTimeoutError` is one: a job's own ``except
    Exception:`` must not swallow it. A class of its own, so a cancelled job is never taken for
    a timed-out one: it ends ``cancelled``, not retried.
    """


class StopNow(KeyboardInterrupt):
    """The worker's own "stop now": a second Ctrl-C or SIGTERM, the supervisor's stop-now signal.

    A ``KeyboardInterrupt``, so code that catches one behaves as before; a class of its own so
    that a ``KeyboardInterrupt`` a job's hook raises by itself is not mistaken for it (a hook's
    is logged and changes nothing; this one stops the worker).
    """
