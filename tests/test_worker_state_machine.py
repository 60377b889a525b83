"""Worker groups under crashes, restarts and pauses: a Hypothesis state machine.

Why: the adapter machine (``test_state_machine.py``) proves the storage operations; this one proves
what a *group* of workers built on them guarantees, using the real :class:`~litejobs.worker.Worker`
loop for the work itself. Workers here are names with a life cycle -- absent, alive (heartbeating),
silent (crashed, or paused and maybe coming back) -- and the rules are what happens to processes:

* a live worker starts a long job (claims it and holds it); it may finish it later, even after it
  went silent and came back (a paused process): **fencing** must drop a late completion once the
  job was taken over, and accept it otherwise;
* a worker crashes; the supervisor restarts it **under the same name**, which releases whatever
  that name held at once (``register_worker``);
* a live worker runs **stale-lock recovery**: jobs of workers silent for ``stale_after`` come
  back, and a job held by a worker that heartbeated within ``stale_after`` is never taken;
* a replacement worker runs everything due (``Worker.run(workoff=True)``): real claims, real
  execution, real backoff (``attempts ** 4`` s), real recording;
* the clock moves; live workers heartbeat.

At the end of every program everything is drained and checked: no job lost (every job ran at
least once, or failed for good after its attempts), none left pending or locked, and every
duplicate run is explained by a takeover of a job that was already running.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from litejobs import FakeClock
from litejobs.adapters.base import Adapter, ClaimedJob, NewJob, Outcome
from litejobs.config import WorkerConfig
from litejobs.executor import Execution
from litejobs.worker import Worker
from tests.conftest import ADAPTER_KINDS, make_adapter

NAMES = ("host/litejobs-worker.*.0", "host/litejobs-worker.*.1", "host/litejobs-worker.*.2")
STALE_AFTER = 60
MAX_ATTEMPTS = 3
CONFIG = WorkerConfig(max_attempts=MAX_ATTEMPTS, stale_after=STALE_AFTER, heartbeat_interval=10)
STEPS = 50 if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 30
OK = '{"name":"record","path":"tests.sample_jobs:record","args":[%d]}'
BOOM = '{"name":"boom","path":"tests.sample_jobs:boom","args":["boom %d"]}'


class WorkerGroupMachine(RuleBasedStateMachine):
    kind = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="litejobs-wsm-"))
        self.clock = FakeClock()
        self.adapter: Adapter = make_adapter(self.kind, self.tmp, self.clock)
        self.alive: set[str] = set()
        self.registered: dict[str, float] = {}  # name -> last heartbeat (row exists)
        self.valid: dict[int, ClaimedJob] = {}  # job id -> the one token that may record
        self.held: list[ClaimedJob] = []  # long jobs started by hand, finished later (or never)
        self.runs: Counter[int] = Counter()  # job id -> times it started executing
        self.takeovers: Counter[int] = Counter()  # job id -> times taken from a running worker
        self.kinds: dict[int, str] = {}  # job id -> "ok" | "boom"
        self.seq = 0
        self.drained = False

    def teardown(self) -> None:
        try:
            if not self.drained:
                self.drain_and_check()
        finally:
            self.adapter.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def now(self) -> float:
        return self.clock.now()

    def fresh(self, name: str) -> bool:
        """Would recovery leave ``name``'s jobs alone (heartbeat within ``stale_after``)?"""
        beat = self.registered.get(name)
        return beat is not None and beat >= self.now - STALE_AFTER

    def _invalidate(self, stale: set[str] | None = None, name: str | None = None) -> None:
        for job_id, token in list(self.valid.items()):
            if token.locked_by == name or (stale is not None and token.locked_by in stale):
                del self.valid[job_id]
                self.takeovers[job_id] += 1

    def _stale_names(self) -> set[str]:
        return {t.locked_by for t in self.valid.values() if not self.fresh(t.locked_by)}

    def _snapshot_fresh(self) -> dict[int, tuple[str, int]]:
        return {
            job_id: (t.locked_by, t.attempts)
            for job_id, t in self.valid.items()
            if self.fresh(t.locked_by)
        }

    def _assert_still_held(self, before: dict[int, tuple[str, int]]) -> None:
        for job_id, (name, attempts) in before.items():
            record = self.adapter.get(job_id)
            assert record is not None and record.state == "running", (
                f"job {job_id} of live worker {name} was taken"
            )
            assert (record.locked_by, record.attempts) == (name, attempts)

    # -- producers ----------------------------------------------------------------------------
    @rule(boom=st.sampled_from([False, False, False, True]), wait=st.sampled_from([0, 0, 5, 100]))
    def enqueue(self, boom: bool, wait: int) -> None:
        self.seq += 1
        handler = (BOOM if boom else OK) % self.seq
        run_at = self.now + wait if wait else None
        job_id = self.adapter.enqueue(NewJob(handler, run_at=run_at))
        self.kinds[job_id] = "boom" if boom else "ok"
        self.drained = False

    # -- worker life cycle --------------------------------------------------------------------
    @precondition(lambda self: len(self.alive) < len(NAMES))
    @rule(data=st.data())
    def start_worker(self, data: st.DataObject) -> None:
        """The supervisor (re)starts a worker under a free name: same-name reclaim."""
        name = data.draw(st.sampled_from(sorted(set(NAMES) - self.alive)))
        held_before = {j for j, t in self.valid.items() if t.locked_by == name}
        released = self.adapter.register_worker(
            name, host="host", pid=1, queues="*", max_attempts=MAX_ATTEMPTS
        )
        assert released == len(held_before), "a restart must release what its name held"
        self._invalidate(name=name)
        self.alive.add(name)
        self.registered[name] = self.now
        running = self.adapter.list_jobs(state="running", limit=None)
        assert not [r.id for r in running if r.locked_by == name]

    @precondition(lambda self: self.alive)
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        """A worker goes silent (SIGKILL, or SIGSTOP: its held jobs may still finish later)."""
        self.alive.discard(data.draw(st.sampled_from(sorted(self.alive))))

    @rule()
    def heartbeat(self) -> None:
        for name in sorted(self.alive):
            self.adapter.heartbeat(name)
            if name in self.registered:
                self.registered[name] = self.now

    @rule(seconds=st.sampled_from([1, 5, 10, 30, 59, 61, 100, 1000]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    # -- jobs ---------------------------------------------------------------------------------
    @precondition(lambda self: self.alive)
    @rule(data=st.data())
    def start_long_job(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.alive)))
        for token in self.adapter.claim(name, None, 1):
            assert token.id not in self.valid, f"job {token.id} claimed while still held"
            self.valid[token.id] = token
            self.held.append(token)
            self.runs[token.id] += 1

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def finish_long_job(self, data: st.DataObject) -> None:
        """The job ends -- maybe long after its worker went silent (a paused process)."""
        token = data.draw(st.sampled_from(self.held))
        self.held.remove(token)
        expected = self.valid.get(token.id) == token
        ok = self.kinds[token.id] == "ok"
        if ok:
            outcome = Outcome(token, "succeeded", delete=True)
        elif token.attempts >= MAX_ATTEMPTS:
            outcome = Outcome(token, "failed", error="ValueError: boom")
        else:
            outcome = Outcome(token, "errored", error="ValueError: boom", retry_at=self.now + 1)
        assert self.adapter.record([outcome]) == [expected], "fencing of a late completion"
        if expected:
            del self.valid[token.id]

    @precondition(lambda self: self.alive)
    @rule()
    def recover_stale(self) -> None:
        before = self._snapshot_fresh()
        stale = self._stale_names()
        self.adapter.recover_stale(STALE_AFTER, MAX_ATTEMPTS)
        self._invalidate(stale=stale)
        self._assert_still_held(before)

    @precondition(lambda self: len(self.alive) < len(NAMES))
    @rule(data=st.data())
    def workoff(self, data: st.DataObject) -> None:
        """A replacement worker (a real ``Worker``) runs everything due, then stops cleanly."""
        name = data.draw(st.sampled_from(sorted(set(NAMES) - self.alive)))
        self._run_worker(name)

    def _run_worker(self, name: str) -> None:
        self._invalidate(name=name)  # it registers: same-name reclaim
        self.registered[name] = self.now
        before = self._snapshot_fresh()
        self._invalidate(stale=self._stale_names())  # its first loop recovers stale locks
        ran: list[tuple[ClaimedJob, Execution]] = []
        # The clock stands still during a workoff, so each job can run at most once in it (an
        # error retries >= 1 s later): far more runs means a job is being claimed in a loop.
        budget = 2 * len(self.kinds) + 10

        def on_job(job: ClaimedJob, result: Execution) -> None:
            ran.append((job, result))
            if len(ran) > budget:
                worker.stop.set()

        worker = Worker(self.adapter, CONFIG, name=name, clock=self.clock, on_job=on_job)
        stats = worker.run(workoff=True)
        assert len(ran) <= budget, "workoff never ends: jobs are claimed again and again"
        self.registered.pop(name, None)  # deregistered on the way out
        assert stats.lost == 0, "nothing else runs during a workoff: no outcome may be dropped"
        self._assert_still_held(before)
        for job, result in ran:
            self.runs[job.id] += 1
            assert result.ok == (self.kinds[job.id] == "ok")
            record = self.adapter.get(job.id)
            if result.ok:
                assert record is None, "a succeeded job is deleted"
            elif job.attempts >= MAX_ATTEMPTS:
                assert record is not None and record.state == "failed"
            else:
                assert record is not None and record.state == "scheduled"
                assert record.run_at == self.now + job.attempts**4, "backoff is attempts ** 4 s"

    # -- invariants ---------------------------------------------------------------------------
    @invariant()
    def locks_match_the_model(self) -> None:
        running = {r.id: r for r in self.adapter.list_jobs(state="running", limit=None)}
        assert set(running) == set(self.valid), "a lock exists that no worker holds, or vice versa"
        for job_id, record in running.items():
            token = self.valid[job_id]
            assert (record.locked_by, record.attempts) == (token.locked_by, token.attempts)
            assert record.attempts <= MAX_ATTEMPTS

    # -- the end ------------------------------------------------------------------------------
    @rule()
    def drain_and_check(self) -> None:
        """Everyone goes silent; time passes; a fresh worker runs until nothing is left."""
        self.drained = True
        self.alive.clear()
        for _ in range(4 * MAX_ATTEMPTS + 4):
            self.clock.advance(10_000)
            self._run_worker("host/litejobs-worker.*.drain")
            active = [
                r
                for r in self.adapter.list_jobs(limit=None)
                if r.state in ("scheduled", "ready", "running")
            ]
            if not active:
                break
        else:
            raise AssertionError(f"jobs still pending after draining: {active}")
        for token in self.held:  # late completions after the drain: all refused
            assert self.adapter.record([Outcome(token, "succeeded", delete=True)]) == [False]
        self.held.clear()
        remaining = {r.id: r for r in self.adapter.list_jobs(limit=None)}
        for job_id, kind in self.kinds.items():
            record = remaining.get(job_id)
            if kind == "ok":
                # ran at least once, and more only when a takeover interrupted a run
                assert self.runs[job_id] >= 1 or (record is not None and record.state == "failed")
                assert self.runs[job_id] - 1 <= self.takeovers[job_id], (
                    f"job {job_id} ran {self.runs[job_id]} times with "
                    f"{self.takeovers[job_id]} takeover(s)"
                )
                if record is not None:  # only a job whose workers kept dying fails
                    assert record.state == "failed" and "stopped during attempt" in (
                        record.last_error or ""
                    )
            else:
                assert record is not None and record.state == "failed", "boom ends failed"
                assert record.attempts <= MAX_ATTEMPTS


