"""The storage contract every adapter implements, and the rows that cross it.

The worker, scheduler and CLI talk only to :class:`Adapter`; an adapter knows SQL and its database,
nothing about processes, signals or the command line. Times cross this boundary as UTC epoch
seconds (floats) taken from the adapter's :class:`~litejobs.clock.Clock`, so tests can fake time.

Job states (stored in a ``state`` column; ``ready`` is also a ``scheduled`` row whose time came):

``scheduled``  waiting for ``run_at`` (new with a wait, or retrying after an error)
``ready``      ``run_at`` has passed; any matching worker may claim it
``reserved``   claimed in a batch by a worker that has not started it yet: no attempt charged,
               given back within about a second if the worker is busy, and given back
               uncharged if the worker dies
``running``    started by a worker (``lock_token``, ``locked_by``, ``locked_at``); ``attempts``
               counts this start
``failed``     ``failed_at`` set: out of attempts; never claimed again unless retried by a person
``succeeded``  kept after success (``delete_successful_jobs=False``, a retention period, or a
               result to keep)
``cancelled``  ``cancelled_at`` set: a person cancelled it (or the job raised ``Cancel``); kept
               like a failed job, never claimed again unless retried by a person

A finished job (``failed``, ``succeeded``, ``cancelled``) has ``finished_at``; ``keep_until`` is
when automatic pruning deletes it (``None``: kept until a person prunes it). Nothing prunes a job
still to run.

The words (see docs/glossary.md): a worker *claims* jobs (``ready`` → ``running``/``reserved``),
*starts* a reserved one, *records* an outcome (``succeeded``, ``errored``: will retry,
``failed``: out of attempts, ``released``: given back unstarted, ``snoozed``: to run later, its
attempt given back, ``cancelled``); jobs of a worker that is gone are *rescued* (``ready``
again, or ``failed`` if that was their last attempt, or ``cancelled`` if a person asked).

A *cancel* of a job that is not running ends it at once; of a running job, it is a request
(``cancelled_at`` set while the job stays ``running``) that the job's worker carries out, and
that every later transition honours: the job never runs again. A *paused* queue's jobs are never
claimed; a queue's *limit* caps how many of its jobs are held (reserved or running) at once,
across every worker and host (both kept in ``litejobs_queues``).
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, overload

from ..clock import SYSTEM_CLOCK, Clock
from ..liveness import Observer, WorkerInfo, WorkerRecord

JobState = Literal["scheduled", "ready", "reserved", "running", "failed", "succeeded", "cancelled"]
JOB_STATES: tuple[JobState, ...] = (
    "scheduled",
    "ready",
    "reserved",
    "running",
    "failed",
    "succeeded",
    "cancelled",
)
#: States of a job that is still to run (or running): what a unique key protects.
ACTIVE_STATES: tuple[JobState, ...] = ("scheduled", "ready", "reserved", "running")
#: States of a job a worker holds.
HELD_STATES: tuple[JobState, ...] = ("reserved", "running")
#: Finished states, kept for inspection.
FINISHED_STATES: tuple[JobState, ...] = ("failed", "succeeded", "cancelled")

OutcomeKind = Literal["succeeded", "errored", "failed", "released", "snoozed", "cancelled"]

#: Rows deleted per pruning transaction: short enough that the write lock is never held long
#: (measured by ``scripts/bench --only prune``: docs/performance.md).
PRUNE_BATCH = 500

#: The one JSON encoding of stored arguments (minified, no NaN): a batch stores byte for byte
#: what one-by-one enqueueing stores.
compact_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def initial_state(run_at: float, now: float) -> JobState:
    """The state a job is stored in: ready when its time has come, else scheduled."""
    return "ready" if run_at <= now else "scheduled"


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated request to store one job."""

    handler: str  # JSON text: {"name", "path", "args"[, "kwargs"]}
    queue: str = "default"
    priority: int = 50
    run_at: float | None = None  # None: now
    max_attempts: int | None = None  # None: the claiming worker's setting
    unique_key: str | None = None
    max_runtime: float | None = None  # seconds; None: the claiming worker's setting
    retry: str | None = None  # the job's own retry policy as JSON data; None: not stored
    #: Also hold ``unique_key`` for this long after enqueue, while the job is in one of
    #: ``unique_states`` (finished states; active ones always hold it); None: only while active.
    unique_for: float | None = None
    unique_states: tuple[JobState, ...] | None = None
    keep_result: bool = False  # store the return value (JSON) when it succeeds


