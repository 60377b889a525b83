"""The storage rules, written once for every SQL database.

:class:`SQLAdapter` implements the whole :class:`~litejobs.adapters.base.Adapter` contract on
top of named statements (:mod:`litejobs.adapters.sql`) and a few small seams a dialect fills in:

* how a time is stored and read back (``_t`` / ``_from_t``) and how a list is bound (``_array``);
* a write transaction (``_write``) and a read (``_read``), both turning database errors into
  :class:`~litejobs.errors.StorageError`;
* running a statement (``_rows``, ``_count``, ``_many``), announcing a change to idle workers
  (``_announce``: PostgreSQL ``NOTIFY``) and serialising callers on a key (``_lock``);
* what truly differs: storing one job and runs of jobs, the claim, the change signal, schema
  and connections.

Each state change is built here once (:meth:`_outcome_statement`, :meth:`_rescue_holder`) and
rendered by each dialect's SQL file.
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, TypeVar

from ..bounds import check_job_id, check_limit
from ..errors import JobRunningError, StorageError, ValidationError, WorkerNameTaken
from ..liveness import Observer, WorkerInfo, WorkerRecord
from ..metrics import Row, tally
from .base import (
    ACTIVE_STATES,
    HELD_STATES,
    JOB_STATES,
    PRUNE_BATCH,
    Adapter,
    ClaimedJob,
    JobBatch,
    JobRecord,
    JobRun,
    JobState,
    NewJob,
    Outcome,
    QueueControl,
    Registration,
    Rescued,
    compact_json,
    initial_state,
)

T = TypeVar("T")
FINISHED = ("failed", "succeeded", "cancelled")
Conn = Any  # a dialect's connection (apsw.Connection, psycopg.Connection)
Statement = tuple[str, dict[str, Any]]
#: A run for the outcome statistics: queue, outcome kind, run seconds, wait seconds.
Run = tuple[str, str, float | None, float | None]

#: Statistics minutes folded into the totals per transaction (seconds of minutes).
STATS_FOLD_SPAN = 3600.0

#: The reason words in ``last_error`` when a started job is rescued.
REASON_RESTARTED = "restarted"  # a new worker took the name of one that is gone
REASON_LOST = "lost"  # found gone by another worker
REASON_STOPPED = "stopped"  # its own worker stopped without finishing it


class SQLAdapter(Adapter):
    """Everything both SQL adapters share; see the module docstring for the seams."""

    queries: dict[str, str]

    # -- seams ------------------------------------------------------------------------------
    @abc.abstractmethod
    def _t(self, value: float) -> Any:
        """A time (epoch seconds) as this database stores it."""

    @abc.abstractmethod
    def _from_t(self, value: Any) -> float | None:
        """A stored time back to epoch seconds."""

    @abc.abstractmethod
    def _array(self, values: Sequence[Any]) -> Any:
        """A list as one bound parameter (JSON text for SQLite, an array for PostgreSQL)."""

    @abc.abstractmethod
    def _write(self, *, pipeline: bool = False) -> AbstractContextManager[Conn]:
        """One write transaction: commit on success, roll back on any exception."""

    @abc.abstractmethod
    def _read(self, fn: Callable[[Conn], T]) -> T:
        """Run ``fn(connection)`` outside a write transaction."""

    @abc.abstractmethod
    def _rows(self, conn: Conn, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run statement ``name``; its rows (empty for a statement returning none)."""

    @abc.abstractmethod
    def _count(self, conn: Conn, name: str, params: dict[str, Any]) -> int:
        """Run statement ``name``; how many rows it changed."""

    def _many(self, conn: Conn, statements: Sequence[Statement]) -> Callable[[], list[int]]:
        """Run several statements; the returned function gives their row counts once the
        transaction is over (PostgreSQL sends them all in one round trip)."""
        counts = [self._count(conn, name, params) for name, params in statements]
        return lambda: counts

    def _announce(self, conn: Conn) -> None:
        """Wake idle workers when this transaction commits (jobs became claimable)."""

    def _announce_cancel(self, conn: Conn) -> None:
        """Wake the keepers of busy workers when this transaction commits (a cancel request).
        SQLite needs nothing: any commit is a change its watchers see."""

    def _lock(self, conn: Conn, key: str) -> None:
        """Serialise the transactions that lock ``key`` (SQLite's writer lock already does)."""

    def _announce_outcome(self, conn: Conn) -> None:
        """Wake whoever waits for a result when this transaction commits (PostgreSQL
        ``NOTIFY``; on SQLite every commit is the signal)."""

    def _stats_shard(self, token: str) -> int:
        """Which statistics rows a worker adds to: one writer at a time needs one shard."""
        return 0

    @abc.abstractmethod
    def _insert_one(self, params: dict[str, Any]) -> int:
        """Store one job without a unique key, in its own transaction."""

    @abc.abstractmethod
    def _insert_unique(self, conn: Conn, params: dict[str, Any]) -> int:
        """Store one job with a unique key, or return the id of the active job holding it."""

    @abc.abstractmethod
    def _store_run(self, conn: Conn, run: JobRun, now: float) -> list[int]:
        """Store a run of a :class:`JobBatch` (one statement where the database can)."""

    @abc.abstractmethod
    def _store_many(self, conn: Conn, jobs: Sequence[NewJob], now: float) -> list[int]:
        """Store many jobs without unique keys."""

    @abc.abstractmethod
    def _claim_rows(
        self, worker: WorkerInfo, queues: Sequence[str] | None, limit: int, now: float
    ) -> list[tuple[Any, ...]]:
        """Claim (its own transaction) and return ``claim_*``'s rows."""

    def _unique_violation(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the unique index refusing an active twin."""
        return False

    # -- helpers ----------------------------------------------------------------------------
    def _one(self, conn: Conn, name: str, params: dict[str, Any]) -> Any:
        rows = self._rows(conn, name, params)
        return rows[0][0] if rows else None

    def _job_params(self, job: NewJob, now: float) -> dict[str, Any]:
        run_at = now if job.run_at is None else job.run_at
        return {
            "state": initial_state(run_at, now),
            "handler": job.handler,
            "queue": job.queue,
            "priority": job.priority,
            "run_at": self._t(run_at),
            "max_attempts": job.max_attempts,
            "unique_key": job.unique_key,
            "max_runtime": job.max_runtime,
            "retry": job.retry,
            "keep_result": job.keep_result,
            "now": self._t(now),
        }

    # -- enqueueing -------------------------------------------------------------------------
    def enqueue(self, job: NewJob) -> int:
        now = self.clock.now()
        params = self._job_params(job, now)
        if job.unique_key is None:
            return self._insert_one(params)
        with self._write() as conn:
            job_id = self._insert_keyed(conn, job, params, now)
            self._announce(conn)
            return job_id

    def _insert_keyed(self, conn: Conn, job: NewJob, params: dict[str, Any], now: float) -> int:
        """Store a job with a unique key, or return the id of the job holding the key.

        Every key is held while a job with it is active (the partial unique index: concurrent
        enqueues of one key get one job). ``unique_for`` also holds it for that long after the
        enqueue of the latest job with the key, while that job is in one of ``unique_states``
        (a job whose row is gone counts as succeeded): enqueues of one such key are serialised
        (the write lock; on PostgreSQL an advisory lock on the key), so the check and the
        insert are one step for them.
        """
        if job.unique_for is None:
            return self._insert_unique(conn, params)
        key = job.unique_key
        self._lock(conn, f"unique:{key}")
        self._count(conn, "unique_expire", {"now": params["now"]})
        window = self._rows(conn, "unique_window", {"unique_key": key, "now": params["now"]})
        counted = set(job.unique_states or ()) | set(ACTIVE_STATES)
        if window and (window[0][1] or "succeeded") in counted:
            return int(window[0][0])
        active = self._rows(conn, "find_active_unique", {"unique_key": key})
        if active:
            return int(active[0][0])
        job_id = self._insert_unique(conn, params)
        hold = {
            "unique_key": key,
            "job_id": job_id,
            "now": params["now"],
            "expires_at": self._t(now + job.unique_for),
        }
        self._count(conn, "unique_hold", hold)
        return job_id

    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[int]:
        if not jobs:
            return []
        now = self.clock.now()
        with self._write() as conn:
            if isinstance(jobs, JobBatch):
                ids = [i for run in jobs.runs for i in self._store_run(conn, run, now)]
            elif any(job.unique_key is not None for job in jobs):
                ids = self._insert_uniques(conn, jobs, now)
            else:
                ids = self._store_many(conn, jobs, now)
            self._announce(conn)
            return ids

    def _insert_uniques(self, conn: Conn, jobs: Sequence[NewJob], now: float) -> list[int]:
        """Insert in unique-key order, answer in input order: concurrent batches then take the
        unique index's entries in one order and can never deadlock each other."""
        order = sorted(range(len(jobs)), key=lambda i: (jobs[i].unique_key or "", i))
        ids: dict[int, int] = {}
        for index in order:
            params = self._job_params(jobs[index], now)
            if jobs[index].unique_key is None:
                ids[index] = self._store_many(conn, [jobs[index]], now)[0]
            else:
                ids[index] = self._insert_keyed(conn, jobs[index], params, now)
        return [ids[i] for i in range(len(jobs))]

    def enqueue_tick(self, name: str, tick_at: float, job: NewJob) -> int | None:
        now = self.clock.now()
        tick = self._t(tick_at)
        with self._write() as conn:
            self._lock(conn, f"tick:{name}")
            last = self._one(conn, "tick_last", {"name": name})
            if last is not None and last >= tick:
                return None
            job_id = None
            if last is not None:
                params = self._job_params(job, now)
                if job.unique_key is None:
                    job_id = self._store_many(conn, [job], now)[0]
                else:
                    job_id = self._insert_keyed(conn, job, params, now)
                self._announce(conn)
            params = {"name": name, "tick_at": tick, "job_id": job_id, "now": self._t(now)}
            self._count(conn, "tick_insert", params)
            self._count(conn, "tick_trim", {"name": name})
            return job_id

    def last_ticks(self) -> dict[str, float]:
        rows = self._read(lambda c: self._rows(c, "last_ticks", {}))
        return {name: self._from_t(tick) or 0.0 for name, tick in rows}

    # -- claiming and recording -------------------------------------------------------------
    def claim(
        self, worker: WorkerInfo, queues: Sequence[str] | None, limit: int = 1
    ) -> list[ClaimedJob]:
        if queues is not None and not queues:
            return []
        now = self.clock.now()
        rows = self._claim_rows(worker, queues, limit, now)
        claimed = [
            ClaimedJob(
                id=int(r[0]),
                handler=r[1],
                queue=r[2],
                priority=r[3],
                attempts=r[4] if r[8] == "running" else r[4] + 1,
                max_attempts=r[5],
                locked_by=worker.name,
                lock_token=worker.token,
                locked_at=now,
                run_at=self._from_t(r[6]),
                charged=r[8] == "running",
                suspect=bool(r[7]),
                max_runtime=r[9],
                retry=r[10],
                keep_result=bool(r[11]),
            )
            for r in rows
        ]
        claimed.sort(key=lambda j: (j.priority, j.run_at or 0.0, j.id))
        return claimed

    def _fence(self, job: ClaimedJob) -> dict[str, Any]:
        return {
            "id": job.id,
            "token": job.lock_token,
            "locked_at": self._t(job.locked_at),
            "stored_attempts": job.stored_attempts,
        }

    def _outcome_statement(self, outcome: Outcome, now: float, now_t: Any) -> Statement:
        """The one place an outcome becomes a change of the job's row (``now_t``: ``now`` as
        stored, formatted once per batch)."""
        job, kind = outcome.job, outcome.kind
        params = self._fence(job)
        if outcome.delete and kind in ("succeeded", "failed"):
            return "record_delete", params
        params["attempts"], params["now"] = job.attempts, now_t
        if kind == "released":  # given back unstarted: the attempt is not counted
            params["attempts"] = job.attempts - 1
            return "record_released", params
        keep_until = None if outcome.keep_until is None else self._t(outcome.keep_until)
        if kind == "succeeded":
            params["keep_until"], params["result"] = keep_until, outcome.result
            return "record_succeeded", params
        if kind in ("failed", "cancelled"):  # finished for good, kept by the retention rules
            params["error"], params["keep_until"] = outcome.error, keep_until
            return f"record_{kind}", params
        retry_at = outcome.retry_at if outcome.retry_at is not None else now
        params["retry_at"], params["state"] = self._t(retry_at), initial_state(retry_at, now)
        if kind == "snoozed":  # to run again later: the attempt is given back
            params["attempts"] = job.attempts - 1
            return "record_snoozed", params
        params["error"] = outcome.error
        return "record_errored", params

    def record(
        self,
        outcomes: Sequence[Outcome],
        start: ClaimedJob | None = None,
        stats: Sequence[Row] | None = None,
    ) -> tuple[list[bool], ClaimedJob | None]:
        if not outcomes and start is None and not stats:
            return [], None
        now = self.clock.now()
        now_t = self._t(now)
        statements = [self._outcome_statement(o, now, now_t) for o in outcomes]
        again = [o.job.id for o in outcomes if o.kind in ("errored", "released", "snoozed")]
        if again:  # a job a person asked to cancel meanwhile does not run again
            statements.append(("settle_cancels", {"ids": self._array(again), "now": now_t}))
        if stats is None:
            stats = tally((o.job.queue, o.kind, o.duration, o.waited) for o in outcomes)
        if stats:
            token = outcomes[0].job.lock_token if outcomes else ""
            statements.append(self._stats_statement(stats, token, now))
        if start is not None:
            started = {**self._fence(start), "attempts": start.attempts, "now": self._t(now)}
            statements.append(("start_reserved", started))
        wake = any(
            o.kind == "released"
            or (o.kind in ("errored", "snoozed") and (o.retry_at or now) <= now)
            for o in outcomes
        )
        awaited = any(o.job.keep_result and o.kind in ("succeeded", "failed") for o in outcomes)
        with self._write(pipeline=True) as conn:
            counts = self._many(conn, statements)
            if wake:
                self._announce(conn)
            if awaited:
                self._announce_outcome(conn)
        done = counts()
        written = [count == 1 for count in done[: len(outcomes)]]
        if start is None or done[-1] != 1:
            return written, None
        return written, replace(start, charged=True, suspect=False)

    def _stats_statement(self, rows: Sequence[Row], token: str, now: float) -> Statement:
        """Outcome statistics (:mod:`litejobs.metrics`) added in the transaction that records
        the outcomes (by default those of the batch; a worker may add up several flushes).

        A run is counted as its worker reports it, also in the rare case its outcome is fenced
        off (its claim was taken over): it did run."""
        return "stats_add", {
            "minute": self._t(math.floor(now / 60) * 60),
            "shard": self._stats_shard(token),
            "rows": compact_json(list(rows)),
        }

    def _count_runs(self, conn: Conn, runs: Sequence[Run], token: str, now: float) -> None:
        """Count the runs a rescue ended (their worker died: errored, or failed on the last
        attempt; no run time is known) in the rescue's transaction."""
        rows = tally(runs)
        if rows:
            self._count(conn, *self._stats_statement(rows, token, now))

    def has_ready(self, queues: Sequence[str] | None) -> bool:
        now = self._t(self.clock.now())

        def query(conn: Conn) -> bool:
            paused = {q for q, p, _ in self._rows(conn, "queue_controls", {}) if p is not None}
            if queues is None and not paused:
                return bool(self._one(conn, "has_ready_any", {"now": now}))
            scope = queues if queues is not None else self._queues_with_work(conn, now)
            return any(
                self._one(conn, "has_ready_queue", {"now": now, "queue": q})
                for q in scope
                if q not in paused
            )

        return self._read(query)

    def _queues_with_work(self, conn: Conn, now: Any) -> list[str]:
        """Queues with ready or due jobs, found without reading the jobs of any one queue (a
        paused queue's backlog may be millions)."""
        ready = [q for (q,) in self._rows(conn, "ready_queues", {})]
        due = [q for (q,) in self._rows(conn, "due_queues", {"now": now})]
        return sorted({*ready, *due})

    def next_run_at(self, queues: Sequence[str] | None) -> float | None:
        if queues is None:
            value = self._read(lambda c: self._one(c, "next_run_any", {}))
        else:
            params = {"queues": self._array(list(queues))}
            value = self._read(lambda c: self._one(c, "next_run_queues", params))
        return self._from_t(value)

    # -- workers ----------------------------------------------------------------------------
    def _worker_params(self, worker: WorkerInfo, now: float, mono: float) -> dict[str, Any]:
        return {
            "token": worker.token,
            "name": worker.name,
            "host": worker.host.hostname,
            "boot_id": worker.host.boot_id,
            "pid_ns": worker.host.pid_ns,
            "pid": worker.pid,
            "pid_start": worker.pid_start,
            "queues": worker.queues,
            "now": self._t(now),
            "beat_mono": mono,
            "expires_at": self._t(now + worker.stale_after),
            "stale_after": worker.stale_after,
            "max_attempts": worker.max_attempts,
            "delete_failed": worker.delete_failed,
        }

    def _worker_records(self, conn: Conn) -> list[WorkerRecord]:
        return [
            WorkerRecord(
                token=r[0],
                name=r[1],
                host=r[2],
                boot_id=r[3],
                pid_ns=r[4],
                pid=int(r[5]),
                pid_start=None if r[6] is None else int(r[6]),
                queues=r[7],
                started_at=self._from_t(r[8]) or 0.0,
                heartbeat_at=self._from_t(r[9]) or 0.0,
                beat_mono=float(r[10]),
                expires_at=self._from_t(r[11]) or 0.0,
                stale_after=float(r[12]),
                max_attempts=int(r[13]),
                delete_failed=bool(r[14]),
            )
            for r in self._rows(conn, "workers_all", {})
        ]

    def workers(self) -> list[WorkerRecord]:
        return self._read(self._worker_records)

    def register_worker(
        self, worker: WorkerInfo, names: Sequence[str], observer: Observer
    ) -> Registration:
        now, mono = self.clock.now(), self.clock.monotonic()
        with self._write() as conn:
            self._lock(conn, "workers")
            records = self._worker_records(conn)
            live: list[WorkerRecord] = []
            for name in names:
                holders = [r for r in records if r.name == name]
                alive = [r for r in holders if observer.gone(r, now, mono) is None]
                if alive:
                    live.extend(alive)
                    continue
                rescued = Rescued()
                for gone in holders:
                    rescued += self._retire(conn, gone, REASON_RESTARTED, now)
                me = replace(worker, name=name)
                self._count(conn, "worker_insert", self._worker_params(me, now, mono))
                return Registration(me, rescued)
        raise WorkerNameTaken(live)

    def _retire(self, conn: Conn, record: WorkerRecord, reason: str, now: float) -> Rescued:
        """Rescue a gone worker's jobs by its own group's rules and remove its row."""
        rescued = self._rescue_holder(
            conn, record.token, record.max_attempts, record.delete_failed, reason, now
        )
        self._count(conn, "worker_delete", {"token": record.token})
        return rescued + Rescued(workers=(record.name,))

    def _rescue_holder(
        self,
        conn: Conn,
        token: str,
        max_attempts: int,
        delete_failed: bool,
        reason: str,
        now: float,
    ) -> Rescued:
        """The one place a holder's jobs are rescued: reserved ones go back uncounted (marked
        suspect), started ones are released with the attempt counted, or failed (deleted when
        the holder's group deletes failed jobs) if that was their last attempt."""
        params = {"token": token, "now": self._t(now), "max_attempts": max_attempts}
        returned = self._rows(conn, "rescue_reserved", params)
        cancelled = self._rows(conn, "rescue_cancelled", {**params, "reason": reason})
        deleted = self._rows(conn, "rescue_delete_spent", params) if delete_failed else []
        rows = self._rows(conn, "rescue_running", {**params, "reason": reason})
        failed = len(deleted) + sum(1 for r in rows if r[1] == "failed")
        runs: list[Run] = [(r[1], "failed", None, None) for r in deleted]
        runs += [(r[2], "failed" if r[1] == "failed" else "errored", None, None) for r in rows]
        self._count_runs(conn, runs, token, now)
        result = Rescued(
            released=len(rows) + len(deleted) - failed,
            failed=failed,
            returned=len(returned),
            job_ids=tuple(int(r[0]) for r in [*cancelled, *deleted, *rows]),
            cancelled=len(cancelled),
        )
        if result.released or result.returned:
            self._announce(conn)
        return result

    def heartbeat(self, worker: WorkerInfo) -> bool:
        now, mono = self.clock.now(), self.clock.monotonic()
        params = self._worker_params(worker, now, mono)
        with self._write() as conn:
            if self._count(conn, "worker_beat", params) == 1:
                return True
            self._count(conn, "worker_insert", params)
            return False

    def deregister_worker(self, worker: WorkerInfo, reason: str = REASON_STOPPED) -> Rescued:
        now = self.clock.now()
        with self._write() as conn:
            rescued = self._rescue_holder(
                conn, worker.token, worker.max_attempts, worker.delete_failed, reason, now
            )
            self._count(conn, "worker_delete", {"token": worker.token})
        return rescued

    def give_back(self, worker: WorkerInfo) -> int:
        params = {"token": worker.token, "now": self._t(self.clock.now())}
        with self._write() as conn:
            self._count(conn, "give_back_cancelled", params)
            count = self._count(conn, "give_back_held", params)
            if count:
                self._announce(conn)
            return count

    def rescue(self, observer: Observer) -> Rescued:
        now, mono = self.clock.now(), self.clock.monotonic()
        doomed, orphans = self._read(lambda c: self._doomed(c, observer, now, mono))
        if not doomed and not orphans:
            return Rescued()  # the common case: a read, no write lock taken
        with self._write() as conn:
            self._lock(conn, "workers")
            doomed, orphans = self._doomed(conn, observer, now, mono)
            total = Rescued()
            for record in doomed:
                total += self._retire(conn, record, REASON_LOST, now)
            for token, name in orphans:
                stand_in = observer.adopt(token, name)
                self._count(conn, "worker_insert", self._worker_params(stand_in, now, mono))
            return total

    def _doomed(
        self, conn: Conn, observer: Observer, now: float, mono: float
    ) -> tuple[list[WorkerRecord], list[tuple[str, str]]]:
        """Workers ``observer`` can prove gone, and held locks whose worker has no row."""
        records = self._worker_records(conn)
        doomed = [r for r in records if observer.gone(r, now, mono) is not None]
        known = {r.token for r in records}
        orphans = {
            token: name for token, name in self._rows(conn, "held_tokens", {}) if token not in known
        }
        return doomed, sorted(orphans.items())

    # -- inspection -------------------------------------------------------------------------
    def _job_record(self, row: Sequence[Any], now: Any) -> JobRecord:
        state = row[1]
        if state == "scheduled" and row[7] is not None and row[7] <= now:
            state = "ready"
        return JobRecord(
            id=int(row[0]),
            state=state,
            queue=row[2],
            priority=row[3],
            attempts=row[4],
            max_attempts=row[5],
            handler=json.loads(row[6]),
            run_at=self._from_t(row[7]),
            locked_at=self._from_t(row[8]),
            locked_by=row[9],
            last_error=row[10],
            failed_at=self._from_t(row[11]),
            created_at=self._from_t(row[12]) or 0.0,
            updated_at=self._from_t(row[13]) or 0.0,
            unique_key=row[14],
            lock_token=row[15],
            max_runtime=row[16],
            retry=row[17],
            cancelled_at=self._from_t(row[18]),
            finished_at=self._from_t(row[19]),
            keep_until=self._from_t(row[20]),
            keep_result=bool(row[21]),
            result_json=row[22],
        )

    def get(self, job_id: int) -> JobRecord | None:
        check_job_id(job_id)
        now = self._t(self.clock.now())
        rows = self._read(lambda c: self._rows(c, "job_get", {"id": job_id}))
        return self._job_record(rows[0], now) if rows else None

    def _filters(
        self,
        queue: str | None,
        state: JobState | Sequence[JobState] | None,
        name: str | None,
        now: Any,
    ) -> dict[str, Any]:
        states = [state] if isinstance(state, str) else state
        for one in states or ():
            if one not in JOB_STATES:
                raise ValueError(f"unknown state {one!r}; use one of {', '.join(JOB_STATES)}")
        return {
            "queue": queue,
            "name": name,
            "states": None if states is None else self._array(list(states)),
            "now": now,
        }

    def list_jobs(
        self,
        *,
        queue: str | None = None,
        state: JobState | Sequence[JobState] | None = None,
        limit: int | None = 100,
        name: str | None = None,
        newest: bool = False,
    ) -> list[JobRecord]:
        if limit is not None:
            check_limit(limit)
        now = self._t(self.clock.now())
        params = {**self._filters(queue, state, name, now), "limit": limit}
        statement = "jobs_list_newest" if newest else "jobs_list"
        rows = self._read(lambda c: self._rows(c, statement, params))
        return [self._job_record(r, now) for r in rows]

    def count_jobs(
        self,
        *,
        queue: str | None = None,
        state: JobState | Sequence[JobState] | None = None,
        name: str | None = None,
    ) -> int:
        """How many jobs :meth:`list_jobs` would list with no limit."""
        params = self._filters(queue, state, name, self._t(self.clock.now()))
        return int(self._read(lambda c: self._one(c, "jobs_count", params)) or 0)

    def counts(self) -> dict[str, dict[str, int]]:
        now = self._t(self.clock.now())
        result: dict[str, dict[str, int]] = {}
        for queue, state, count in self._read(lambda c: self._rows(c, "counts", {"now": now})):
            result.setdefault(queue, {})[state] = int(count)
        return result

    def oldest_ready_at(self) -> float | None:
        now = self._t(self.clock.now())
        return self._from_t(self._read(lambda c: self._one(c, "oldest_ready", {"now": now})))

    # -- administration ---------------------------------------------------------------------
    def _unique_taken(self, conn: Conn, key: str | None) -> bool:
        """Is ``key`` held by an active job? (Reviving a twin would break the unique index.)"""
        return key is not None and bool(self._rows(conn, "find_active_unique", {"unique_key": key}))

    @staticmethod
    def _unique_clash(job_id: int, key: str | None) -> ValidationError:
        return ValidationError(
            f"job {job_id} cannot be retried: another job with its unique key "
            f"{key!r} is pending; delete one of them first"
        )

    def retry(self, job_id: int) -> bool:
        check_job_id(job_id)
        key: str | None = None
        try:
            with self._write() as conn:
                now = self._t(self.clock.now())
                rows = self._rows(conn, "retry_read", {"id": job_id})
                if not rows:
                    return False
                state, run_at, key = rows[0]
                if state in FINISHED and self._unique_taken(conn, key):
                    raise self._unique_clash(job_id, key)
                # A 'scheduled' row already due is ready (promotion is lazy): leave its run_at.
                due = state == "scheduled" and run_at is not None and run_at <= now
                if state in (*FINISHED, "scheduled") and not due:
                    self._count(conn, "retry_one", {"id": job_id, "now": now})
                    self._announce(conn)
                return True
        except StorageError as exc:
            if self._unique_violation(exc.__cause__ or exc):
                raise self._unique_clash(job_id, key) from exc  # a twin was enqueued meanwhile
            raise

    def retry_failed(self, queue: str | None = None) -> int:
        """Retry every failed job (of ``queue``); a failed job whose unique key is pending again
        (or shared by an older failed job being retried) stays failed."""
        with self._write() as conn:
            now = self._t(self.clock.now())
            ids: list[int] = []
            keys: set[str] = set()
            for job_id, key in self._rows(conn, "retry_failed_candidates", {"queue": queue}):
                if key is not None:
                    if key in keys or self._unique_taken(conn, key):
                        continue
                    keys.add(key)
                ids.append(int(job_id))
            if ids:
                self._count(conn, "retry_failed_some", {"ids": self._array(ids), "now": now})
                self._announce(conn)
            return len(ids)

    def delete(self, job_id: int, *, force: bool = False) -> bool:
        check_job_id(job_id)
        with self._write() as conn:
            if not force:
                now = self._t(self.clock.now())
                state = self._one(conn, "job_state", {"id": job_id, "now": now})
                if state in HELD_STATES:
                    raise JobRunningError(
                        f"job {job_id} is {state}: its worker would go on running it; cancel it "
                        f"(`litejobs cancel {job_id}`), or delete it anyway with --force"
                    )
            return self._count(conn, "delete_job", {"id": job_id}) == 1

    def clear(self, *, queue: str | None = None, failed_only: bool = False) -> int:
        with self._write() as conn:
            return self._count(conn, "clear", {"queue": queue, "failed_only": failed_only})

    # -- history ----------------------------------------------------------------------------
    def prune(self, older_than: float, states: Sequence[JobState] | None = None) -> int:
        """The candidates are read outside the write lock (a scan is long); each batch of
        deletes is a short transaction that checks every condition again."""
        params: dict[str, Any] = {
            "before": self._t(older_than),
            "states": None if states is None else self._array(list(states)),
        }
        ids = [int(r[0]) for r in self._read(lambda c: self._rows(c, "prune_candidates", params))]
        deleted = 0
        for start in range(0, len(ids), PRUNE_BATCH):
            batch = self._array(ids[start : start + PRUNE_BATCH])
            with self._write() as conn:
                deleted += self._count(conn, "prune_ids", {**params, "ids": batch})
        return deleted

    def prune_expired(self, limit: int = PRUNE_BATCH) -> int:
        params = {"now": self._t(self.clock.now()), "limit": limit}
        if not self._read(lambda c: self._one(c, "has_expired", params)):
            return 0  # the common case: a read, no write lock taken
        with self._write() as conn:
            return self._count(conn, "prune_expired", params)

    def last_job_id(self) -> int | None:
        return int(self._read(lambda c: self._one(c, "last_job_id", {})) or 0)

    # -- statistics -------------------------------------------------------------------------
    def stats_rows(
        self, since: float | None = None
    ) -> list[tuple[float, str, str, int, int, float]]:
        if since is None:
            rows = self._read(lambda c: self._rows(c, "stats_totals", {}))
            return [(0.0, q, s, int(b), int(n), float(sec)) for q, s, b, n, sec in rows]
        params = {"since": self._t(since)}
        rows = self._read(lambda c: self._rows(c, "stats_since", params))
        return [
            (self._from_t(m) or 0.0, q, s, int(b), int(n), float(sec))
            for m, q, s, b, n, sec in rows
        ]

    def prune_stats(self, before: float) -> int:
        epoch = self._t(0.0)

        def first_minute() -> float | None:
            return self._from_t(
                self._read(lambda c: self._one(c, "stats_oldest", {"epoch": epoch}))
            )

        oldest = first_minute()
        folded = 0
        while oldest is not None and oldest < before:
            upto = min(before, oldest + STATS_FOLD_SPAN)
            params = {"epoch": epoch, "before": self._t(upto)}
            with self._write() as conn:
                self._lock(conn, "stats")
                self._count(conn, "stats_fold", params)
                folded += self._count(conn, "stats_drop", params)
            oldest = first_minute()
        return folded

    # -- job control ------------------------------------------------------------------------
    def cancel(self, job_id: int) -> JobState | None:
        check_job_id(job_id)
        now = self._t(self.clock.now())
        with self._write() as conn:
            state: JobState | None = self._one(conn, "job_state", {"id": job_id, "now": now})
            if state in ("scheduled", "ready", "reserved"):
                self._count(conn, "cancel_now", {"id": job_id, "now": now})
            elif state == "running":
                self._count(conn, "cancel_request", {"id": job_id, "now": now})
                self._announce_cancel(conn)
            return state

    def cancel_requested(self, job: ClaimedJob) -> bool:
        params = {"id": job.id, "token": job.lock_token}
        return bool(self._read(lambda c: self._one(c, "cancel_requested", params)))

    def pause(self, queue: str) -> bool:
        with self._write() as conn:
            row = self._rows(conn, "queue_control", {"queue": queue})
            if row and row[0][0] is not None:
                return False
            self._count(conn, "queue_pause", {"queue": queue, "now": self._t(self.clock.now())})
            return True

    def resume(self, queue: str) -> bool:
        params = {"queue": queue, "now": self._t(self.clock.now())}
        with self._write() as conn:
            resumed = self._count(conn, "queue_resume", params) == 1
            self._count(conn, "queue_forget", {"queue": queue})
            if resumed:
                self._announce(conn)
            return resumed

    def set_queue_limit(self, queue: str, limit: int | None) -> None:
        params = {"queue": queue, "limit": limit, "now": self._t(self.clock.now())}
        with self._write() as conn:
            self._count(conn, "queue_limit", params)
            self._count(conn, "queue_forget", {"queue": queue})
            self._announce(conn)  # a raised limit may let waiting jobs start

    def queue_controls(self) -> dict[str, QueueControl]:
        rows = self._read(lambda c: self._rows(c, "queue_controls", {}))
        return {
            queue: QueueControl(queue, self._from_t(paused), None if limit is None else int(limit))
            for queue, paused, limit in rows
        }
