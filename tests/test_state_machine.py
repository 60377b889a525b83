"""The adapter against a reference model: a Hypothesis state machine, one per adapter kind.

Why: a job queue is only worth using if it never loses or double-runs a job, and the cases that
break queues (a late completion after a takeover, a retry racing a rescue, a unique key reused
after a failure, a newcomer taking a live worker's name, a deleted worker row, a wall clock set
forward by days) are sequences no one writes by hand. Hypothesis generates the sequences; a small
in-memory model says what must be true after each step; the adapter is driven only through the
:class:`~litejobs.adapters.base.Adapter` interface, with a :class:`FakeClock` (both faces: wall
and monotonic) and a fake process table, so time and death are exact.

Workers here are identities with a life: a process that is alive (heartbeating), paused (alive
but silent, as under SIGSTOP), dead, or stopped cleanly; a row that exists or was deleted by hand;
a machine (this one, a container on it, or -- on PostgreSQL -- another host) and its own settings
(``stale_after``, ``max_attempts``, ``delete_failed``). After every step the adapter's whole view
(every job's state, attempts, lock, run_at; every worker row) must equal the model's, and:

* a job is held by at most one claim that can still record an outcome (fencing);
* **a worker whose process lives and whose heartbeat is within its own deadline never loses a
  job** -- whoever looks, whatever the wall clock did;
* no attempt is charged to a job that never started (reserved jobs count only when started);
* no job is claimed before its ``run_at``, a failed job is never claimed, ``attempts`` never
  exceeds ``max_attempts``, every job is in exactly one state;
* job control: a cancelled job never starts and a job whose cancel was asked while it ran never
  runs again (whatever outcome or rescue follows); a paused queue's job is never claimed; a
  claim never takes a limited queue past its limit of held jobs; a snooze gives its attempt back.
* a job is finished (``finished_at``) exactly when it is failed, succeeded or cancelled, only
  finished jobs carry a retention deadline, and pruning deletes exactly the finished jobs it was
  asked to -- never a job still to run.

Tuning: the ``dev`` profile (default) runs a few seconds; ``HYPOTHESIS_PROFILE=ci`` runs more
examples and longer programs (see ``STEPS``), within the suite's budget.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import event, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from litejobs import FakeClock
from litejobs.adapters.base import Adapter, ClaimedJob, NewJob, Outcome, Rescued
from litejobs.errors import JobRunningError, ValidationError, WorkerNameTaken
from litejobs.liveness import HostIdentity, WorkerInfo
from tests.conftest import ADAPTER_KINDS, make_adapter
from tests.workers import CONTAINER, ELSEWHERE, HERE, Processes, worker

QUEUES = ("default", "email", "reports")
NAMES = ("host/w.0", "host/w.1", "host/w.2")
#: The claiming workers' ``max_attempts`` for jobs that carry none (as WorkerConfig would).
WORKER_MAX_ATTEMPTS = 3
ORPHAN_GRACE = 20
#: The longest heartbeat interval of a modelled worker. The product caps heartbeat_interval
#: (120 s) well below the orphan grace (600 s): a live worker whose row was deleted re-creates
#: it by beating before any stand-in row for its locks can expire. The model keeps the same order.
LONGEST_BEAT = 16
#: Steps per program: longer programs in CI find deeper sequences (and the profile runs more).
STEPS = 50 if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 40
HANDLER = '{"name":"record","path":"tests.sample_jobs:record","args":[%d]}'
FINISHED = ("failed", "succeeded", "cancelled")
#: Retention of a kept finished job: until a person prunes it, or this many seconds.
KEEP = st.sampled_from([None, 0, 1, 1, 60, 3600])


@dataclass
class MJob:
    """The model's idea of one stored job."""

    id: int
    queue: str
    priority: int
    run_at: float | None
    max_attempts: int | None
    unique_key: str | None
    attempts: int = 0
    # waiting (ready or scheduled, by run_at) | reserved | running | failed | succeeded |
    # cancelled
    state: str = "waiting"
    lock_token: str | None = None
    locked_by: str | None = None
    locked_at: float | None = None
    suspect: bool = False
    #: Stored as ``ready`` (not ``scheduled``): set when its time came at enqueue, at a claim
    #: (due jobs are promoted), or by a release, rescue or retry. A stored ``ready`` job stays
    #: ready if the wall clock is later set back.
    promoted: bool = False
    #: A person asked to cancel it while it ran (``cancelled_at`` set, still running).
    cancel_asked: bool = False
    finished_at: float | None = None
    keep_until: float | None = None  # None on a finished job: kept until a person prunes it

    @property
    def limit(self) -> int:
        return self.max_attempts if self.max_attempts is not None else WORKER_MAX_ATTEMPTS

    def view(self, now: float) -> str:
        if self.state == "waiting":
            assert self.run_at is not None
            return "ready" if self.promoted or self.run_at <= now else "scheduled"
        return self.state

    def unlock(self) -> None:
        self.lock_token = self.locked_by = self.locked_at = None

    def runs_again(self, run_at: float, promoted: bool, now: float) -> None:
        """Waiting again (an error, a release, a snooze, a rescue): unless a person asked to
        cancel it meanwhile, which it honours by ending cancelled (finished now, kept until a
        person prunes it)."""
        self.unlock()
        if self.cancel_asked:
            self.state, self.run_at = "cancelled", None
            self.finished_at, self.keep_until = now, None
        else:
            self.state, self.run_at, self.promoted = "waiting", run_at, promoted