@dataclass(frozen=True, slots=True)
class JobRun:
    """Consecutive jobs of one batch that differ only in their arguments.

    Job ``i``'s handler text is ``head + json(args[i]) + tail``, and ``items`` is the JSON array
    of all of them, encoded (so validated) by one ``json`` call for the whole run: an adapter
    can store the run with one statement that splits ``items`` in the database, instead of
    Python encoding, building and binding a row per job.
    """

    template: NewJob  # queue, priority, run_at and max_attempts of every job of the run
    head: str
    tail: str
    args: list[list[Any]]
    items: str

    def handler(self, index: int) -> str:
        return f"{self.head}{compact_json(self.args[index])}{self.tail}"

    def rows(self) -> list[NewJob]:
        """The run's jobs one by one (for adapters, or inputs, that cannot store a run whole)."""
        t = self.template
        return [
            replace(t, handler=self.handler(i), unique_key=None, unique_for=None)
            for i in range(len(self.args))
        ]


class JobBatch(Sequence[NewJob]):
    """The validated rows of one ``later.many`` call, as runs of jobs sharing a template.

    It is a sequence of :class:`NewJob` (built on first access) for any adapter; the SQL
    adapters read :attr:`runs` instead and never build the per-job objects.
    """

    __slots__ = ("_rows", "runs")

    def __init__(self, runs: list[JobRun]) -> None:
        self.runs = runs
        self._rows: list[NewJob] | None = None

    def _materialise(self) -> list[NewJob]:
        if self._rows is None:
            self._rows = [row for run in self.runs for row in run.rows()]
        return self._rows

    def __len__(self) -> int:
        return sum(len(run.args) for run in self.runs)

    @overload
    def __getitem__(self, index: int) -> NewJob: ...
    @overload
    def __getitem__(self, index: slice) -> list[NewJob]: ...

    def __getitem__(self, index: int | slice) -> NewJob | list[NewJob]:
        return self._materialise()[index]

    def __iter__(self) -> Iterator[NewJob]:
        return iter(self._materialise())

    def __repr__(self) -> str:
        return f"JobBatch({len(self)} jobs in {len(self.runs)} runs)"


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker holds.

    ``attempts`` is this run's number (1 on the first run). ``charged``: storage already counts
    this run (a started job); a *reserved* job is charged when the worker starts it or records
    its outcome. ``(id, lock_token, locked_at, attempts)`` fences every write about the job: an
    outcome is written only while the row is still this very claim. ``suspect``: its previous
    holder died while it was reserved, so it may have been running then: it is charged before it
    starts, never run uncounted (a job that kills its worker must run out of attempts).
    """

    id: int
    handler: str
    queue: str
    priority: int
    attempts: int
    max_attempts: int | None
    locked_by: str
    lock_token: str
    locked_at: float
    run_at: float | None = None
    charged: bool = True
    suspect: bool = False
    max_runtime: float | None = None  # the job's own hard timeout (s), if it has one
    retry: str | None = None  # the job's own retry policy (JSON data), if stored with it
    keep_result: bool = False

    @property
    def stored_attempts(self) -> int:
        """``attempts`` as storage has it now (one less while the run is not charged yet)."""
        return self.attempts if self.charged else self.attempts - 1


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a claimed job, for :meth:`Adapter.record`.

    ``succeeded`` (deleted, or kept with ``delete=False``), ``errored`` (retry at ``retry_at``),
    ``failed`` (out of attempts: kept as failed, or deleted with ``delete=True``), ``released``
    (given back unstarted: ready again in its place, its attempt not counted), ``snoozed`` (to
    run again at ``retry_at``, its attempt given back), ``cancelled`` (stopped for good: kept as
    cancelled with ``error``).

    A kept finished job is pruned after ``keep_until`` (``None``: kept until a person prunes
    it); ``result`` is a succeeded job's return value as JSON text. ``duration`` (run seconds)
    and ``waited`` (seconds from due to started) feed the outcome statistics.
    """

    job: ClaimedJob
    kind: OutcomeKind
    error: str | None = None
    retry_at: float | None = None
    delete: bool = False
    keep_until: float | None = None
    result: str | None = None
    duration: float | None = None
    waited: float | None = None


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
    lock_token: str | None = None
    max_runtime: float | None = None
    retry: str | None = None
    #: When a person asked to cancel it (a running job keeps running until its worker stops
    #: it), or when it was cancelled.
    cancelled_at: float | None = None
    finished_at: float | None = None
    keep_until: float | None = None
    keep_result: bool = False
    result_json: str | None = None  # the stored return value, JSON text (None: none stored)

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

    @property
    def result(self) -> Any:
        """The stored return value (``None`` when none is stored: see :attr:`result_json`)."""
        return None if self.result_json is None else json.loads(self.result_json)


