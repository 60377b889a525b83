"""The storage contract every adapter implements.

The worker, scheduler and CLI talk only to :class:`Adapter`; an adapter knows SQL and its database,
nothing about processes, signals or the command line. Times cross this boundary as UTC epoch
seconds (floats) taken from the adapter's :class:`~litejobs.clock.Clock`, so tests can fake time.

Job states (derived from the columns, never contradicting them):

``scheduled``  waiting for ``run_at`` (new with a wait, or retrying after an error)
``ready``      ``run_at`` has passed; any matching worker may claim it
``running``    locked by a worker (``locked_by``, ``locked_at``)
``failed``     ``failed_at`` set: out of attempts; never claimed again unless retried by a person
``succeeded``  kept after success (only when ``delete_successful_jobs=False``)
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..clock import SYSTEM_CLOCK, Clock

JobState = Literal["scheduled", "ready", "running", "failed", "succeeded"]
JOB_STATES: tuple[JobState, ...] = ("scheduled", "ready", "running", "failed", "succeeded")
ACTIVE_STATES: tuple[JobState, ...] = ("scheduled", "ready", "running")


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated request to store one job."""

    handler: str  # JSON text: {"name", "path", "args"[, "kwargs"]}
    queue: str = "default"
    priority: int = 50
    run_at: float | None = None  # None: now
    max_attempts: int | None = None  # None: the claiming worker's setting
    unique_key: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker holds; ``(id, locked_by, attempts, locked_at)`` fences the recording of its
    outcome (an outcome is written only while the row is still this very claim)."""

    id: int
    handler: str
    queue: str
    priority: int
    attempts: int  # already incremented by the claim: 1 on the first run
    max_attempts: int | None
    locked_by: str
    locked_at: float
    run_at: float | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a claimed job, for :meth:`Adapter.record`.

    ``kind`` is ``"success"`` (delete or keep), ``"error"`` (retry at ``retry_at``),
    ``"failure"`` (out of attempts: delete or keep as failed) or ``"release"`` (claimed but never
    started: back to ready, the claim's attempt given back).
    """

    job: ClaimedJob
    kind: Literal["success", "error", "failure", "release"]
    error: str | None = None
    retry_at: float | None = None
    delete: bool = False


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One stored job as inspection sees it."""

    id: int
    state: JobState
    queue: str
    priority: int
    attempts: int
    max_attempts: int | None
    handler: dict[str, Any]
    run_at: float | None
    locked_at: float | None
    locked_by: str | None
    last_error: str | None
    failed_at: float | None
    created_at: float
    updated_at: float
    unique_key: str | None = None

    @property
    def name(self) -> str:
        return str(self.handler.get("name", ""))

    @property
    def path(self) -> str:
        return str(self.handler.get("path", ""))

    @property
    def args(self) -> list[Any]:
        return list(self.handler.get("args", []))

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.handler.get("kwargs", {}))


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A worker as recorded by its heartbeats."""

    name: str  # "host/litejobs-worker.<queues>.<id>"
    host: str
    pid: int
    queues: str
    started_at: float
    heartbeat_at: float


@dataclass(slots=True)
class QueueCounts:
    """Counts per state for one queue, for ``status``."""

    queue: str
    counts: dict[str, int] = field(default_factory=dict)


