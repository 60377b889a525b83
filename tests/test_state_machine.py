"""The adapter against a reference model: a Hypothesis state machine, one per adapter kind.

Why: a job queue is only worth using if it never loses or double-runs a job, and the cases that
break queues (a late completion after a takeover, a retry racing a recovery, a unique key reused
after a failure) are sequences no one writes by hand. Hypothesis generates the sequences; a tiny
in-memory model says what must be true after each step; the adapter is driven only through the
:class:`~litejobs.adapters.base.Adapter` interface, with a :class:`FakeClock`, so time is exact.

After every step the adapter's whole view (every job's state, attempts, lock, run_at) must equal
the model's, and the invariants of issue 5 must hold: a job is locked by at most one worker, no job
is claimed before its ``run_at``, a failed job is never claimed, ``attempts`` never exceeds
``max_attempts``, the backoff is ``attempts ** 4`` s, every job is in exactly one state.

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
from litejobs.adapters.base import Adapter, ClaimedJob, NewJob, Outcome
from litejobs.errors import ValidationError
from tests.conftest import ADAPTER_KINDS, make_adapter

QUEUES = ("default", "email", "reports")
WORKERS = ("host/w.0", "host/w.1", "host/w.2")
#: The claiming workers' ``max_attempts`` for jobs that carry none (as WorkerConfig would).
WORKER_MAX_ATTEMPTS = 3
STALE_AFTER = 60
#: Steps per program: longer programs in CI find deeper sequences (and the profile runs more).
STEPS = 50 if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 40
HANDLER = '{"name":"record","path":"tests.sample_jobs:record","args":[%d]}'


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
    state: str = "waiting"  # waiting (ready or scheduled, by run_at) | running | failed | succeeded
    locked_by: str | None = None
    locked_at: float | None = None

    @property
    def limit(self) -> int:
        return self.max_attempts if self.max_attempts is not None else WORKER_MAX_ATTEMPTS

    def view(self, now: float) -> str:
        if self.state == "waiting":
            assert self.run_at is not None
            return "ready" if self.run_at <= now else "scheduled"
        return self.state


class AdapterMachine(RuleBasedStateMachine):
    """Subclassed once per adapter kind (``kind`` below)."""

    kind = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="litejobs-sm-"))
        self.clock = FakeClock()
        self.adapter: Adapter = make_adapter(self.kind, self.tmp, self.clock)
        self.jobs: dict[int, MJob] = {}
        self.tokens: list[ClaimedJob] = []  # every claim ever made, current or not
        self.beats: dict[str, float] = {}  # registered workers -> last heartbeat
        self.dead: set[str] = set()  # crashed workers: silent until restarted
        self.seq = 0

    def teardown(self) -> None:
        self.adapter.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def now(self) -> float:
        return self.clock.now()

    def current(self, token: ClaimedJob) -> bool:
        """Would the ``(id, locked_by, attempts, locked_at)`` fence accept an outcome for
        ``token``?"""
        job = self.jobs.get(token.id)
        return (
            job is not None
            and job.state == "running"
            and job.locked_by == token.locked_by
            and job.attempts == token.attempts
            and job.locked_at == token.locked_at
        )

    def unique_taken(self, key: str | None) -> bool:
        return key is not None and any(
            j.unique_key == key and j.state in ("waiting", "running") for j in self.jobs.values()
        )

    def _release_model(self, job: MJob, given_max: int) -> str:
        """What recovery does to a job whose worker is gone: ready now, or failed if spent."""
        limit = job.max_attempts if job.max_attempts is not None else given_max
        job.locked_by = job.locked_at = None
        if job.attempts >= limit:
            job.state, job.run_at = "failed", None
            return "failed"
        job.state, job.run_at = "waiting", self.now
        return "released"

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
    def start(self, jobs: list[tuple[str, int, int, int | None]]) -> None:
        """Begin with work to do, so that claims, outcomes and recoveries happen early."""
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
        job_id = self.adapter.schedule(job)
        twin = [
            j
            for j in self.jobs.values()
            if unique is not None and j.unique_key == unique and j.state in ("waiting", "running")
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
        )

    @rule(n=st.integers(2, 4), queue=st.sampled_from(QUEUES))
    def schedule_many(self, n: int, queue: str) -> None:
        rows = []
        for _ in range(n):
            self.seq += 1
            rows.append(NewJob(HANDLER % self.seq, queue, 50, None, None, None))
        ids = self.adapter.schedule_many(rows)
        assert len(set(ids)) == n
        for job_id in ids:
            assert job_id not in self.jobs
            self.jobs[job_id] = MJob(job_id, queue, 50, self.now, None, None)

    # -- claiming and outcomes --------------------------------------------------------------
    @rule(
        worker=st.sampled_from(WORKERS),
        queues=st.sampled_from([None, None, ["default"], ["email", "reports"], list(QUEUES)]),
        limit=st.sampled_from([1, 1, 2, 5]),
    )
    def claim(self, worker: str, queues: list[str] | None, limit: int) -> None:
        if worker in self.dead:
            return
        now = self.now
        eligible = sorted(
            (
                j
                for j in self.jobs.values()
                if j.state == "waiting"
                and j.run_at is not None
                and j.run_at <= now
                and (queues is None or j.queue in queues)
            ),
            key=lambda j: (j.priority, j.run_at, j.id),
        )
        expected = [j.id for j in eligible[:limit]]
        claimed = self.adapter.claim(worker, queues, limit)
        assert [c.id for c in claimed] == expected, "claim must take the right jobs, in order"
        for token in claimed:
            job = self.jobs[token.id]
            # The invariants at the moment of claiming:
            assert job.state != "failed", "a failed job was claimed"
            assert job.run_at is not None and job.run_at <= now, "claimed before its run_at"
            job.attempts += 1
            assert token.attempts == job.attempts, "attempts must be incremented at claim"
            assert job.attempts <= job.limit, "attempts exceeded max_attempts"
            assert token.locked_by == worker
            job.state, job.locked_by, job.locked_at = "running", worker, now
            # A claim the fence cannot tell from an older one (same job, worker, attempt and
            # claim time: a retry and a re-claim within one fake instant) *is* that claim.
            self.tokens = [t for t in self.tokens if _fence(t) != _fence(token)]
            self.tokens.append(token)

    # Outcomes: one rule, so every program that claims also records (Hypothesis' swarm testing
    # switches whole rules off per program; related actions share a rule to stay switched on).
    @precondition(lambda self: self.tokens)
    @rule(data=st.data(), kind=st.sampled_from(["succeed", "succeed", "error", "error", "release"]))
    def outcome(self, data: st.DataObject, kind: str) -> None:
        if kind == "succeed":
            self.succeed(data, data.draw(st.booleans()))
        elif kind == "error":
            self.error(data, data.draw(st.booleans()), data.draw(st.booleans()))
        else:
            self.release(data)

    def _record(self, outcome: Outcome) -> bool:
        expected = self.current(outcome.job)
        event(f"{outcome.kind} {'written' if expected else 'fenced off'}")
        written = self.adapter.record([outcome])
        assert written == [expected], (
            f"fence: outcome {outcome.kind} for job {outcome.job.id} written={written}, "
            f"expected {expected}"
        )
        return expected

    def succeed(self, data: st.DataObject, delete: bool) -> None:
        token = data.draw(st.sampled_from(self.tokens))
        if self._record(Outcome(token, "success", delete=delete)):
            job = self.jobs[token.id]
            if delete:
                del self.jobs[token.id]
            else:
                job.state, job.locked_by, job.locked_at, job.run_at = "succeeded", None, None, None

    def error(self, data: st.DataObject, timed_out: bool, delete_failed: bool) -> None:
        """The job raised (or timed out): retry after ``attempts ** 4`` s, or fail if spent."""
        token = data.draw(st.sampled_from(self.tokens))
        message = "JobTimeoutError: timed out after 5 s" if timed_out else "ValueError: boom"
        limit = token.max_attempts if token.max_attempts is not None else WORKER_MAX_ATTEMPTS
        if token.attempts >= limit:
            outcome = Outcome(token, "failure", error=message, delete=delete_failed)
        else:
            retry_at = self.now + token.attempts**4
            outcome = Outcome(token, "error", error=message, retry_at=retry_at)
        if not self._record(outcome):
            return
        job = self.jobs[token.id]
        job.locked_by = job.locked_at = None
        if outcome.kind == "failure":
            if delete_failed:
                del self.jobs[token.id]
            else:
                job.state, job.run_at = "failed", None
            return
        job.state, job.run_at = "waiting", self.now + job.attempts**4
        stored = self.adapter.get(job.id)
        assert stored is not None and stored.run_at == self.now + stored.attempts**4, "backoff"
        assert stored.last_error == message

    def release(self, data: st.DataObject) -> None:
        """Claimed but never started (graceful stop): ready again, the attempt given back."""
        token = data.draw(st.sampled_from(self.tokens))
        # The owner discards a token it gave back. (It must: the release returns the attempt,
        # so the same worker re-claiming the job within one fake instant would make the old
        # token match the fence again. Only the owner ever holds that token.)
        self.tokens.remove(token)
        if self._record(Outcome(token, "release")):
            job = self.jobs[token.id]
            job.state, job.locked_by, job.locked_at = "waiting", None, None
            job.attempts -= 1

    # -- workers, heartbeats, recovery ------------------------------------------------------
    @rule(worker=st.sampled_from(WORKERS))
    def register_worker(self, worker: str) -> None:
        """A worker (re)starts under a name: whatever that name held was left by a dead one."""
        count = self.adapter.register_worker(
            worker, host="host", pid=1, queues="*", max_attempts=WORKER_MAX_ATTEMPTS
        )
        self.beats[worker] = self.now
        self.dead.discard(worker)
        held = [j for j in self.jobs.values() if j.state == "running" and j.locked_by == worker]
        for job in held:
            self._release_model(job, WORKER_MAX_ATTEMPTS)
        assert count == len(held), "same-name restart must release what the name held"

    @rule(
        worker=st.sampled_from(WORKERS),
        what=st.sampled_from(["heartbeat", "heartbeat", "crash", "deregister"]),
    )
    def worker_life(self, worker: str, what: str) -> None:
        """A worker heartbeats, crashes (goes silent) or stops cleanly (deregisters)."""
        getattr(self, what)(worker)

    def heartbeat(self, worker: str) -> None:
        if worker in self.dead:
            return
        self.adapter.heartbeat(worker)
        if worker in self.beats:  # only a registered worker has a row to update
            self.beats[worker] = self.now

    def crash(self, worker: str) -> None:
        """The worker vanishes: no deregistration, no more heartbeats; its tokens linger (a
        zombie may still try to record a late outcome: the fence must refuse it)."""
        self.dead.add(worker)  # its row stays, it just goes silent

    def deregister(self, worker: str) -> None:
        self.adapter.deregister_worker(worker)
        self.beats.pop(worker, None)

    @rule(seconds=st.sampled_from([1, 1, 2, 5, 16, 30, 61, 81, 256, 3600, 90_000]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule(
        stale_after=st.sampled_from([STALE_AFTER, 10]),
        lock_timeout=st.sampled_from([None, None, 300]),
    )
    def recover_stale(self, stale_after: int, lock_timeout: int | None) -> None:
        now = self.now
        alive = {w for w, beat in self.beats.items() if beat >= now - stale_after}
        expected = [0, 0]
        for job in sorted(self.jobs.values(), key=lambda j: j.id):
            if job.state != "running":
                continue
            assert job.locked_at is not None
            gone = job.locked_by not in alive
            too_old = lock_timeout is not None and job.locked_at < now - lock_timeout
            if gone or too_old:
                kind = self._release_model(job, WORKER_MAX_ATTEMPTS)
                expected[kind == "failed"] += 1
        for kind in ("released", "failed"):
            if expected[kind == "failed"]:
                event(f"recover_stale {kind} a job")
        result = self.adapter.recover_stale(
            stale_after, WORKER_MAX_ATTEMPTS, lock_timeout=lock_timeout
        )
        assert tuple(result) == tuple(expected), "recovery released the wrong jobs"
        # Workers silent for a day are forgotten.
        self.beats = {w: b for w, b in self.beats.items() if b >= now - 86_400}

    # -- administration ---------------------------------------------------------------------
    @precondition(lambda self: self.jobs)
    @rule(
        data=st.data(), what=st.sampled_from(["retry", "retry", "retry_failed", "delete", "clear"])
    )
    def administer(self, data: st.DataObject, what: str) -> None:
        """What a person does with the CLI: retry, retry --failed, delete, clear."""
        queue = data.draw(st.sampled_from([None, *QUEUES]))
        if what == "retry":
            self.retry(data)
        elif what == "retry_failed":
            self.retry_failed(queue)
        elif what == "delete":
            self.delete(data)
        else:
            self.clear(queue, data.draw(st.booleans()))

    def retry(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from([*sorted(self.jobs), 10_000]))
        if job_id not in self.jobs:
            assert self.adapter.retry(job_id) is False
            return
        job = self.jobs[job_id]
        if job.state in ("failed", "succeeded") and self.unique_taken(job.unique_key):
            with pytest.raises(ValidationError, match="unique key"):
                self.adapter.retry(job_id)
            return
        assert self.adapter.retry(job_id)
        if job.state in ("failed", "succeeded"):  # a fresh run: attempts start again
            self._reset_attempts(job)
        if job.view(self.now) in ("scheduled", "failed", "succeeded"):  # ready/running: as is
            job.state, job.run_at = "waiting", self.now

    def _reset_attempts(self, job: MJob) -> None:
        """A person retried a failed (or kept succeeded) job: attempts start again from 0.

        Claims from before the failure are kept: once the count restarts, the same worker name
        can hold the job at the same attempt again, and only ``locked_at`` in the fence tells
        that claim from the old one (the same fake instant cannot, in the model or in storage).
        """
        job.attempts = 0

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
            job.state, job.run_at = "waiting", self.now
            self._reset_attempts(job)

    def delete(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.jobs)))
        assert self.adapter.delete(job_id)
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

    # -- invariants -------------------------------------------------------------------------
    @invariant()
    def adapter_equals_model(self) -> None:
        now = self.now
        stored = {r.id: r for r in self.adapter.list_jobs(limit=None)}
        assert set(stored) == set(self.jobs), "a job was lost or appeared from nowhere"
        for job_id, job in self.jobs.items():
            r = stored[job_id]
            got = replace(r)  # a copy, for the message
            want = (job.view(now), job.attempts, job.locked_by, job.run_at, job.queue)
            assert (r.state, r.attempts, r.locked_by, r.run_at, r.queue) == want, (got, want)
            assert r.priority == job.priority
            # Exactly one state, and the columns agree with it.
            assert (r.state == "running") == (r.locked_by is not None) == (r.locked_at is not None)
            assert (r.state == "failed") == (r.failed_at is not None)
            assert (r.run_at is None) == (r.state in ("failed", "succeeded"))
            assert r.attempts <= job.limit, "attempts exceeded max_attempts"
            assert r.attempts >= 0

    @invariant()
    def counts_agree(self) -> None:
        now = self.now
        want: dict[str, dict[str, int]] = {}
        for job in self.jobs.values():
            per = want.setdefault(job.queue, {})
            per[job.view(now)] = per.get(job.view(now), 0) + 1
        assert self.adapter.counts() == want
        ready = any(j.view(now) == "ready" for j in self.jobs.values())
        assert self.adapter.has_ready(None) == ready

    @invariant()
    def at_most_one_current_token(self) -> None:
        """For each job, at most one outstanding claim can still record an outcome."""
        per_job: dict[int, int] = {}
        for token in self.tokens:
            if self.current(token):
                per_job[token.id] = per_job.get(token.id, 0) + 1
        assert all(n == 1 for n in per_job.values())
        running = sum(1 for j in self.jobs.values() if j.state == "running")
        assert running == len(per_job)


def _fence(token: ClaimedJob) -> tuple[int, str, int, float]:
    return (token.id, token.locked_by, token.attempts, token.locked_at)


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
    first = adapter.schedule(NewJob(HANDLER % 1, max_attempts=1, unique_key=key))
    [token] = adapter.claim("host/w.0", None)
    assert adapter.record([Outcome(token, "failure", error="ValueError: boom")]) == [True]
    second = adapter.schedule(NewJob(HANDLER % 2, unique_key=key))
    assert second != first
    with pytest.raises(ValidationError, match="unique key"):
        adapter.retry(first)
    assert adapter.retry_failed() == 0
    assert adapter.require(first).state == "failed"
    adapter.delete(second)
    assert adapter.retry_failed() == 1
    assert adapter.require(first).state == "ready"