@dataclass(frozen=True, slots=True)
class Rescued:
    """What was done with the jobs of workers that are gone (or stopping)."""

    released: int = 0  # started jobs made ready again (the attempt counted)
    failed: int = 0  # started jobs that had used their last attempt
    returned: int = 0  # reserved jobs given back unstarted (no attempt counted)
    workers: tuple[str, ...] = ()  # names of the workers whose rows went
    job_ids: tuple[int, ...] = ()  # the started jobs released, failed or cancelled
    cancelled: int = 0  # started jobs a person had asked to cancel: cancelled, not run again

    def __add__(self, other: Rescued) -> Rescued:
        return Rescued(
            self.released + other.released,
            self.failed + other.failed,
            self.returned + other.returned,
            self.workers + other.workers,
            self.job_ids + other.job_ids,
            self.cancelled + other.cancelled,
        )

    def __bool__(self) -> bool:
        return bool(self.released or self.failed or self.returned or self.cancelled or self.workers)


@dataclass(frozen=True, slots=True)
class QueueControl:
    """What is stored about one queue: paused (since when), and its limit of held jobs."""

    queue: str
    paused_at: float | None = None
    limit: int | None = None

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


@dataclass(frozen=True, slots=True)
class Registration:
    """A registered worker: the name it got and what its gone predecessors held."""

    worker: WorkerInfo
    rescued: Rescued = field(default_factory=Rescued)


