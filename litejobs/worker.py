"""One worker: claim → run → record, until told to stop (or, for ``workoff``, until idle).

A worker registers under a name no live worker holds (atomically, in storage), with a token of
its own that its locks carry (:mod:`litejobs.liveness`). Its main thread claims and runs jobs;
a keeper thread (:class:`Keeper`) beats the heart, gives back jobs it reserved but is too busy
to start, flushes finished outcomes while a long job runs, and stops a job stuck past its hard
timeout. It survives storage outages by backing off and retrying; it never loses an outcome it
has not managed to record yet; a permanent storage error ends a ``workoff``.

Batches: when jobs are short, one claim takes several. The first starts at once (its attempt
counted by the claim); the rest are *reserved*: no attempt counted until started, given back
unstarted if the worker stops, is busy for more than a second, or dies. Outcomes are flushed
before the next job starts whenever jobs take a fifth of a millisecond or more (so a kill
re-runs only the job that was running) and at least every 5 ms otherwise; a reserved
job whose previous holder died is always charged before it starts (a job that kills its worker
runs out of attempts even inside batches), and a finished job on its last attempt is recorded
before the next one starts (a crash is never charged to a job that had already finished).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, NoReturn, TypeVar

from .adapters.base import PRUNE_BATCH, Adapter, ClaimedJob, Outcome, Rescued, compact_json
from .clock import Clock
from .config import WorkerConfig, worker_name
from .deadline import ABANDON_GRACE_MIN
from .errors import StopNow, StorageError
from .executor import Execution, Executor, Hook, run_of
from .liveness import (
    HostIdentity,
    Observer,
    Probe,
    WorkerInfo,
    process_start,
    this_host,
)
from .metrics import Tally
from .recurring import Ticker
from .retention import STATS_KEEP, Retention
from .retry import DEFAULT_RETRY, RetryPolicy

T = TypeVar("T")

logger = logging.getLogger("litejobs.worker")

#: Exit status of a worker process that had to abandon a job stuck past its hard timeout.
EXIT_STUCK = 70
#: A batch stops starting further claimed jobs once it has run this long (no hoarding).
BATCH_TIME_BUDGET = 0.05
#: Jobs averaging this long (s) or more get their outcome recorded before the next one starts.
PER_JOB_FLUSH = 0.0002
#: Otherwise outcomes wait at most this long (s) for the next flush (at the next job's start):
#: a kill re-runs what finished in this window; shorter costs drain speed (one write per
#: window: 1 ms drained no-op jobs ~30 % slower than 5 ms, measured by ``scripts/bench``).
FLUSH_WINDOW = 0.005
#: Reserved jobs are given back when the running job has taken this long (s).
GIVE_BACK_AFTER = 1.0
#: How often the keeper thread looks (s).
KEEPER_TICK = 0.25
#: A job running this long (s) has its cancel watched for (a shorter one ends first anyway).
WATCH_AFTER = 0.05
#: The least time (s) between two questions to storage about one job's cancel (SQLite wakes the
#: keeper on every commit of any process).
CANCEL_CHECK_GAP = 0.01
#: Without a signal, storage is asked this often (s): a lost notification costs at most this.
CANCEL_POLL = 1.0
#: How many free names ``pick_free`` tries (``litejobs-worker.<queues>.<n>``).
FREE_NAMES = 1000
#: Outcome statistics of several flushes are added up and written with the last outcomes of a
#: claimed batch, or after this long (s) at most: one statistics statement per batch of jobs,
#: not per flush (a worker that dies loses at most this much of them, never an outcome).
STATS_WINDOW = 0.1
#: How often (s) a worker prunes finished jobs whose retention ran out, and old statistics.
PRUNE_INTERVAL = 60.0
#: At most this many pruning transactions per pass (each a small batch: the lock stays short).
PRUNE_BATCHES = 20


@dataclass
class WorkerStats:
    """What a worker did; ``workoff`` prints it and exits 1 if anything errored or failed."""

    succeeded: int = 0
    errored: int = 0  # raised, will be retried
    failed: int = 0  # raised on the last attempt (or crashed its worker on it), or discarded
    lost: int = 0  # outcome not written: the claim had been taken over
    crashed: int = 0  # killed the worker process running it (counted by the supervisor)
    ran: int = 0
    snoozed: int = 0  # asked to run again later (Snooze): not an error
    cancelled: int = 0  # stopped by a person's cancel, or raised Cancel: not an error
    errors: list[str] = field(default_factory=list)

    @property
    def any_error(self) -> bool:
        return bool(self.errored or self.failed or self.crashed)

    def merge(self, other: WorkerStats) -> None:
        self.succeeded += other.succeeded
        self.errored += other.errored
        self.failed += other.failed
        self.lost += other.lost
        self.crashed += other.crashed
        self.ran += other.ran
        self.snoozed += other.snoozed
        self.cancelled += other.cancelled
        self.errors.extend(other.errors)


def qualified_name(name: str) -> str:
    """``host/name``: the readable worker name in ``locked_by``, unique across hosts."""
    return f"{socket.gethostname()}/{name}"


class Worker:
    """Runs jobs from ``adapter`` for one :class:`WorkerConfig`.

    ``name``: exactly this host-qualified name (``host/litejobs-worker.email.0``), refusing with
    :class:`~litejobs.errors.WorkerNameTaken` if a live worker holds it; ``worker_id``: the
    name for that id (with ``pick_free``: that id or the next free one); neither: the first free
    ``litejobs-worker.<queues>.<n>``. ``stop`` asks
    for a graceful stop: the current job finishes, reserved jobs are given back.
    ``exit_on_stuck``: in a worker *process*, abandon a job that ignores its timeout by
    recording the timeout and exiting with :data:`EXIT_STUCK` (the supervisor replaces us).
    ``host``/``probe``: where this worker says it runs and how it tells live processes (tests
    model other machines with them). ``job_retry``: a job's own retry policy by its path (the
    decorator's); ``queue_limits``: the app's limits of held jobs per queue, written to storage
    when the worker starts, so every worker on every host enforces them.
    """

    def __init__(
        self,
        adapter: Adapter,
        config: WorkerConfig | None = None,
        *,
        name: str | None = None,
        worker_id: int | None = None,
        pick_free: bool = False,
        clock: Clock | None = None,
        stop: threading.Event | None = None,
        hooks: Mapping[str, Sequence[Hook]] | None = None,
        job_hooks: Callable[[str], Mapping[str, Sequence[Hook]]] | None = None,
        job_retry: Callable[[str], RetryPolicy | None] | None = None,
        queue_limits: Mapping[str, int | None] | None = None,
        retention: Callable[[str], Retention] | None = None,
        keep_stats: float = STATS_KEEP,
        exit_on_stuck: bool = False,
        keep_running: Callable[[], bool] | None = None,
        on_job: Callable[[ClaimedJob, Execution], None] | None = None,
        ticker: Ticker | None = None,
        log: logging.Logger | None = None,
        host: HostIdentity | None = None,
        probe: Probe = process_start,
    ) -> None:
        self.adapter = adapter
        self.config = config or WorkerConfig()
        self.candidates = self._candidates(name, worker_id, pick_free)
        self.name = self.candidates[0]
        self.clock = clock or adapter.clock
        self.stop = stop or threading.Event()
        self.logger = self.config.logger or log or logger
        self.executor = Executor(logger=self.logger, hooks=hooks, job_hooks=job_hooks)
        self.job_retry = job_retry
        self.queue_limits = dict(queue_limits or {})
        self.retention = retention or (lambda path: Retention())
        self._retentions: dict[str, Retention] = {}
        self.keep_stats = keep_stats
        self.exit_on_stuck = exit_on_stuck
        self.keep_running = keep_running
        self.on_job = on_job
        self.ticker = ticker  # recurring schedules: every worker may enqueue, the db decides
        self.host = host or this_host()
        self.observer = Observer(
            host=self.host,
            probe=probe,
            max_attempts=self.config.max_attempts,
            delete_failed=self.config.delete_failed_jobs,
        )
        self.info = self._identity()
        self.stats = WorkerStats()
        self.outbox = Outbox(self.max_attempts_of)
        self.executor.on_decided = self.outbox.decided
        self._batch = 1
        self._avg_duration: float | None = None
        self._next_rescue = 0.0
        self._next_prune = 0.0
        self._tallied = Tally()  # statistics of recorded outcomes, not written yet
        self._tallied_since = 0.0
        self._outage_delay = 0.05
        self._workoff = False

    def _identity(self) -> WorkerInfo:
        return WorkerInfo.for_this_process(
            queues=self.config.queues_label,
            stale_after=self.config.stale_after,
            max_attempts=self.config.max_attempts,
            delete_failed=self.config.delete_failed_jobs,
            host=self.host,
        )

    def _candidates(self, name: str | None, worker_id: int | None, pick_free: bool) -> list[str]:
        if name is not None:
            return [name]
        first = worker_id or 0
        if worker_id is not None and not pick_free:
            return [qualified_name(worker_name(self.config, first))]
        ids = range(first, first + FREE_NAMES)
        return [qualified_name(worker_name(self.config, i)) for i in ids]

    # -- public -----------------------------------------------------------------------------
    def run(self, *, workoff: bool = False) -> WorkerStats:
        """Work until stopped; with ``workoff``, until nothing is eligible now."""
        self._workoff = workoff
        self.info = self._identity()  # this process's: a Worker may be built before a fork
        if not self._register():
            return self.stats
        keeper = Keeper(self)
        keeper.start()
        self.logger.debug("%s started (queues: %s)", self.name, self.config.queues_label)
        try:
            self._loop(workoff)
        finally:
            try:
                self._flush(force=True)
                self._give_back(self.outbox.take_reserved())
            finally:
                keeper.finish()
                self._deregister()
                self.executor.close()
        return self.stats

    # -- registration -----------------------------------------------------------------------
    def _register(self) -> bool:
        """Take a free name, however long storage is down (an unregistered worker has no
        heartbeat row: it must not claim anything). ``False`` if stopped meanwhile."""
        while not self.stop.is_set():
            try:
                registration = self.adapter.register_worker(
                    self.info, self.candidates, self.observer
                )
            except StorageError as exc:
                self._outage("register", exc)
                continue
            self.info = registration.worker
            self.name = self.info.name
            if registration.rescued:
                self._log_rescue("from a previous worker of this name", registration.rescued)
            return self._store_queue_limits()
        return False

    def _store_queue_limits(self) -> bool:
        """Write the app's queue limits before claiming anything (storage enforces them, for
        every worker of every host). ``False`` if stopped meanwhile."""
        while self.queue_limits and not self.stop.is_set():
            try:
                for queue, limit in sorted(self.queue_limits.items()):
                    self.adapter.set_queue_limit(queue, limit)
                return True
            except StorageError as exc:
                self._outage("queue limits", exc)
        return not self.stop.is_set()

    def _deregister(self) -> None:
        """Leave storage, giving back whatever is still held (a stop that could not wait: the
        running job's attempt counts)."""
        for delay in (0.0, 0.1, 0.5):
            time.sleep(delay)
            try:
                rescued = self.adapter.deregister_worker(self.info)
            except StorageError as exc:
                self.logger.warning("%s: could not deregister: %s", self.name, exc)
                continue
            if rescued.released or rescued.failed:
                self.logger.warning(
                    "%s: stopped with %s job(s) running; released for another run",
                    self.name,
                    rescued.released + rescued.failed,
                )
            return

    # -- the loop ---------------------------------------------------------------------------
    def _loop(self, workoff: bool) -> None:
        queues = self.config.queues
        while not self.stop.is_set():
            if self.keep_running is not None and not self.keep_running():
                self.logger.warning("%s: supervisor gone; stopping", self.name)
                break
            self._maybe_rescue()
            self._maybe_prune()
            if self.ticker is not None:
                self.ticker.run()
            jobs = self._call_storage(lambda: self.adapter.claim(self.info, queues, self._batch))
            if jobs is None:
                # A claim that failed may still have committed (a connection lost after the
                # COMMIT): give back anything held under our token, unstarted, before going on.
                self._call_storage(lambda: self.adapter.give_back(self.info))
                continue
            if not jobs:
                if workoff:
                    break
                self._idle(queues)
                continue
            self._run_batch(jobs)

    def _run_batch(self, jobs: list[ClaimedJob]) -> None:
        started = time.monotonic()
        self.outbox.reserve(jobs[1:])
        job: ClaimedJob | None = jobs[0]
        while job is not None:
            if self.stop.is_set() or time.monotonic() - started > BATCH_TIME_BUDGET:
                self.outbox.add(Outcome(job, "released"))  # given back, not started
                break
            outcome = self._run_one(job)
            if outcome is not None:
                self.outbox.add(outcome)
            job = self._next_job()
        self._give_back(self.outbox.take_reserved())
        self._flush(batch_done=True)
        self._adapt_batch()

    def _next_job(self) -> ClaimedJob | None:
        """The next reserved job, charged first when it must be (see the module docstring)."""
        while (job := self.outbox.next_reserved()) is not None:
            if job.suspect or self.outbox.flush_due(self._avg_duration):
                started = self._flush(start=job)
                if started is not None:
                    return started
                continue
            if self.outbox.holds_a_last_attempt():
                # Storage still shows that finished job running: were this one to kill the
                # worker, the rescue would fail it for a crash it did not cause.
                self._flush()
            return job
        return None

    def max_attempts_of(self, job: ClaimedJob) -> int:
        """The job's own ``max_attempts`` if it has one, else its group's."""
        return job.max_attempts if job.max_attempts is not None else self.config.max_attempts

    def max_runtime_of(self, job: ClaimedJob) -> float:
        """The job's own hard timeout if it has one, else its group's."""
        return job.max_runtime if job.max_runtime is not None else self.config.max_runtime

    def _run_one(self, job: ClaimedJob) -> Outcome | None:
        """Run ``job``; its outcome (``None``: the keeper recorded it already, its hooks having
        hung past their bound)."""
        max_attempts = self.max_attempts_of(job)
        started_at = self.clock.now()
        waited = started_at - job.run_at if job.run_at is not None else None
        self.outbox.running(job, waited)
        log = self.logger
        if log.isEnabledFor(logging.INFO):
            log.info(
                "job %s %s started (attempt %s, queue %s)",
                job.id,
                _name(job),
                job.attempts,
                job.queue,
                extra=self.log_fields(job),
            )
        result = self.executor.execute(
            job, max_runtime=self.max_runtime_of(job), max_attempts=max_attempts, worker=self.name
        )
        ran = self.outbox.running(None)
        self.stats.ran += 1
        avg = self._avg_duration
        self._avg_duration = result.duration if avg is None else 0.8 * avg + 0.2 * result.duration
        if self.on_job is not None:
            self.on_job(job, result)
        outcome = None
        # Only a run whose hooks followed its decided outcome can have been settled by the
        # keeper (it watches those hooks); any other is this thread's to record.
        if ran is None or ran.ended is None or self.outbox.settle(job):
            outcome = self._outcome(job, result, max_attempts, waited)
        if result.stop_now:
            self._stop_now_after(outcome)
        return outcome

    def _stop_now_after(self, outcome: Outcome | None) -> NoReturn:
        """The stop-now came during the hooks that follow ``outcome``: the job had finished,
        so its outcome is recorded (with whatever else was pending) before the worker stops
        now as asked; released instead, it would run again. One try: storage that is down
        does not hold a stop-now (the job is then released, as before)."""
        self.stop.set()
        if outcome is not None:
            self.outbox.add(outcome)
        self._flush(batch_done=True)
        raise StopNow

    def log_fields(
        self, job: ClaimedJob, outcome: str | None = None, duration: float | None = None
    ) -> dict[str, object]:
        """The fields every job line carries (``--log-format json`` prints them)."""
        return {
            "job_id": job.id,
            "job": _name(job),
            "queue": job.queue,
            "attempt": job.attempts,
            "worker": self.name,
            "duration_ms": None if duration is None else round(duration * 1000, 3),
            "outcome": outcome,
        }

    def _outcome(
        self, job: ClaimedJob, result: Execution, max_attempts: int, waited: float | None
    ) -> Outcome:
        """The outcome of a run, logged; ``waited``: seconds from due to started."""
        log = self.logger
        duration = result.duration
        if result.ok:
            self.stats.succeeded += 1
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "job %s %s succeeded in %.1f ms",
                    job.id,
                    _name(job),
                    result.duration * 1000,
                    extra=self.log_fields(job, "succeeded", result.duration),
                )
            return self._success(job, result.value, duration, waited)
        if result.directive == "snoozed":
            self.stats.snoozed += 1
            log.info(
                "job %s %s snoozed for %g s (attempt not counted)",
                job.id,
                _name(job),
                result.snooze,
                extra=self.log_fields(job, "snoozed", result.duration),
            )
            return Outcome(
                job, "snoozed", retry_at=self.clock.now() + result.snooze, duration=duration
            )
        first_line = (result.error or "").splitlines()[0] if result.error else "error"
        if result.directive == "cancelled":
            self.stats.cancelled += 1
            log.warning(
                "job %s %s cancelled: %s",
                job.id,
                _name(job),
                first_line,
                extra=self.log_fields(job, "cancelled", result.duration),
            )
            return self.cancellation(job, result.error, duration, waited)
        self.stats.errors.append(f"job {job.id} {_name(job)}: {first_line}")
        if job.attempts >= max_attempts or result.directive == "discarded":
            self.stats.failed += 1
            log.error(
                "job %s %s failed for good after %s attempt%s: %s",
                job.id,
                _name(job),
                job.attempts,
                "" if job.attempts == 1 else "s",
                first_line,
                extra=self.log_fields(job, "failed", result.duration),
            )
            return self.failure(job, result.error, duration, waited)
        self.stats.errored += 1
        delay = self.retry_delay(job)
        log.warning(
            "job %s %s raised (attempt %s of %s), retrying in %s s: %s",
            job.id,
            _name(job),
            job.attempts,
            max_attempts,
            f"{delay:g}",
            first_line,
            extra=self.log_fields(job, "errored", result.duration),
        )
        retry_at = self.clock.now() + delay
        return Outcome(job, "errored", result.error, retry_at, duration=duration, waited=waited)

    def _retention(self, job: ClaimedJob) -> Retention:
        """The job's retention rules, looked up once per job path by this worker."""
        path = _path(job)
        found = self._retentions.get(path)
        if found is None:
            found = self._retentions[path] = self.retention(path)
        return found

    def _success(
        self, job: ClaimedJob, value: object, duration: float, waited: float | None
    ) -> Outcome:
        """A success, kept or deleted by the retention rules, with its result if it keeps one."""
        retention = self._retention(job)
        keep_result = job.keep_result or retention.keep_result
        delete, keep_until = retention.succeeded(
            self.clock.now(),
            delete_default=self.config.delete_successful_jobs,
            keep_result=keep_result,
        )
        result = self._result_json(job, value) if keep_result and not delete else None
        return Outcome(job, "succeeded", None, None, delete, keep_until, result, duration, waited)

    def _result_json(self, job: ClaimedJob, value: object) -> str | None:
        """The return value as JSON; one that is not JSON is logged and not stored (the job
        succeeded: failing it would run its side effects again)."""
        try:
            return compact_json(value)
        except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: nested deep
            self.logger.warning(
                "job %s %s succeeded, but its return value cannot be stored as JSON (%s); "
                "no result kept",
                job.id,
                _name(job),
                exc,
                extra=self.log_fields(job, "succeeded"),
            )
            return None

    def failure(
        self, job: ClaimedJob, error: str | None, duration: float, waited: float | None = None
    ) -> Outcome:
        """A failure for good, kept or deleted by the retention rules."""
        delete, keep_until = self._retention(job).failed(
            self.clock.now(), delete_default=self.config.delete_failed_jobs
        )
        return Outcome(
            job, "failed", error, None, delete, keep_until, duration=duration, waited=waited
        )

    def cancellation(
        self, job: ClaimedJob, error: str | None, duration: float, waited: float | None = None
    ) -> Outcome:
        """A cancel carried out: recorded (a person asked for it, and may retry it), then kept as
        long as the retention rules keep failed jobs (``keep_failed=0``: until the next pruning
        pass, not deleted at once)."""
        now = self.clock.now()
        delete, keep_until = self._retention(job).failed(now, delete_default=False)
        if delete:
            keep_until = now
        return Outcome(
            job, "cancelled", error, None, False, keep_until, duration=duration, waited=waited
        )

    def retry_delay(self, job: ClaimedJob) -> float:
        """Seconds before ``job``'s next attempt: the policy stored with it, else its
        decorator's, else its group's.

        A retry function that raises (or returns no number) is the app's bug, not the job's: it
        is logged and ``attempts ** 4`` applies. Raised from here it would kill the worker (or
        its keeper thread), and the job would be rescued as a crash, at every attempt.
        """
        if job.retry is not None:
            policy = RetryPolicy.from_data(job.retry)
        else:
            own = self.job_retry(_path(job)) if self.job_retry is not None else None
            policy = own or self.config.retry_policy
        try:
            return policy.seconds(job.attempts)
        except Exception:
            self.logger.exception(
                "job %s %s: its retry policy raised; retrying after the default backoff",
                job.id,
                _name(job),
            )
            return DEFAULT_RETRY.seconds(job.attempts)

    def _adapt_batch(self) -> None:
        """Claim more per transaction when jobs are short, one at a time when they are long."""
        avg = self._avg_duration
        if avg is None or avg >= BATCH_TIME_BUDGET / 2:
            self._batch = 1
        else:
            fit = int(BATCH_TIME_BUDGET / 4 / max(avg, 1e-6))
            self._batch = max(1, min(self.config.batch_size, fit, self._batch * 2))

    # -- recording --------------------------------------------------------------------------
    def _flush(
        self, *, force: bool = False, start: ClaimedJob | None = None, batch_done: bool = False
    ) -> ClaimedJob | None:
        """Record pending outcomes (and start ``start``); on a storage outage keep them and
        retry (never drop one). Returns ``start`` charged, or ``None`` if it was not started.

        Their statistics are added up until the batch is done (or :data:`STATS_WINDOW` has
        passed, or the worker stops), then written in that flush's transaction."""
        delay = 0.1
        while True:
            outcomes = self.outbox.take_pending()
            due = force or batch_done or time.monotonic() - self._tallied_since >= STATS_WINDOW
            if not outcomes and start is None and not (due and self._tallied):
                return None
            # When due: the earlier flushes' statistics and this one's, in this transaction
            # (the kept tally changes only once the transaction has committed).
            rows = self._tallied.copy().add(_runs(outcomes)).rows() if due else []
            try:
                written, started = self.adapter.record(outcomes, start, rows)
            except StorageError as exc:
                self.outbox.put_back(outcomes)
                if (self.stop.is_set() and not force) or (exc.permanent and self._workoff):
                    if exc.permanent and self._workoff:
                        raise
                    return None
                self.logger.warning(
                    "%s: cannot record outcomes (%s); retrying in %.1f s", self.name, exc, delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._count_lost(outcomes, written)
            if due or not self._tallied:
                self._tallied_since = time.monotonic()
            if due:
                self._tallied = Tally()
            else:
                self._tallied.add(_runs(outcomes))
            return started

    def _count_lost(self, outcomes: Sequence[Outcome], written: Sequence[bool]) -> None:
        for outcome, ok in zip(outcomes, written, strict=True):
            if not ok and outcome.kind != "released":
                self.stats.lost += 1
                self.logger.warning(
                    "job %s: its claim was taken over before its outcome (%s) was recorded "
                    "(this worker was presumed gone, or the job was abandoned after its "
                    "timeout); outcome dropped",
                    outcome.job.id,
                    outcome.kind,
                    extra=self.log_fields(outcome.job, outcome.kind, outcome.duration),
                )

    def _give_back(self, jobs: Sequence[ClaimedJob]) -> None:
        if jobs:
            self.outbox.extend([Outcome(j, "released") for j in jobs])

    # -- idling and rescue ------------------------------------------------------------------
    def _idle(self, queues: Sequence[str] | None) -> None:
        """Sleep until work may be there: a change in storage, the next scheduled job, or
        ``sleep_delay`` at most."""
        timeout = self.config.sleep_delay
        due = self.ticker.due_at if self.ticker is not None else None
        if due is not None:
            timeout = min(timeout, max(0.0, due - self.clock.now()))
        next_at = self._call_storage(lambda: self.adapter.next_run_at(queues))
        if next_at is not None:
            timeout = min(timeout, max(0.0, next_at - self.clock.now()))
        deadline = time.monotonic() + timeout
        while not self.stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                changed = self.adapter.wait_for_change(min(remaining, 0.25))
                if changed and self.adapter.has_ready(queues):
                    return
            except StorageError as exc:
                self.logger.warning("%s: storage unavailable while idle: %s", self.name, exc)
                self.stop.wait(min(remaining, 1.0))

    def _maybe_prune(self) -> None:
        """Now and then, delete finished jobs whose retention ran out and fold old statistics,
        a small batch per transaction (other workers and enqueuers wait for none of it long)."""
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_INTERVAL
        for _ in range(PRUNE_BATCHES):
            pruned = self._call_storage(self.adapter.prune_expired)
            if pruned is None or pruned < PRUNE_BATCH:
                break
        before = self.clock.now() - self.keep_stats
        self._call_storage(lambda: self.adapter.prune_stats(before))

    def _rescue_interval(self) -> float:
        return max(1.0, self.config.stale_after / 4)

    def _maybe_rescue(self) -> None:
        now = time.monotonic()
        if now < self._next_rescue:
            return
        self._next_rescue = now + self._rescue_interval()
        rescued = self._call_storage(lambda: self.adapter.rescue(self.observer))
        if rescued:
            self._log_rescue("of workers that are gone", rescued)

    def _log_rescue(self, whose: str, rescued: Rescued) -> None:
        if rescued.released or rescued.failed or rescued.returned:
            self.logger.warning(
                "rescued %s running job(s) %s (%s failed for good) and %s reserved, unstarted",
                rescued.released + rescued.failed,
                whose,
                rescued.failed,
                rescued.returned,
            )

    def _call_storage(self, fn: Callable[[], T]) -> T | None:
        """Run a storage call; on an outage log, back off and return ``None``. A permanent
        error ends a ``workoff`` (cron must not pile up runs waiting on a corrupt file)."""
        try:
            result = fn()
        except StorageError as exc:
            self._outage("storage call", exc)
            return None
        self._outage_delay = 0.05
        return result

    def _outage(self, what: str, exc: StorageError) -> None:
        if exc.permanent and self._workoff:
            raise exc
        self._outage_delay = min(self._outage_delay * 2, 10.0)
        self.logger.warning(
            "%s: storage unavailable during %s: %s (retrying in %.1f s)",
            self.name,
            what,
            exc,
            self._outage_delay,
        )
        self.stop.wait(self._outage_delay)


class Running(NamedTuple):
    """The job in the worker's main thread now, as its keeper thread watches it (a tuple: one
    is made per job)."""

    job: ClaimedJob
    started: float  # monotonic
    waited: float | None  # seconds from due to started
    #: The run's outcome, once its call ended: the hooks that follow may still be running.
    ended: Execution | None = None
    ended_at: float = 0.0  # monotonic


class Outbox:
    """What a worker holds between storage calls, shared by its main and keeper threads:
    outcomes not recorded yet, reserved jobs not started yet, the job running now."""

    def __init__(self, max_attempts_of: Callable[[ClaimedJob], int]) -> None:
        self._lock = threading.Lock()
        self._max_attempts_of = max_attempts_of
        self._pending: list[Outcome] = []
        self._oldest = 0.0  # monotonic time of the oldest pending outcome
        self._holds_last = False  # a pending outcome is a charged job's last attempt
        self._reserved: list[ClaimedJob] = []
        self.current: Running | None = None
        self._settled: tuple[int, float, int] | None = None  # the run last settled

    def add(self, outcome: Outcome) -> None:
        self.extend([outcome])

    def extend(self, outcomes: Sequence[Outcome]) -> None:
        last = any(self._on_last_attempt(o) for o in outcomes)
        with self._lock:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.extend(outcomes)
            self._holds_last = self._holds_last or last

    def take_pending(self) -> list[Outcome]:
        with self._lock:
            taken, self._pending = self._pending, []
            self._holds_last = False
            return taken

    def put_back(self, outcomes: Sequence[Outcome]) -> None:
        with self._lock:
            self._pending[:0] = outcomes
            self._oldest = time.monotonic()
            self._holds_last = any(self._on_last_attempt(o) for o in self._pending)

    def flush_due(self, avg_duration: float | None) -> bool:
        """Should pending outcomes be recorded before the next job starts?"""
        with self._lock:
            if not self._pending:
                return False
            long_jobs = avg_duration is not None and avg_duration >= PER_JOB_FLUSH
            return long_jobs or time.monotonic() - self._oldest >= FLUSH_WINDOW

    def holds_a_last_attempt(self) -> bool:
        """Is a pending outcome that of a job storage shows running (charged) on its last
        attempt? (A crash before it is recorded would be charged to it: failed.) Asked before
        every start: kept up to date as outcomes come and go, so each is looked at once."""
        with self._lock:
            return self._holds_last

    def _on_last_attempt(self, outcome: Outcome) -> bool:
        job = outcome.job
        return job.charged and job.attempts >= self._max_attempts_of(job)

    def reserve(self, jobs: Sequence[ClaimedJob]) -> None:
        with self._lock:
            self._reserved = list(jobs)

    def next_reserved(self) -> ClaimedJob | None:
        with self._lock:
            return self._reserved.pop(0) if self._reserved else None

    def take_reserved(self) -> list[ClaimedJob]:
        with self._lock:
            taken, self._reserved = self._reserved, []
            return taken

    def running(self, job: ClaimedJob | None, waited: float | None = None) -> Running | None:
        """The job the main thread runs now (``None``: none); the run it replaces."""
        with self._lock:
            previous = self.current
            self.current = None if job is None else Running(job, time.monotonic(), waited)
            return previous

    def decided(self, execution: Execution) -> None:
        """The running job's call ended with ``execution``; the hooks that follow it start."""
        with self._lock:
            if self.current is not None:
                self.current = self.current._replace(ended=execution, ended_at=time.monotonic())

    def settle(self, job: ClaimedJob) -> bool:
        """Take the right to record the outcome of ``job``'s run: ``True`` once per run, to
        the main thread when the run's hooks end or to the keeper when they hang past their
        bound, never to both."""
        with self._lock:
            if self._settled == run_of(job):
                return False
            self._settled = run_of(job)
            return True


class Keeper(threading.Thread):
    """The worker's second thread: heartbeats, giving back reserved jobs while a long job runs,
    flushing outcomes that would otherwise wait for it, the hard-timeout watchdog, and a person's
    cancel of the running job.

    While a job has run :data:`WATCH_AFTER` or more, the keeper sleeps on the adapter's cancel
    signal (SQLite: any commit, the change signal idle workers use; PostgreSQL: ``NOTIFY`` on a
    channel that carries cancels only) instead of its tick, asks storage whether the job's cancel
    was requested (at most every :data:`CANCEL_CHECK_GAP`, and every :data:`CANCEL_POLL` without
    a signal), and interrupts the job (:meth:`~litejobs.executor.Executor.interrupt`).
    """

    def __init__(self, worker: Worker) -> None:
        super().__init__(name="litejobs-keeper", daemon=True)
        self.worker = worker
        self.done = threading.Event()
        self.abandoned: set[tuple[int, float, int]] = set()
        self.cancels = CancelWatch()

    def finish(self) -> None:
        self.done.set()
        self.join(timeout=5)

    def run(self) -> None:
        worker = self.worker
        interval = worker.config.heartbeat_interval
        next_beat = time.monotonic() + interval
        while not self.done.is_set():
            self._pause(min(KEEPER_TICK, interval))
            if self.done.is_set():
                break
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + interval
                self._beat()
            try:
                self._tend()
            except StorageError as exc:
                worker.logger.warning("%s: keeper could not write: %s", worker.name, exc)

    def _pause(self, tick: float) -> None:
        """Wait a tick; while a long job runs, on the cancel signal (or until a check that was
        held back is due)."""
        current = self.worker.outbox.current
        if current is None or time.monotonic() - current.started < WATCH_AFTER:
            self.done.wait(tick)
            return
        held_back = self.cancels.held_back()
        if held_back is not None:
            self.done.wait(held_back)
            return
        try:
            if self.worker.adapter.wait_for_cancel(tick):
                self.cancels.signalled()
        except StorageError as exc:
            self.worker.logger.warning("%s: cannot watch for cancels: %s", self.worker.name, exc)
            self.done.wait(tick)

    def _beat(self) -> None:
        worker = self.worker
        try:
            if not worker.adapter.heartbeat(worker.info):
                worker.logger.warning(
                    "%s: its worker row was missing (deleted, or it was presumed gone after "
                    "being silent); registered it again",
                    worker.name,
                )
        except StorageError as exc:
            worker.logger.warning("%s: heartbeat failed: %s", worker.name, exc)

    def _tend(self) -> None:
        worker = self.worker
        current = worker.outbox.current
        if current is None:
            return
        job = current.job
        running_for = time.monotonic() - current.started
        if running_for >= GIVE_BACK_AFTER:
            reserved = worker.outbox.take_reserved()
            if reserved:
                worker.adapter.record([Outcome(j, "released") for j in reserved])
                worker.logger.info(
                    "%s: job %s is taking a while; gave back %s reserved job(s) for others",
                    worker.name,
                    job.id,
                    len(reserved),
                )
        if running_for >= FLUSH_WINDOW:
            outcomes = worker.outbox.take_pending()
            if outcomes:
                try:
                    written, _ = worker.adapter.record(outcomes)
                except StorageError:
                    worker.outbox.put_back(outcomes)
                    raise
                worker._count_lost(outcomes, written)
        if current.ended is not None:
            self._watch_hooks(current, current.ended)
            return
        if running_for >= WATCH_AFTER:
            self._watch_cancel(job)
        self._watch(job, running_for)

    def _watch_cancel(self, job: ClaimedJob) -> None:
        """Carry out a person's cancel of the running job: interrupt it (again every tick while
        it runs: the first signal may have come between its hooks); past a grace, abandon it
        as cancelled, as a job that ignores its timeout is."""
        worker, cancels = self.worker, self.cancels
        asked = cancels.asked(job, lambda: worker.adapter.cancel_requested(job))
        if asked is None:
            return
        if cancels.interrupt_due():
            if cancels.interrupts == 1:
                worker.logger.warning("job %s: cancel requested; stopping it", job.id)
            worker.executor.interrupt(job)
        if time.monotonic() - asked >= ABANDON_GRACE_MIN:
            error = "JobCancelledError: cancelled while running (the job did not stop; abandoned)"
            outcome = worker.cancellation(job, error, time.monotonic() - asked)
            self._abandon(job, outcome, "ignored its cancel")

    def _watch(self, job: ClaimedJob, running_for: float) -> None:
        """A job past ``max_runtime`` plus a grace did not stop when told: record it as timed
        out (it retries), and in a worker process exit so the supervisor starts a fresh one."""
        worker = self.worker
        limit = worker.max_runtime_of(job)
        if running_for < limit + abandon_grace(limit):
            return
        error = f"JobTimeoutError: timed out after {limit:g} s (the job did not stop; abandoned)"
        if job.attempts >= worker.max_attempts_of(job):
            outcome = worker.failure(job, error, running_for)
        else:
            retry_at = worker.clock.now() + worker.retry_delay(job)
            outcome = Outcome(job, "errored", error, retry_at, duration=running_for)
        self._abandon(job, outcome, f"ignored its {limit:g} s timeout")

    def _watch_hooks(self, current: Running, ended: Execution) -> None:
        """The job's call ended with ``ended``, its outcome decided; the hooks that follow it
        get the job's ``max_runtime`` plus the grace again. Past that, the decided outcome is
        recorded (a success stays a success: the job is not run again) and the hooks
        abandoned."""
        worker, job = self.worker, current.job
        limit = worker.max_runtime_of(job)
        if time.monotonic() - current.ended_at < limit + abandon_grace(limit):
            return
        if not worker.outbox.settle(job):
            return
        outcome = worker._outcome(job, ended, worker.max_attempts_of(job), current.waited)
        why = f"ended ({outcome.kind}) but the hooks after it ran past {limit:g} s; outcome kept"
        self._abandon(job, outcome, why)

    def _abandon(self, job: ClaimedJob, outcome: Outcome, why: str) -> None:
        """Record ``outcome`` for a job that did not stop when told (once per run); in a worker
        process, exit so the supervisor starts a fresh one."""
        worker = self.worker
        if run_of(job) in self.abandoned:
            return
        self.abandoned.add(run_of(job))
        worker.logger.error(
            "job %s %s; abandoning it%s",
            job.id,
            why,
            " and restarting the worker" if worker.exit_on_stuck else "",
            extra=worker.log_fields(job, outcome.kind, outcome.duration),
        )
        try:
            worker.adapter.record([outcome])
        finally:
            if worker.exit_on_stuck:
                os._exit(EXIT_STUCK)


def abandon_grace(limit: float) -> float:
    """How long past its ``limit`` a run that did not stop when told is waited for: a tenth,
    between :data:`~litejobs.deadline.ABANDON_GRACE_MIN` and 30 s."""
    return max(ABANDON_GRACE_MIN, min(30.0, limit * 0.1))


class CancelWatch:
    """The keeper's memory of the running job's cancel: whether and when storage was last
    asked, whether it was requested, when the job was last interrupted."""

    def __init__(self) -> None:
        self.reset(None)

    def reset(self, run: tuple[int, float, int] | None) -> None:
        """Forget the previous run: a new one is watched (asked about at once)."""
        self.run = run
        self.requested_at: float | None = None  # monotonic time the request was seen
        self.pending = run is not None  # a signal came (or a new run): ask storage
        self.last_check = 0.0
        self.last_interrupt = 0.0
        self.interrupts = 0

    def signalled(self) -> None:
        self.pending = True

    def held_back(self) -> float | None:
        """Seconds until a signalled check may run (``None``: none is held back)."""
        if not self.pending or self.requested_at is not None:
            return None
        wait = self.last_check + CANCEL_CHECK_GAP - time.monotonic()
        return wait if wait > 0 else None

    def asked(self, job: ClaimedJob, requested: Callable[[], bool]) -> float | None:
        """When the cancel of ``job``'s run was seen (``None``: not requested), asking storage
        when a signal came, when the run is new to the watch, or every :data:`CANCEL_POLL`."""
        now = time.monotonic()
        if run_of(job) != self.run:
            self.reset(run_of(job))
        if self.requested_at is not None:
            return self.requested_at
        due = self.pending and now - self.last_check >= CANCEL_CHECK_GAP
        if not (due or now - self.last_check >= CANCEL_POLL):
            return None
        self.pending, self.last_check = False, now
        if requested():
            self.requested_at = now
        return self.requested_at

    def interrupt_due(self) -> bool:
        now = time.monotonic()
        if now - self.last_interrupt < KEEPER_TICK:
            return False
        self.last_interrupt = now
        self.interrupts += 1
        return True


def _runs(outcomes: Sequence[Outcome]) -> list[tuple[str, str, float | None, float | None]]:
    """What the statistics count of each outcome: queue, kind, run and wait seconds."""
    return [(o.job.queue, o.kind, o.duration, o.waited) for o in outcomes]


def _name(job: ClaimedJob) -> str:
    """The job's function name, read cheaply from the handler JSON for log lines."""
    return _field(job.handler, '"name":"')


def _path(job: ClaimedJob) -> str:
    return _field(job.handler, '"path":"')


def _field(handler: str, key: str) -> str:
    start = handler.find(key)
    if start < 0:
        return "?"
    start += len(key)
    return handler[start : handler.find('"', start)]