class Adapter(abc.ABC):
    """Storage for jobs. Implementations must be safe to use from several processes at once.

    An adapter object may be shared by threads; implementations keep one connection per thread
    and per process (connections never cross a ``fork``).
    """

    name: str = "adapter"

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SYSTEM_CLOCK

    # -- scheduling -------------------------------------------------------------------------
    @abc.abstractmethod
    def schedule(self, job: NewJob) -> int:
        """Store one job; return its id. With a ``unique_key`` already active, return that id."""

    @abc.abstractmethod
    def schedule_many(self, jobs: Sequence[NewJob]) -> list[int]:
        """Store many jobs in one transaction; return their ids in order."""

    def schedule_tick(self, name: str, tick_at: float, job: NewJob) -> int | None:
        """Enqueue ``job`` for tick ``tick_at`` of recurring schedule ``name``, at most once.

        In one transaction: if the schedule has never ticked, record ``tick_at`` as its
        starting point and insert nothing (a new schedule starts at its next tick); if a tick at
        or after ``tick_at`` is already recorded, insert nothing; otherwise record the tick
        (keyed by ``(name, tick_at)``) and insert the job. Returns the job id, or ``None`` when
        nothing was inserted -- so any number of workers may call this for the same tick.
        """
        raise NotImplementedError(
            f"the {self.name} adapter does not support recurring jobs yet; use SQLite for them"
        )

    def last_ticks(self) -> dict[str, float]:
        """``{schedule name: latest recorded tick}`` for inspection (empty if unsupported)."""
        return {}

    # -- execution --------------------------------------------------------------------------
    @abc.abstractmethod
    def claim(self, worker: str, queues: Sequence[str] | None, limit: int = 1) -> list[ClaimedJob]:
        """Atomically lock up to ``limit`` ready jobs for ``worker`` and increment their attempts.

        ``queues=None`` means every queue. Order: priority, then run_at, then id.
        """

    @abc.abstractmethod
    def record(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Write outcomes in one transaction, each fenced by its claim
        (``id, locked_by, attempts, locked_at``).

        Returns, per outcome, whether it was written (``False``: the worker had lost the lock).
        """

    def success(self, job: ClaimedJob, *, delete: bool = True) -> bool:
        return self.record([Outcome(job, "success", delete=delete)])[0]

    def error(self, job: ClaimedJob, error: str, retry_at: float) -> bool:
        return self.record([Outcome(job, "error", error=error, retry_at=retry_at)])[0]

    def failure(self, job: ClaimedJob, error: str, *, delete: bool = False) -> bool:
        return self.record([Outcome(job, "failure", error=error, delete=delete)])[0]

    @abc.abstractmethod
    def has_ready(self, queues: Sequence[str] | None) -> bool:
        """Cheap read-only check: is any job claimable now? (used before a claim when idle)."""

    @abc.abstractmethod
    def next_run_at(self, queues: Sequence[str] | None) -> float | None:
        """Earliest ``run_at`` of a scheduled (not yet due) job, for sleeping exactly that long."""

    def wait_for_change(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until another process may have changed the jobs.

        Returns ``True`` if a change was seen. The default simply sleeps; adapters override it
        with a cheap change signal (SQLite ``data_version``, PostgreSQL ``LISTEN``).
        """
        import time

        time.sleep(max(0.0, timeout))
        return False

    # -- workers and recovery ---------------------------------------------------------------
    @abc.abstractmethod
    def register_worker(
        self, name: str, *, host: str, pid: int, queues: str, max_attempts: int = 24
    ) -> int:
        """Record a starting worker and release jobs a previous worker of the same name held.

        A live name is unique, so such jobs were left by a predecessor that died: they become
        ready at once (or failed, if that was their last attempt). Returns how many.
        """

    @abc.abstractmethod
    def heartbeat(self, name: str) -> None:
        """Say ``name`` is alive now."""

    @abc.abstractmethod
    def deregister_worker(self, name: str) -> None:
        """Remove a worker that stopped cleanly."""

    @abc.abstractmethod
    def recover_stale(
        self, stale_after: float, max_attempts: int, *, lock_timeout: float | None = None
    ) -> tuple[int, int]:
        """Release jobs locked by workers silent for ``stale_after`` seconds (or gone).

        A job whose ``attempts`` already reached ``max_attempts`` (its own, else the given one) is
        failed instead ("worker died"), so a job that kills its worker cannot loop forever.
        ``lock_timeout``: also release any lock older than that, whatever the heartbeat (the
        last-resort fallback). Returns ``(released, failed)``.
        """

    @abc.abstractmethod
    def workers(self) -> list[WorkerRecord]:
        """Workers seen (with their last heartbeat)."""

    # -- inspection and administration ------------------------------------------------------
    @abc.abstractmethod
    def get(self, job_id: int) -> JobRecord | None: ...

    @abc.abstractmethod
    def list_jobs(
        self,
        *,
        queue: str | None = None,
        state: JobState | None = None,
        limit: int | None = 100,
    ) -> list[JobRecord]: ...

    @abc.abstractmethod
    def counts(self) -> dict[str, dict[str, int]]:
        """``{queue: {state: count}}`` for every queue with jobs."""

    @abc.abstractmethod
    def oldest_ready_at(self) -> float | None:
        """``run_at`` of the oldest ready job (its age is how far behind the workers are)."""

    @abc.abstractmethod
    def retry(self, job_id: int) -> bool:
        """Make a failed (or scheduled) job ready now; returns whether the job existed."""

    @abc.abstractmethod
    def retry_failed(self, queue: str | None = None) -> int: ...

    @abc.abstractmethod
    def delete(self, job_id: int) -> bool: ...

    @abc.abstractmethod
    def clear(self, *, queue: str | None = None, failed_only: bool = False) -> int:
        """Delete jobs (all, one queue's, or only failed ones); returns how many."""

    @abc.abstractmethod
    def prune(self, older_than: float) -> int:
        """Delete kept succeeded/failed jobs last updated before ``older_than`` (epoch s)."""

    def maintenance(self) -> None:  # noqa: B027 - optional hook
        """Periodic housekeeping (SQLite: WAL checkpoint). Called by the supervisor."""

    def require(self, job_id: int) -> JobRecord:
        """Like :meth:`get`, but a missing job is a :class:`~litejobs.errors.JobNotFoundError`."""
        record = self.get(job_id)
        if record is None:
            from ..errors import JobNotFoundError

            raise JobNotFoundError(f"no job with id {job_id}; `litejobs list` shows the ids")
        return record

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections held by this process."""