class Adapter(abc.ABC):
    """Storage for jobs. Implementations must be safe to use from several processes at once.

    An adapter object may be shared by threads; implementations keep one connection per thread
    and per process (connections never cross a ``fork``).
    """

    name: str = "adapter"

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SYSTEM_CLOCK

    # -- enqueueing -------------------------------------------------------------------------
    @abc.abstractmethod
    def enqueue(self, job: NewJob) -> int:
        """Store one job; return its id. With a ``unique_key`` already active, return that id."""

    @abc.abstractmethod
    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[int]:
        """Store many jobs in one transaction; return their ids in order."""

    @abc.abstractmethod
    def enqueue_tick(self, name: str, tick_at: float, job: NewJob) -> int | None:
        """Enqueue ``job`` for tick ``tick_at`` of recurring schedule ``name``, at most once.

        In one transaction: if the schedule has never ticked, record ``tick_at`` as its
        starting point and insert nothing (a new schedule starts at its next tick); if a tick at
        or after ``tick_at`` is already recorded, insert nothing; otherwise record the tick
        (keyed by ``(name, tick_at)``) and insert the job. Returns the job id, or ``None`` when
        nothing was inserted -- so any number of workers may call this for the same tick.
        """

    @abc.abstractmethod
    def last_ticks(self) -> dict[str, float]:
        """``{schedule name: latest recorded tick}`` for inspection."""

    # -- workers ----------------------------------------------------------------------------
    @abc.abstractmethod
    def register_worker(
        self, worker: WorkerInfo, names: Sequence[str], observer: Observer
    ) -> Registration:
        """Record a starting worker under the first of ``names`` no live worker holds.

        In one transaction with the check: holders of a name that are provably gone (see
        :class:`~litejobs.liveness.Observer`) are removed and their jobs rescued (same-name
        reclaim); a live holder keeps its name and the next name is tried. Raises
        :class:`~litejobs.errors.WorkerNameTaken` (naming the live holders) if none is free.
        """

    @abc.abstractmethod
    def heartbeat(self, worker: WorkerInfo) -> bool:
        """Say ``worker`` is alive now (with its monotonic time and its own deadline).

        Re-creates its row if the row is missing; returns ``False`` then, so the worker can say
        it had been presumed dead (or its row deleted)."""

    @abc.abstractmethod
    def deregister_worker(self, worker: WorkerInfo, reason: str = "stopped") -> Rescued:
        """Remove a stopping worker, rescuing whatever it still holds in the same transaction:
        reserved jobs go back uncounted; a started job (a stop that could not wait) is released
        with its attempt counted, or failed if that was its last."""

    @abc.abstractmethod
    def give_back(self, worker: WorkerInfo) -> int:
        """Put every job ``worker`` holds back to ready, no attempt counted: for a worker that
        knows it started none of them (its claim failed, but may have committed)."""

    @abc.abstractmethod
    def rescue(self, observer: Observer) -> Rescued:
        """Rescue the jobs of every worker ``observer`` can prove gone, and remove their rows.

        Cheap when nothing is gone: the check reads; only a rescue writes."""

    @abc.abstractmethod
    def workers(self) -> list[WorkerRecord]:
        """Registered workers, with their last heartbeats and declared deadlines."""

    # -- execution --------------------------------------------------------------------------
    @abc.abstractmethod
    def claim(
        self, worker: WorkerInfo, queues: Sequence[str] | None, limit: int = 1
    ) -> list[ClaimedJob]:
        """Atomically take up to ``limit`` ready jobs for ``worker``: the first is started
        (``running``, its attempt counted), the rest ``reserved`` (uncounted until started).

        ``queues=None`` means every queue. Order: priority, then run_at, then id.
        """

    @abc.abstractmethod
    def record(
        self,
        outcomes: Sequence[Outcome],
        start: ClaimedJob | None = None,
        stats: Sequence[tuple[str, str, int, int, float]] | None = None,
    ) -> tuple[list[bool], ClaimedJob | None]:
        """Write ``outcomes`` and start ``start`` (a reserved job: ``running``, attempt
        counted) in one transaction, each fenced by its claim, with the outcome statistics:
        ``stats`` (rows of :func:`litejobs.metrics.tally`, possibly of earlier outcomes too),
        or by default those of ``outcomes``.

        Returns, per outcome, whether it was written (``False``: the claim had been taken over),
        and the started job (charged) or ``None`` if it could not be started (taken back).
        """

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

    # -- inspection and administration ------------------------------------------------------
    @abc.abstractmethod
    def get(self, job_id: int) -> JobRecord | None: ...

    @abc.abstractmethod
    def list_jobs(
        self,
        *,
        queue: str | None = None,
        state: JobState | Sequence[JobState] | None = None,
        limit: int | None = 100,
        name: str | None = None,
        newest: bool = False,
    ) -> list[JobRecord]:
        """Jobs, oldest first (``newest``: newest first), filtered by queue, state(s) and job
        name; ``limit=None`` for all."""

    @abc.abstractmethod
    def count_jobs(
        self,
        *,
        queue: str | None = None,
        state: JobState | Sequence[JobState] | None = None,
        name: str | None = None,
    ) -> int:
        """How many jobs :meth:`list_jobs` would list with no limit."""

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
    def delete(self, job_id: int, *, force: bool = False) -> bool:
        """Delete one job; ``False`` if there is none. A job a worker holds (reserved or
        running) raises :class:`~litejobs.errors.JobRunningError` unless ``force``: its worker
        would go on running it."""

    @abc.abstractmethod
    def clear(self, *, queue: str | None = None, failed_only: bool = False) -> int:
        """Delete jobs (all, one queue's, or only failed ones); returns how many."""

    @abc.abstractmethod
    def prune(self, older_than: float, states: Sequence[JobState] | None = None) -> int:
        """Delete finished jobs (of ``states``) that finished before ``older_than`` (epoch s),
        whatever their retention; a small batch per transaction. Returns how many."""

    @abc.abstractmethod
    def prune_expired(self, limit: int = PRUNE_BATCH) -> int:
        """Delete up to ``limit`` finished jobs whose ``keep_until`` has passed, in one short
        transaction; returns how many (fewer than ``limit``: nothing else is due)."""

    @abc.abstractmethod
    def stats_rows(
        self, since: float | None = None
    ) -> list[tuple[float, str, str, int, int, float]]:
        """Outcome statistics ``(minute, queue, series, bucket, count, seconds)`` of the
        minutes from ``since`` on, summed over writers (:mod:`litejobs.metrics`); with
        ``since=None``, the totals ever recorded, minute ``0.0``."""

    @abc.abstractmethod
    def prune_stats(self, before: float) -> int:
        """Fold the statistics of minutes before ``before`` into the all-time totals (counters
        never go back) and delete them, an hour of minutes per transaction; returns how many
        rows went."""

    def last_job_id(self) -> int | None:
        """The highest job id ever issued (``None``: unknown). An id at or below it without a
        row belonged to a job that is gone."""
        return None

    def wait_for_outcome(self, timeout: float) -> bool:
        """Like :meth:`wait_for_change`, for someone waiting for a job to finish (a result)."""
        return self.wait_for_change(timeout)

    # -- job control ------------------------------------------------------------------------
    @abc.abstractmethod
    def cancel(self, job_id: int) -> JobState | None:
        """Cancel a job; returns the state it was in (``None``: no such job).

        ``scheduled``, ``ready`` or ``reserved``: it is ``cancelled`` now and never starts.
        ``running``: the cancel is requested (``cancelled_at``); its worker stops it and records
        it ``cancelled``, and until then every transition honours the request (an error, a
        give-back or a rescue ends it ``cancelled``, not ready). ``failed``, ``succeeded``,
        ``cancelled``: finished, nothing is changed.
        """

    @abc.abstractmethod
    def cancel_requested(self, job: ClaimedJob) -> bool:
        """Whether a person asked to cancel ``job`` while this claim still holds it (cheap: the
        worker's keeper asks while a long job runs)."""

    def wait_for_cancel(self, timeout: float) -> bool:
        """Block up to ``timeout`` s until a cancel may have been requested (``True``). The
        default sleeps; adapters wake on their change signal."""
        import time

        time.sleep(max(0.0, timeout))
        return False

    @abc.abstractmethod
    def pause(self, queue: str) -> bool:
        """Stop every worker on every host from claiming ``queue``'s jobs (held jobs finish);
        returns whether it was running before (``False``: already paused)."""

    @abc.abstractmethod
    def resume(self, queue: str) -> bool:
        """Let workers claim ``queue``'s jobs again; returns whether it was paused."""

    @abc.abstractmethod
    def set_queue_limit(self, queue: str, limit: int | None) -> None:
        """At most ``limit`` of ``queue``'s jobs held (reserved or running) at once, across every
        worker and host, from the next claim on (``None``: no limit)."""

    @abc.abstractmethod
    def queue_controls(self) -> dict[str, QueueControl]:
        """``{queue: QueueControl}`` for every queue that is paused or limited."""

    @abc.abstractmethod
    def exists(self) -> bool:
        """Whether the database and litejobs' tables exist (creates nothing)."""

    def inspect_only(self) -> None:  # noqa: B027 - optional hook
        """From now on, never create anything: a missing database is a
        :class:`~litejobs.errors.StorageError`; one that cannot be written is opened read-only
        (commands that only look: ``list``, ``show``, ``status``, a read-only mount)."""

    def maintenance(self) -> None:  # noqa: B027 - optional hook
        """Periodic housekeeping (SQLite: WAL checkpoint). Called by the supervisor."""

    def require(self, job_id: int) -> JobRecord:
        """Like :meth:`get`, but a missing job is a :class:`~litejobs.errors.JobNotFoundError`."""
        record = self.get(job_id)
        if record is None:
            raise self.missing(job_id)
        return record

    def missing(self, job_id: int) -> Exception:
        """The error for an id without a row: a job that is gone (its id was issued), or one
        that never was (a typo)."""
        from ..errors import JobDeletedError, JobNotFoundError

        last = self.last_job_id()
        if last is not None and 0 < job_id <= last:
            return JobDeletedError(
                f"job {job_id} finished and was deleted (or a person deleted it); keep finished "
                "jobs with keep_succeeded= / keep_failed= to look at them afterwards"
            )
        return JobNotFoundError(f"no job with id {job_id}; `litejobs list` shows the ids")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections held by this process."""