@dataclass
class MWorker:
    """The model's idea of one worker process: its identity and its life."""

    info: WorkerInfo
    process: str = "alive"  # alive | paused | dead
    beat_mono: float = 0.0  # its last heartbeat (monotonic): ground truth for "alive"

    @property
    def token(self) -> str:
        return self.info.token


@dataclass
class MRow:
    """The model's idea of one worker row: what a worker (or an adopting observer) declared."""

    info: WorkerInfo
    beat_wall: float
    beat_mono: float
    adopted: bool = False  # a stand-in an observer wrote for an orphaned lock


class AdapterMachine(RuleBasedStateMachine):
    """Subclassed once per adapter kind (``kind`` below)."""

    kind = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="litejobs-sm-"))
        self.clock = FakeClock()
        self.adapter: Adapter = make_adapter(self.kind, self.tmp, self.clock)
        self.procs = Processes()
        self.observer = self.procs.observer(
            HERE, max_attempts=WORKER_MAX_ATTEMPTS, orphan_grace=ORPHAN_GRACE
        )
        self.rows: dict[str, MRow] = {}  # token -> worker row
        self.jobs: dict[int, MJob] = {}
        self.workers: dict[str, MWorker] = {}  # token -> worker, every one ever started
        self.tokens: list[ClaimedJob] = []  # every claim ever made, current or not
        self.seq = 0
        self.paused: set[str] = set()
        self.limits: dict[str, int] = {}

    def teardown(self) -> None:
        self.adapter.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def now(self) -> float:
        return self.clock.now()

    @property
    def mono(self) -> float:
        return self.clock.monotonic()

    def current(self, token: ClaimedJob) -> bool:
        """Would the fence (token, claim time, stored attempts) accept an outcome for it?"""
        job = self.jobs.get(token.id)
        return (
            job is not None
            and job.state in ("reserved", "running")
            and job.lock_token == token.lock_token
            and job.locked_at == token.locked_at
            and job.attempts == token.stored_attempts
        )

    def unique_taken(self, key: str | None) -> bool:
        active = ("waiting", "reserved", "running")
        return key is not None and any(
            j.unique_key == key and j.state in active for j in self.jobs.values()
        )

    # -- the model's liveness rule ----------------------------------------------------------
    def gone(self, row: MRow) -> bool:
        """The rule, stated independently of litejobs.liveness: dead on this machine and in
        this PID namespace; or silent past its own deadline, measured on the monotonic clock
        when it shares this machine, on the wall clock otherwise."""
        host = row.info.host
        same_pids = host.boot_id == HERE.boot_id and host.pid_ns == HERE.pid_ns
        if same_pids and self.procs.probe(row.info.pid) is None:
            return True
        if host.boot_id == HERE.boot_id:
            return self.mono - row.beat_mono > row.info.stale_after
        return self.now > row.beat_wall + row.info.stale_after

    def truly_alive(self, token: str) -> bool:
        """Ground truth for the promise: the process holding ``token`` lives and heartbeated
        within its own deadline of real (monotonic) time. When only a stand-in row speaks for
        it (its own row was deleted), its deadline is the grace, and the promise rests on a
        live worker beating, and so re-creating its row, at least every ``LONGEST_BEAT``."""
        w = self.workers.get(token)
        if w is None or w.process != "alive":
            return False
        row = self.rows.get(token)
        limit = LONGEST_BEAT if row is not None and row.adopted else w.info.stale_after
        return self.mono - w.beat_mono <= limit

    def _retire_model(self, token: str, reason: str) -> Rescued:
        row = self.rows.pop(token)
        counts = self._rescue_model(token, row.info.max_attempts, row.info.delete_failed, reason)
        return _rescued(counts, (row.info.name,))

    def _rescue_model(
        self, token: str, max_attempts: int, delete_failed: bool, reason: str
    ) -> tuple[int, int, int, int]:
        """What rescuing ``token``'s jobs does: reserved back uncounted, running released
        counted (or failed/deleted if spent, or cancelled if a person asked); all suspect (any
        may have killed the worker). Returns (released, failed, returned, cancelled)."""
        released = failed = returned = cancelled = 0
        for job in sorted(self.jobs.values(), key=lambda j: j.id):
            if job.lock_token != token or job.state not in ("reserved", "running"):
                continue
            if job.state == "reserved":
                job.state, job.suspect, job.promoted = "waiting", True, True
                job.unlock()
                returned += 1
                continue
            if job.cancel_asked:  # it never runs again
                job.runs_again(self.now, True, self.now)
                cancelled += 1
                continue
            limit = job.max_attempts if job.max_attempts is not None else max_attempts
            if job.attempts >= limit:
                failed += 1
                if delete_failed:
                    del self.jobs[job.id]
                    continue
                job.state, job.run_at = "failed", None
                job.finished_at, job.keep_until = self.now, None
            else:
                released += 1
                job.state, job.run_at, job.promoted = "waiting", self.now, True
            job.suspect = True
            job.unlock()
        event(f"rescue ({reason}): released={released > 0} failed={failed > 0}")
        if returned:
            event(f"rescue ({reason}): reserved jobs returned uncounted")
        if cancelled:
            event(f"rescue ({reason}): a job asked to cancel ended cancelled")
        return released, failed, returned, cancelled

    # -- scheduling -------------------------------------------------------------------------
    @initialize(
        jobs=st.lists(
            st.tuples(
                st.sampled_from(QUEUES),
                st.sampled_from([1, 50, 50, 100]),
                st.sampled_from([0, 0, 0, 5]),
                st.sampled_from([None, 1, 1, 2, 3]),
            ),
            min_size=1,
            max_size=6,
        )
    )
    def begin(self, jobs: list[tuple[str, int, int, int | None]]) -> None:
        """Begin with work to do, so that claims, outcomes and rescues happen early."""
        assert self.adapter.list_jobs(limit=None) == []
        for queue, priority, wait, max_attempts in jobs:
            self.schedule(queue, priority, wait, max_attempts, None)

    @rule(
        queue=st.sampled_from(QUEUES),
        priority=st.sampled_from([1, 10, 50, 50, 100]),
        wait=st.sampled_from([0, 0, 0, 1, 5, 30, 100, 3600]),
        max_attempts=st.sampled_from([None, 1, 2, 3, 4]),
        unique=st.sampled_from([None, None, None, "u1", "u2"]),
    )
    def schedule(
        self, queue: str, priority: int, wait: int, max_attempts: int | None, unique: str | None
    ) -> None:
        self.seq += 1
        run_at = self.now + wait if wait else None
        job = NewJob(HANDLER % self.seq, queue, priority, run_at, max_attempts, unique)
        job_id = self.adapter.enqueue(job)
        twin = [
            j
            for j in self.jobs.values()
            if unique is not None
            and j.unique_key == unique
            and j.state in ("waiting", "reserved", "running")
        ]
        if twin:
            assert job_id == twin[0].id, "a unique key must return the pending job's id"
            return
        assert job_id not in self.jobs
        self.jobs[job_id] = MJob(
            job_id,
            queue,
            priority,
            run_at if run_at is not None else self.now,
            max_attempts,
            unique,
            promoted=run_at is None or run_at <= self.now,
        )

    @rule(n=st.integers(2, 4), queue=st.sampled_from(QUEUES))
    def schedule_many(self, n: int, queue: str) -> None:
        rows = []
        for _ in range(n):
            self.seq += 1
            rows.append(NewJob(HANDLER % self.seq, queue, 50, None, None, None))
        ids = self.adapter.enqueue_many(rows)
        assert len(set(ids)) == n
        for job_id in ids:
            assert job_id not in self.jobs
            self.jobs[job_id] = MJob(job_id, queue, 50, self.now, None, None, promoted=True)

    # -- claiming and outcomes --------------------------------------------------------------
    def _claimers(self) -> list[MWorker]:
        return [w for w in self.workers.values() if w.process == "alive"]

    @precondition(lambda self: self._claimers())
    @rule(
        data=st.data(),
        queues=st.sampled_from([None, None, ["default"], ["email", "reports"], list(QUEUES)]),
        limit=st.sampled_from([1, 1, 2, 5]),
    )
    def claim(self, data: st.DataObject, queues: list[str] | None, limit: int) -> None:
        """A live worker claims (its row may be gone: it does not know, and must stay safe)."""
        w = data.draw(st.sampled_from(self._claimers()))
        now = self.now
        for job in self.jobs.values():  # a claim promotes every due job first
            if job.state == "waiting" and job.run_at is not None and job.run_at <= now:
                job.promoted = True
        eligible = self._eligible(queues, limit)
        held_before = self._held_per_queue()
        claimed = self.adapter.claim(w.info, queues, limit)
        assert [c.id for c in claimed] == [j.id for j in eligible], "claim order"
        for index, token in enumerate(claimed):
            job = self.jobs[token.id]
            assert job.state != "failed", "a failed job was claimed"
            assert job.promoted, "claimed before its run_at"
            charged = index == 0  # the first starts; the rest are reserved, uncounted
            assert token.suspect == (job.suspect and not charged), "a suspect job is told"
            assert (token.charged, token.attempts) == (charged, job.attempts + 1)
            job.attempts += charged
            job.state = "running" if charged else "reserved"
            job.suspect = job.suspect and not charged
            job.lock_token, job.locked_by, job.locked_at = w.token, w.info.name, now
            assert token.lock_token == w.token and token.locked_by == w.info.name
            self.tokens = [t for t in self.tokens if _fence(t) != _fence(token)]
            self.tokens.append(token)
        held_after = self._held_per_queue()
        for queue, cap in self.limits.items():
            took = held_after.get(queue, 0) - held_before.get(queue, 0)
            assert took == 0 or held_after[queue] <= cap, f"claim took {queue} past its limit"
            if took:
                event("claim from a limited queue")
        if any(c.queue in self.paused for c in claimed):
            raise AssertionError("a paused queue's job was claimed")

    def _held_per_queue(self) -> dict[str, int]:
        held: dict[str, int] = {}
        for job in self.jobs.values():
            if job.state in ("reserved", "running"):
                held[job.queue] = held.get(job.queue, 0) + 1
        return held

    def _eligible(self, queues: list[str] | None, limit: int) -> list[MJob]:
        """What a claim must take, in order: due jobs of the queues asked for, not paused, each
        limited queue up to its limit minus what it holds."""
        room = {q: cap - self._held_per_queue().get(q, 0) for q, cap in self.limits.items()}
        taken: list[MJob] = []
        for job in sorted(
            (j for j in self.jobs.values() if j.state == "waiting" and j.promoted),
            key=lambda j: (j.priority, j.run_at, j.id),
        ):
            if len(taken) == limit:
                break
            if (queues is not None and job.queue not in queues) or job.queue in self.paused:
                continue
            if job.queue in room:
                if room[job.queue] <= 0:
                    continue
                room[job.queue] -= 1
            taken.append(job)
        return taken

    @rule()
    def ghost_claim(self) -> None:
        """A lock no worker row will ever name (taken by an older litejobs, or by a worker whose
        row a person deleted before it died): only the orphan grace can free it."""
        ghost = worker(self.procs, "host/ghost.0")
        self.procs.kill(ghost.pid)
        for job in self.jobs.values():  # the claim promotes every due job first
            if job.state == "waiting" and job.run_at is not None and job.run_at <= self.now:
                job.promoted = True
        eligible = self._eligible(None, 1)
        claimed = self.adapter.claim(ghost, None, 1)
        if not claimed:
            return
        for job in self.jobs.values():  # the claim promoted every due job
            if job.state == "waiting" and job.run_at is not None and job.run_at <= self.now:
                job.promoted = True
        job = self.jobs[claimed[0].id]
        assert [job.id] == [j.id for j in eligible]
        job.attempts += 1
        job.state, job.suspect = "running", False
        job.lock_token, job.locked_by, job.locked_at = ghost.token, ghost.name, self.now
        self.workers[ghost.token] = MWorker(ghost, process="dead")
        self.tokens.append(claimed[0])
        event("ghost lock taken")

    # Outcomes: one rule, so every program that claims also records (Hypothesis' swarm testing
    # switches whole rules off per program; related actions share a rule to stay switched on).
    @precondition(lambda self: self.tokens)
    @rule(
        data=st.data(),
        kind=st.sampled_from(
            ["succeed", "succeed", "error", "error", "release", "start", "snooze", "cancelled"]
        ),
    )
    def outcome(self, data: st.DataObject, kind: str) -> None:
        token = data.draw(st.sampled_from(self.tokens))
        if kind == "succeed":
            self.succeed(token, data.draw(st.booleans()), data.draw(KEEP))
        elif kind == "error":
            self.error(token, data.draw(st.booleans()), data.draw(st.booleans()), data.draw(KEEP))
        elif kind == "release":
            self.release(token)
        elif kind == "snooze":
            self.snooze(token, data.draw(st.sampled_from([0, 30])))
        elif kind == "cancelled":
            self.cancelled(token)
        else:
            self.start(token)

    def _record(self, outcome: Outcome) -> bool:
        expected = self.current(outcome.job)
        event(f"{outcome.kind} {'written' if expected else 'fenced off'}")
        written, _ = self.adapter.record([outcome])
        assert written == [expected], (
            f"fence: outcome {outcome.kind} for job {outcome.job.id} written={written}, "
            f"expected {expected}"
        )
        return expected

    def succeed(self, token: ClaimedJob, delete: bool, keep: int | None) -> None:
        keep_until = None if keep is None else self.now + keep
        outcome = Outcome(token, "succeeded", delete=delete, keep_until=keep_until)
        if self._record(outcome):
            job = self.jobs[token.id]
            if delete:
                del self.jobs[token.id]
            else:
                job.state, job.run_at, job.attempts, job.suspect = (
                    "succeeded",
                    None,
                    token.attempts,
                    False,
                )
                job.finished_at, job.keep_until = self.now, keep_until
                job.unlock()

    def error(
        self, token: ClaimedJob, timed_out: bool, delete_failed: bool, keep: int | None
    ) -> None:
        """The job raised (or timed out): retry after ``attempts ** 4`` s, or fail if spent."""
        message = "JobTimeoutError: timed out after 5 s" if timed_out else "ValueError: boom"
        limit = token.max_attempts if token.max_attempts is not None else WORKER_MAX_ATTEMPTS
        keep_until = None if keep is None else self.now + keep
        if token.attempts >= limit:
            outcome = Outcome(
                token, "failed", error=message, delete=delete_failed, keep_until=keep_until
            )
        else:
            retry_at = self.now + token.attempts**4
            outcome = Outcome(token, "errored", error=message, retry_at=retry_at)
        if not self._record(outcome):
            return
        job = self.jobs[token.id]
        job.unlock()
        job.attempts, job.suspect = token.attempts, False
        if outcome.kind == "failed":
            if delete_failed:
                del self.jobs[token.id]
            else:
                job.state, job.run_at = "failed", None
                job.finished_at, job.keep_until = self.now, keep_until
            return
        job.runs_again(self.now + job.attempts**4, False, self.now)
        stored = self.adapter.require(job.id)
        assert stored.last_error == message
        if job.state == "cancelled":
            event("an error after a cancel request: cancelled, not retried")
            return
        assert stored.run_at == self.now + stored.attempts**4, "backoff"

    def release(self, token: ClaimedJob) -> None:
        """Given back unstarted (graceful stop, or a busy worker): ready again, uncounted."""
        # The owner discards a token it gave back. (It must: the release returns the attempt,
        # so the same claim could match the fence again. Only the owner holds that token.)
        self.tokens.remove(token)
        if self._record(Outcome(token, "released")):
            job = self.jobs[token.id]
            job.attempts = token.attempts - 1
            job.runs_again(job.run_at or self.now, True, self.now)

    def snooze(self, token: ClaimedJob, seconds: int) -> None:
        """The job asked to run again later: its attempt is given back."""
        self.tokens.remove(token)  # the owner drops it, as for a release
        if self._record(Outcome(token, "snoozed", retry_at=self.now + seconds)):
            job = self.jobs[token.id]
            job.attempts, job.suspect = token.attempts - 1, False
            job.runs_again(self.now + seconds, seconds == 0, self.now)
            stored = self.adapter.require(job.id)
            assert stored.attempts == token.attempts - 1, "a snooze gives its attempt back"

    def cancelled(self, token: ClaimedJob) -> None:
        """The worker stopped the job for good (a person's cancel, or the job raised Cancel)."""
        if self._record(Outcome(token, "cancelled", error="JobCancelledError: cancelled")):
            job = self.jobs[token.id]
            job.attempts, job.suspect = token.attempts, False
            job.cancel_asked = True
            job.runs_again(self.now, True, self.now)

    def start(self, token: ClaimedJob) -> None:
        """The worker starts a reserved job: it is charged first (one write)."""
        expected = self.current(token) and self.jobs[token.id].state == "reserved"
        _, started = self.adapter.record([], token)
        event(f"start {'written' if expected else 'fenced off'}")
        assert (started is not None) == expected, "start must be fenced like an outcome"
        if started is None:
            return
        job = self.jobs[token.id]
        job.state, job.attempts, job.suspect = "running", token.attempts, False
        assert started.charged and started.attempts == token.attempts
        self.tokens.remove(token)
        # An older claim with the very same fence (this worker's own, at this same instant and
        # attempt: the fake clock stands still, a real one cannot) is this claim to storage.
        self.tokens = [t for t in self.tokens if _fence(t) != _fence(started)]
        self.tokens.append(started)

    # -- workers ----------------------------------------------------------------------------
    def _hosts(self) -> list[HostIdentity]:
        # SQLite is one machine's file (containers share it); PostgreSQL serves many hosts.
        return [HERE, HERE, CONTAINER] + ([ELSEWHERE] if self.kind == "postgres" else [])

    @rule(
        data=st.data(),
        name=st.sampled_from(NAMES),
        stale_after=st.sampled_from([5, 60, 60]),
        max_attempts=st.sampled_from([1, 3, 3]),
        delete_failed=st.sampled_from([False, False, True]),
    )
    def start_worker(
        self,
        data: st.DataObject,
        name: str,
        stale_after: int,
        max_attempts: int,
        delete_failed: bool,
    ) -> None:
        """A process starts a worker under a name: refused while a live worker holds it; a gone
        holder's jobs are rescued by the gone worker's own rules (same-name reclaim)."""
        host = data.draw(st.sampled_from(self._hosts()))
        info = worker(
            self.procs,
            name,
            host=host,
            stale_after=stale_after,
            max_attempts=max_attempts,
            delete_failed=delete_failed,
        )
        holders = [t for t, r in self.rows.items() if r.info.name == name]
        live = [t for t in holders if not self.gone(self.rows[t])]
        if live:
            with pytest.raises(WorkerNameTaken):
                self.adapter.register_worker(replace(info, name=""), [name], self.observer)
            self.procs.kill(info.pid)
            event("start_worker refused: name live")
            return
        got = self.adapter.register_worker(replace(info, name=""), [name], self.observer)
        expected = Rescued()
        for token in holders:
            expected += self._retire_model(token, "restarted")
        assert _counts(got.rescued) == _counts(expected), "same-name reclaim"
        self.workers[info.token] = MWorker(info, beat_mono=self.mono)
        self.rows[info.token] = MRow(info, self.now, self.mono)

    def _pick(self, data: st.DataObject, *processes: str) -> MWorker | None:
        found = [w for w in self.workers.values() if w.process in processes]
        return data.draw(st.sampled_from(found)) if found else None

    @rule(
        data=st.data(),
        what=st.sampled_from(
            ["heartbeat", "heartbeat", "heartbeat", "crash", "pause", "resume", "stop", "unrow"]
        ),
    )
    def worker_life(self, data: st.DataObject, what: str) -> None:
        """A worker heartbeats, dies (SIGKILL), is paused or resumed (SIGSTOP/SIGCONT), stops
        cleanly, or loses its row to a person's DELETE."""
        if what in ("heartbeat", "stop", "pause"):
            w = self._pick(data, "alive")
        elif what == "resume":
            w = self._pick(data, "paused")
        else:
            w = self._pick(data, "alive", "paused")
        if w is None:
            return
        getattr(self, f"_{what}")(w)

    def _heartbeat(self, w: MWorker) -> None:
        existed = self.adapter.heartbeat(w.info)
        assert existed == (w.token in self.rows), "a heartbeat re-creates a missing row"
        self.rows[w.token] = MRow(w.info, self.now, self.mono)  # its whole identity
        w.beat_mono = self.mono

    def _crash(self, w: MWorker) -> None:
        w.process = "dead"  # its row and locks stay; late outcomes from it are impossible now
        self.procs.kill(w.info.pid)

    def _pause(self, w: MWorker) -> None:
        w.process = "paused"

    def _resume(self, w: MWorker) -> None:
        w.process = "alive"

    def _stop(self, w: MWorker) -> None:
        """Deregistration: what it holds goes back at once (a stop that could not wait)."""
        got = self.adapter.deregister_worker(w.info)
        counts = self._rescue_model(w.token, w.info.max_attempts, w.info.delete_failed, "stopped")
        assert _counts(got) == _counts(_rescued(counts)), "deregistration rescues what it held"
        self.rows.pop(w.token, None)
        w.process = "dead"
        self.procs.kill(w.info.pid)

    def _unrow(self, w: MWorker) -> None:
        from tests.workers import delete_row

        delete_row(self.adapter, w.info)
        self.rows.pop(w.token, None)

    @rule(seconds=st.sampled_from([1, 1, 2, 5, 16, 30, 61, 81, 256, 3600]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: self.kind == "sqlite")
    @rule(seconds=st.sampled_from([3 * 86_400, 600, -600]))
    def jump(self, seconds: int) -> None:
        """The machine's wall clock is set (NTP step, date -s, a restored VM snapshot). On
        PostgreSQL the server's clock is the one everybody uses: no such rule there."""
        self.clock.jump(seconds)

    @rule()
    def rescue(self) -> None:
        """Any worker looks for gone workers and rescues their jobs; it adopts orphaned locks
        (no row) with a stand-in row that expires after the grace unless their worker beats."""
        doomed = sorted(t for t, row in self.rows.items() if self.gone(row))
        for token in doomed:
            assert not self.truly_alive(token), "a live worker within its deadline was judged gone"
        held: dict[str, str] = {}
        for job in sorted(self.jobs.values(), key=lambda j: j.locked_by or ""):
            if job.state in ("reserved", "running") and job.lock_token is not None:
                held.setdefault(job.lock_token, job.locked_by or "")
        orphans = sorted(t for t in held if t not in self.rows)
        got = self.adapter.rescue(self.observer)
        expected = Rescued()
        for token in doomed:
            expected += self._retire_model(token, "lost")
        for token in orphans:
            stand_in = self.observer.adopt(token, held[token])
            self.rows[token] = MRow(stand_in, self.now, self.mono, adopted=True)
            event("orphaned lock adopted")
        assert _counts(got) == _counts(expected), "rescue took the wrong jobs"

    # -- administration ---------------------------------------------------------------------
    @precondition(lambda self: self.jobs)
    @rule(
        data=st.data(),
        what=st.sampled_from(
            ["retry", "retry", "retry_failed", "delete", "clear", "cancel", "cancel", "cancel"]
        ),
    )
    def administer(self, data: st.DataObject, what: str) -> None:
        """What a person does with the CLI: retry, retry --failed, delete, clear, cancel."""
        queue = data.draw(st.sampled_from([None, *QUEUES]))
        if what == "retry":
            self.retry(data)
        elif what == "retry_failed":
            self.retry_failed(queue)
        elif what == "delete":
            self.delete(data)
        elif what == "cancel":
            self.cancel(data)
        else:
            self.clear(queue, data.draw(st.booleans()))

    def cancel(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from([*sorted(self.jobs), 10_000]))
        job = self.jobs.get(job_id)
        before = None if job is None else job.view(self.now)
        assert self.adapter.cancel(job_id) == before, "cancel answers the state it found"
        if job is None:
            return
        if job.state in ("waiting", "reserved"):
            job.state, job.run_at, job.suspect = "cancelled", None, False
            job.finished_at, job.keep_until = self.now, None
            job.unlock()
            event(f"cancel of a {before} job")
        elif job.state == "running":
            job.cancel_asked = True
            event("cancel requested of a running job")

    @rule(
        queue=st.sampled_from(QUEUES),
        what=st.sampled_from(["pause", "pause", "resume", "limit", "limit", "unlimit"]),
        cap=st.sampled_from([1, 2]),
    )
    def control_queue(self, queue: str, what: str, cap: int) -> None:
        """A person pauses or resumes a queue; an app sets or lifts a queue's limit."""
        if what == "pause":
            assert self.adapter.pause(queue) == (queue not in self.paused)
            self.paused.add(queue)
        elif what == "resume":
            assert self.adapter.resume(queue) == (queue in self.paused)
            self.paused.discard(queue)
        elif what == "limit":
            self.adapter.set_queue_limit(queue, cap)
            self.limits[queue] = cap
        else:
            self.adapter.set_queue_limit(queue, None)
            self.limits.pop(queue, None)
        controls = self.adapter.queue_controls()
        assert {q for q, c in controls.items() if c.paused} == self.paused
        assert {q: c.limit for q, c in controls.items() if c.limit} == self.limits

    def retry(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from([*sorted(self.jobs), 10_000]))
        if job_id not in self.jobs:
            assert self.adapter.retry(job_id) is False
            return
        job = self.jobs[job_id]
        if job.state in FINISHED and self.unique_taken(job.unique_key):
            with pytest.raises(ValidationError, match="unique key"):
                self.adapter.retry(job_id)
            return
        assert self.adapter.retry(job_id)
        if job.state in FINISHED:  # a fresh run: attempts start again, no cancel asked
            self._reset_attempts(job)
            job.cancel_asked = False
            self._unfinish(job)
        stored_scheduled = job.state == "waiting" and not job.promoted
        due = stored_scheduled and job.run_at is not None and job.run_at <= self.now
        if (job.state in FINISHED or stored_scheduled) and not due:
            job.state, job.run_at, job.promoted = "waiting", self.now, True

    def _unfinish(self, job: MJob) -> None:
        """A retried job is no longer finished: nothing prunes it."""
        job.finished_at = job.keep_until = None

    def _reset_attempts(self, job: MJob) -> None:
        """A person retried a failed (or kept succeeded) job: a fresh run, attempts from 0 and
        no longer suspect (a crash loop that failed it is the person's call now).

        Claims from before the failure are kept: once the count restarts, a worker can hold the
        job at the same attempt again, and the token and ``locked_at`` in the fence tell that
        claim from the old one.
        """
        job.attempts = 0
        job.suspect = False

    def retry_failed(self, queue: str | None) -> None:
        hit: list[MJob] = []
        keys: set[str] = set()
        for job in sorted(self.jobs.values(), key=lambda j: j.id):
            if job.state != "failed" or (queue is not None and job.queue != queue):
                continue
            if job.unique_key is not None:
                if job.unique_key in keys or self.unique_taken(job.unique_key):
                    continue  # reviving it would make a twin of a pending unique job
                keys.add(job.unique_key)
            hit.append(job)
        assert self.adapter.retry_failed(queue) == len(hit)
        for job in hit:
            job.state, job.run_at, job.promoted = "waiting", self.now, True
            self._reset_attempts(job)
            self._unfinish(job)

    def delete(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.jobs)))
        force = data.draw(st.booleans())
        if not force and self.jobs[job_id].state in ("reserved", "running"):
            with pytest.raises(JobRunningError):
                self.adapter.delete(job_id)
            event("delete of a held job refused")
            return
        assert self.adapter.delete(job_id, force=force)
        del self.jobs[job_id]

    def clear(self, queue: str | None, failed_only: bool) -> None:
        hit = [
            j.id
            for j in self.jobs.values()
            if (queue is None or j.queue == queue) and (not failed_only or j.state == "failed")
        ]
        assert self.adapter.clear(queue=queue, failed_only=failed_only) == len(hit)
        for job_id in hit:
            del self.jobs[job_id]

    # -- history ----------------------------------------------------------------------------
    @precondition(lambda self: any(j.finished_at is not None for j in self.jobs.values()))
    @rule(
        manual=st.booleans(),
        age=st.sampled_from([-1, -1, 0, 60]),  # -1: everything finished up to now
        states=st.sampled_from([None, ["failed"], ["succeeded"], ["cancelled"]]),
        limit=st.sampled_from([1, 2, 500]),
    )
    def prune(self, manual: bool, age: int, states: list[str] | None, limit: int) -> None:
        """Workers prune jobs whose retention ran out, a batch at a time; a person prunes by age
        (and state). Either deletes exactly those finished jobs, never a job still to run."""
        now = self.now
        if manual:
            before = now - age
            doomed = {
                j.id
                for j in self.jobs.values()
                if j.finished_at is not None
                and j.finished_at < before
                and (states is None or j.state in states)
            }
            assert self.adapter.prune(before, states) == len(doomed)  # type: ignore[arg-type]
        else:
            due = sorted(
                (j.keep_until, j.id)
                for j in self.jobs.values()
                if j.keep_until is not None and j.keep_until <= now
            )
            doomed = {job_id for _, job_id in due[:limit]}
            assert self.adapter.prune_expired(limit) == len(doomed)
        for job_id in doomed:
            assert self.jobs[job_id].state in FINISHED, "pruned a job to run"
            del self.jobs[job_id]
        event(f"prune {'by age' if manual else 'expired'}: {'some' if doomed else 'none'}")

    # -- invariants -------------------------------------------------------------------------
    @invariant()
    def adapter_equals_model(self) -> None:
        now = self.now
        stored = {r.id: r for r in self.adapter.list_jobs(limit=None)}
        assert set(stored) == set(self.jobs), "a job was lost or appeared from nowhere"
        for job_id, job in self.jobs.items():
            r = stored[job_id]
            want = (
                job.view(now),
                job.attempts,
                job.lock_token,
                job.locked_by,
                job.run_at,
                job.queue,
            )
            got = (r.state, r.attempts, r.lock_token, r.locked_by, r.run_at, r.queue)
            assert got == want, (job_id, got, want)
            assert r.priority == job.priority
            held = r.state in ("reserved", "running")
            assert held == (r.lock_token is not None) == (r.locked_at is not None)
            assert (r.state == "failed") == (r.failed_at is not None)
            assert (r.run_at is None) == (r.state in FINISHED)
            asked = r.state == "cancelled" or job.cancel_asked
            assert (r.cancelled_at is not None) == asked, (job_id, "cancelled_at")
            assert (r.finished_at is not None) == (r.state in FINISHED)
            assert (r.finished_at, r.keep_until) == (job.finished_at, job.keep_until), job_id
            assert 0 <= r.attempts <= WORKER_MAX_ATTEMPTS, "attempts exceeded max_attempts"
        stored = sorted((w.token, w.pid, w.stale_after) for w in self.adapter.workers())
        want = sorted((t, r.info.pid, r.info.stale_after) for t, r in self.rows.items())
        assert stored == want, "worker rows"

    @invariant()
    def counts_agree(self) -> None:
        now = self.now
        want: dict[str, dict[str, int]] = {}
        for job in self.jobs.values():
            per = want.setdefault(job.queue, {})
            per[job.view(now)] = per.get(job.view(now), 0) + 1
        assert self.adapter.counts() == want
        ready = any(
            j.view(now) == "ready" and j.queue not in self.paused for j in self.jobs.values()
        )
        assert self.adapter.has_ready(None) == ready

    @invariant()
    def at_most_one_current_token(self) -> None:
        """For each job, at most one outstanding claim can still record an outcome."""
        per_job: dict[int, int] = {}
        for token in self.tokens:
            if self.current(token):
                per_job[token.id] = per_job.get(token.id, 0) + 1
        assert all(n == 1 for n in per_job.values())
        held = sum(1 for j in self.jobs.values() if j.state in ("reserved", "running"))
        assert held == len(per_job)