def _machine_for(kind: str) -> type[WorkerGroupMachine]:
    return type(f"WorkerGroupMachine_{kind}", (WorkerGroupMachine,), {"kind": kind})


for _kind in ADAPTER_KINDS:
    _case = _machine_for(_kind).TestCase
    _case.settings = settings(settings.default, stateful_step_count=STEPS)
    # The CI profile's examples take ~1 min on PostgreSQL on a quiet 2-core machine and up to
    # 3x that under load: a bound for a hang, not a speed requirement.
    _case.pytestmark = [pytest.mark.timeout(600)]
    globals()[f"TestWorkerGroupStateMachine_{_kind}"] = _case
del _kind, _case


def test_the_lock_timeout_fallback_spares_a_young_lock(adapter: Adapter, clock: FakeClock) -> None:
    """``lock_timeout`` releases only locks *older* than it (the last resort for a worker gone
    without a trace), never a young lock of a live worker. (Redwood computes the expiry as
    ``now + maxRuntime`` and re-claims running jobs.)"""
    job_id = adapter.enqueue(NewJob(OK % 1))
    adapter.register_worker(NAMES[0], host="host", pid=1, queues="*")
    [token] = adapter.claim(NAMES[0], None)
    clock.advance(100)
    adapter.heartbeat(NAMES[0])
    assert adapter.recover_stale(STALE_AFTER, MAX_ATTEMPTS, lock_timeout=300) == (0, 0)
    assert adapter.require(job_id).locked_by == NAMES[0]
    clock.advance(250)  # the lock is 350 s old; its worker went silent 250 s ago
    assert adapter.recover_stale(10_000, MAX_ATTEMPTS, lock_timeout=300) == (1, 0)
    assert adapter.record([Outcome(token, "succeeded", delete=True)]) == [False]
