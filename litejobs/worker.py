"""One worker: claim → run → record, until told to stop (or, for ``workoff``, until idle).

A worker owns one adapter connection for its loop and a second one in a heartbeat thread that
also watches for jobs stuck past ``max_runtime``. It survives storage outages by backing off and
retrying; it never loses an outcome it has not managed to record yet.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from .adapters.base import Adapter, ClaimedJob, Outcome
from .clock import Clock
from .config import WorkerConfig
from .deadline import ABANDON_GRACE_MIN
from .errors import StorageError
from .executor import Execution, Executor, Hook
from .recurring import Ticker

T = TypeVar("T")

logger = logging.getLogger("litejobs.worker")

#: Exit status of a worker process that had to abandon a job stuck past its hard timeout.
EXIT_STUCK = 70
#: A batch stops taking further claimed jobs once it has run this long (no hoarding).
BATCH_TIME_BUDGET = 0.05


@dataclass
class WorkerStats:
    """What a worker did; ``workoff`` prints it and exits 1 if anything errored."""

    succeeded: int = 0
    errored: int = 0  # raised, will be retried
    failed: int = 0  # raised on the last attempt
    lost: int = 0  # outcome not written: the lock had been taken over
    ran: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def any_error(self) -> bool:
        return bool(self.errored or self.failed)

    def merge(self, other: WorkerStats) -> None:
        self.succeeded += other.succeeded
        self.errored += other.errored
        self.failed += other.failed
        self.lost += other.lost
        self.ran += other.ran
        self.errors.extend(other.errors)


def qualified_name(name: str) -> str:
    """``host/name``: what ``locked_by`` holds, unique across hosts."""
    return f"{socket.gethostname()}/{name}"


class Worker:
    """Runs jobs from ``adapter`` for one :class:`WorkerConfig`.

    ``name`` is the host-qualified worker name (``host/litejobs-worker.email.0``). ``stop`` asks
    for a graceful stop: the current job finishes, claimed-but-unstarted jobs are released.
    ``exit_on_stuck``: in a worker *process*, abandon a job that ignores its timeout by
    recording the timeout and exiting with :data:`EXIT_STUCK` (the supervisor replaces us).
    """

    def __init__(
        self,
        adapter: Adapter,
        config: WorkerConfig | None = None,
        *,
        name: str | None = None,
        clock: Clock | None = None,
        stop: threading.Event | None = None,
        hooks: Mapping[str, Sequence[Hook]] | None = None,
        job_hooks: Callable[[str], Mapping[str, Sequence[Hook]]] | None = None,
        exit_on_stuck: bool = False,
        keep_running: Callable[[], bool] | None = None,
        on_job: Callable[[ClaimedJob, Execution], None] | None = None,
        ticker: Ticker | None = None,
    ) -> None:
        self.adapter = adapter
        self.config = config or WorkerConfig()
        self.name = name or qualified_name(f"litejobs-worker.{self.config.queues_label}.0")
        self.clock = clock or adapter.clock
        self.stop = stop or threading.Event()
        self.logger = self.config.logger or logger
        self.executor = Executor(logger=self.logger, hooks=hooks, job_hooks=job_hooks)
        self.exit_on_stuck = exit_on_stuck
        self.keep_running = keep_running
        self.on_job = on_job
        self.ticker = ticker  # recurring schedules: every worker may enqueue, the db decides
        self.stats = WorkerStats()
        self._current: tuple[ClaimedJob, float] | None = None  # job, monotonic start
        self._current_lock = threading.Lock()
        self._batch = 1
        self._avg_duration: float | None = None
        self._next_recovery = 0.0
        self._pending: list[Outcome] = []

    # -- public -----------------------------------------------------------------------------
    def run(self, *, workoff: bool = False) -> WorkerStats:
        """Work until stopped; with ``workoff``, until nothing is eligible now."""
        queues = self.config.queues
        # Register before claiming anything, however long storage is down: an unregistered
        # worker has no heartbeat row, so any other worker's recovery would take its running jobs.
        registered = None
        while registered is None and not self.stop.is_set():
            registered = self._call_storage(
                lambda: self.adapter.register_worker(
                    self.name,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    queues=self.config.queues_label,
                    max_attempts=self.config.max_attempts,
                ),
                "register",
            )
        beat_stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat_loop, args=(beat_stop,), name="litejobs-heartbeat", daemon=True
        )
        beat.start()
        self.logger.debug("%s started (queues: %s)", self.name, self.config.queues_label)
        try:
            while not self.stop.is_set():
                if self.keep_running is not None and not self.keep_running():
                    self.logger.warning("%s: supervisor gone; stopping", self.name)
                    break
                self._maybe_recover()
                if self.ticker is not None:
                    self.ticker.run()
                jobs = self._call_storage(
                    lambda: self.adapter.claim(self.name, queues, self._batch), "claim"
                )
                if jobs is None:
                    continue
                if not jobs:
                    if workoff:
                        break
                    self._idle(queues)
                    continue
                self._run_batch(jobs)
        finally:
            self._flush(force=True)
            beat_stop.set()
            beat.join(timeout=5)
            try:
                self.adapter.deregister_worker(self.name)
            except StorageError as exc:
                self.logger.warning("%s: could not deregister: %s", self.name, exc)
            self.executor.close()
        return self.stats

    # -- the loop ---------------------------------------------------------------------------
    def _run_batch(self, jobs: list[ClaimedJob]) -> None:
        started = time.monotonic()
        for index, job in enumerate(jobs):
            over_budget = index > 0 and time.monotonic() - started > BATCH_TIME_BUDGET
            if self.stop.is_set() or over_budget:
                # Give back what we claimed but did not start, so others can take it now.
                self._pending.extend(Outcome(j, "release") for j in jobs[index:])
                break
            self._pending.append(self._run_one(job))
        self._flush()
        self._adapt_batch()

    def _run_one(self, job: ClaimedJob) -> Outcome:
        config = self.config
        max_attempts = job.max_attempts if job.max_attempts is not None else config.max_attempts
        with self._current_lock:
            self._current = (job, time.monotonic())
        log = self.logger
        if log.isEnabledFor(logging.INFO):
            log.info(
                "job %s %s started (attempt %s, queue %s)",
                job.id,
                _name(job),
                job.attempts,
                job.queue,
            )
        result = self.executor.execute(
            job, max_runtime=config.max_runtime, max_attempts=max_attempts, worker=self.name
        )
        with self._current_lock:
            self._current = None
        self.stats.ran += 1
        avg = self._avg_duration
        self._avg_duration = result.duration if avg is None else 0.8 * avg + 0.2 * result.duration
        if self.on_job is not None:
            self.on_job(job, result)
        if result.ok:
            self.stats.succeeded += 1
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "job %s %s succeeded in %.1f ms", job.id, _name(job), result.duration * 1000
                )
            return Outcome(job, "success", delete=config.delete_successful_jobs)
        first_line = (result.error or "").splitlines()[0] if result.error else "error"
        self.stats.errors.append(f"job {job.id} {_name(job)}: {first_line}")
        if job.attempts >= max_attempts:
            self.stats.failed += 1
            log.error(
                "job %s %s failed for good after %s attempts: %s",
                job.id,
                _name(job),
                job.attempts,
                first_line,
            )
            return Outcome(job, "failure", error=result.error, delete=config.delete_failed_jobs)
        self.stats.errored += 1
        delay = job.attempts**4
        log.warning(
            "job %s %s raised (attempt %s of %s), retrying in %s s: %s",
            job.id,
            _name(job),
            job.attempts,
            max_attempts,
            delay,
            first_line,
        )
        return Outcome(job, "error", error=result.error, retry_at=self.clock.now() + delay)

    def _adapt_batch(self) -> None:
        """Claim more per transaction when jobs are short, one at a time when they are long."""
        avg = self._avg_duration
        if avg is None or avg >= BATCH_TIME_BUDGET / 2:
            self._batch = 1
        else:
            fit = int(BATCH_TIME_BUDGET / 4 / max(avg, 1e-6))
            self._batch = max(1, min(self.config.batch_size, fit, self._batch * 2))

    def _flush(self, force: bool = False) -> None:
        """Record pending outcomes; on a storage outage keep them and retry (never drop one)."""
        delay = 0.1
        while self._pending:
            try:
                written = self.adapter.record(self._pending)
            except StorageError as exc:
                if self.stop.is_set() and not force:
                    return
                self.logger.warning(
                    "%s: cannot record outcomes (%s); retrying in %.1f s", self.name, exc, delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            for outcome, ok in zip(self._pending, written, strict=True):
                if not ok and outcome.kind != "release":
                    self.stats.lost += 1
                    self.logger.warning(
                        "job %s: lock lost before its %s was recorded (another worker "
                        "recovered it); outcome dropped",
                        outcome.job.id,
                        outcome.kind,
                    )
            self._pending = []

    def _idle(self, queues: Sequence[str] | None) -> None:
        """Sleep until work may be there: a change in storage, the next scheduled job, or
        ``sleep_delay`` at most."""
        timeout = self.config.sleep_delay
        due = self.ticker.due_at if self.ticker is not None else None
        if due is not None:
            timeout = min(timeout, max(0.0, due - self.clock.now()))
        next_at = self._call_storage(lambda: self.adapter.next_run_at(queues), "peek")
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

    def _maybe_recover(self) -> None:
        now = time.monotonic()
        if now < self._next_recovery:
            return
        self._next_recovery = now + max(1.0, self.config.stale_after / 4)
        result = self._call_storage(
            lambda: self.adapter.recover_stale(self.config.stale_after, self.config.max_attempts),
            "recover",
        )
        if result and any(result):
            self.logger.warning(
                "recovered %s job(s) from dead workers (%s failed for good)",
                result[0] + result[1],
                result[1],
            )

    def _call_storage(self, fn: Callable[[], T], what: str) -> T | None:
        """Run a storage call; on an outage log, back off and return ``None``."""
        try:
            return fn()
        except StorageError as exc:
            self._outage_delay = min(getattr(self, "_outage_delay", 0.05) * 2, 10.0)
            self.logger.warning(
                "%s: storage unavailable during %s: %s (retrying in %.1f s)",
                self.name,
                what,
                exc,
                self._outage_delay,
            )
            self.stop.wait(self._outage_delay)
            return None

    # -- heartbeat and watchdog -------------------------------------------------------------
    def _heartbeat_loop(self, done: threading.Event) -> None:
        interval = self.config.heartbeat_interval
        next_beat = time.monotonic() + interval
        while not done.wait(min(1.0, interval)):
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + interval
                try:
                    self.adapter.heartbeat(self.name)
                except StorageError as exc:
                    self.logger.warning("%s: heartbeat failed: %s", self.name, exc)
            self._watch_for_stuck_job()

    def _watch_for_stuck_job(self) -> None:
        with self._current_lock:
            current = self._current
        if current is None or not self.exit_on_stuck:
            return
        job, started = current
        limit = self.config.max_runtime
        grace = max(ABANDON_GRACE_MIN, min(30.0, limit * 0.1))
        if time.monotonic() - started < limit + grace:
            return
        self.logger.error(
            "job %s ignored its %g s timeout; abandoning it and restarting the worker",
            job.id,
            limit,
        )
        max_attempts = (
            job.max_attempts if job.max_attempts is not None else self.config.max_attempts
        )
        error = (
            f"JobTimeoutError: timed out after {limit:g} s (the job did not stop; worker restarted)"
        )
        if job.attempts >= max_attempts:
            outcome = Outcome(job, "failure", error=error, delete=self.config.delete_failed_jobs)
        else:
            outcome = Outcome(
                job, "error", error=error, retry_at=self.clock.now() + job.attempts**4
            )
        try:
            self.adapter.record([outcome])
        finally:
            os._exit(EXIT_STUCK)


def _name(job: ClaimedJob) -> str:
    """The job's function name, read cheaply from the handler JSON for log lines."""
    handler = job.handler
    start = handler.find('"name":"')
    if start < 0:
        return "?"
    start += 8
    return handler[start : handler.find('"', start)]