def _counts(rescued: Rescued) -> tuple[int, int, int, int, tuple[str, ...]]:
    return (
        rescued.released,
        rescued.failed,
        rescued.returned,
        rescued.cancelled,
        tuple(sorted(rescued.workers)),
    )


def _rescued(counts: tuple[int, int, int, int], workers: tuple[str, ...] = ()) -> Rescued:
    released, failed, returned, cancelled = counts
    return Rescued(released, failed, returned, workers, cancelled=cancelled)


def _fence(token: ClaimedJob) -> tuple[int, str, float, int]:
    return (token.id, token.lock_token, token.locked_at, token.stored_attempts)


def _machine_for(kind: str) -> type[AdapterMachine]:
    return type(f"AdapterMachine_{kind}", (AdapterMachine,), {"kind": kind})


for _kind in ADAPTER_KINDS:
    _case = _machine_for(_kind).TestCase
    _case.settings = settings(settings.default, stateful_step_count=STEPS)
    # The CI profile's examples take ~1 min on PostgreSQL on a quiet 2-core machine and up to
    # 3x that under load: a bound for a hang, not a speed requirement.
    _case.pytestmark = [pytest.mark.timeout(600)]
    globals()[f"TestAdapterStateMachine_{_kind}"] = _case
del _kind, _case


def test_retrying_a_failed_unique_job_never_makes_a_twin(adapter: Adapter) -> None:
    """Found by the machine above: reviving a failed job whose unique key is pending again
    broke the unique index ("database unavailable"). Now: a clear error, or skipped in bulk."""
    key = "user:42"
    first = adapter.enqueue(NewJob(HANDLER % 1, max_attempts=1, unique_key=key))
    [token] = adapter.claim(worker(Processes(), "host/w.0"), None)
    assert adapter.record([Outcome(token, "failed", error="ValueError: boom")])[0] == [True]
    second = adapter.enqueue(NewJob(HANDLER % 2, unique_key=key))
    assert second != first
    with pytest.raises(ValidationError, match="unique key"):
        adapter.retry(first)
    assert adapter.retry_failed() == 0
    assert adapter.require(first).state == "failed"
    adapter.delete(second)
    assert adapter.retry_failed() == 1
    assert adapter.require(first).state == "ready"
