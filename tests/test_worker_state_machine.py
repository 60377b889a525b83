"""Worker groups sharing one database: a Hypothesis state machine of what real deployments mix.

Why: the adapter machine (``test_state_machine.py``) proves the storage operations; this one
proves what *workers* built on them guarantee when several runners share a database -- the
setups the first proofs never modelled: two runners wanting the same names, an in-process
``workoff()`` next to a live ``work``, worker groups with different heartbeat and staleness
settings, a worker row deleted by hand, the wall clock set forward by days, a worker killed in
the middle of a batch.

Workers here are processes with a life: alive (their heartbeat thread beats when the
``heartbeat`` rule runs), paused (SIGSTOP: alive but silent), or dead (SIGKILL). A live worker
claims a batch and executes its jobs one by one (an *execution* is running until it finishes or
its process dies); a real :class:`~litejobs.worker.Worker` (``run(workoff=True)``, picking a free
name) runs everything due in between, as ``jobs.workoff()`` would in a web process.

The invariants, checked at every execution that starts:

* **no job ever has two overlapping executions while the first executor is alive** -- its
  process runs and its heartbeat is within its own group's deadline (real, monotonic time);
* **no attempt is charged to a job that never started**: a job's stored attempts never exceed
  the executions it had since a person last reset them.

At the end everything is drained: no job lost, none left pending or held, every duplicate run
explained by an execution that was abandoned (its process died or went silent).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import event, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from litejobs import FakeClock
from litejobs.adapters.base import Adapter, ClaimedJob, NewJob, Outcome
from litejobs.config import WorkerConfig
from litejobs.errors import WorkerNameTaken
from litejobs.executor import Execution
from litejobs.liveness import WorkerInfo, process_start
from litejobs.worker import Worker
from tests.conftest import ADAPTER_KINDS, make_adapter
from tests.workers import HERE, Processes, worker

GROUPS = {
    # name: (stale_after, heartbeat_interval, max_attempts)
    "slow": WorkerConfig(queue="*", stale_after=60, heartbeat_interval=10, max_attempts=3),
    "fast": WorkerConfig(queue="*", stale_after=5, heartbeat_interval=1, max_attempts=3),
}
NAMES = ("host/litejobs-worker.*.0", "host/litejobs-worker.*.1")
STEPS = 50 if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 30
OK = '{"name":"record","path":"tests.sample_jobs:record","args":[%d]}'
BOOM = '{"name":"boom","path":"tests.sample_jobs:boom","args":["boom %d"]}'


@dataclass
class Proc:
    """A worker process of the model."""

    info: WorkerInfo
    config: WorkerConfig
    state: str = "alive"  # alive | paused | dead
    beat_mono: float = 0.0
    running: ClaimedJob | None = None  # the execution in progress
    reserved: list[ClaimedJob] = field(default_factory=list)


class WorkerGroupMachine(RuleBasedStateMachine):
    kind = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="litejobs-wsm-"))
        self.clock = FakeClock()
        self.adapter: Adapter = make_adapter(self.kind, self.tmp, self.clock)
        self.procs_table = Processes()
        # In-process workoffs run in this very process: alive while they run (they deregister).
        self.procs_table.alive[os.getpid()] = process_start(os.getpid()) or 0
        self.procs: list[Proc] = []
        self.runs: Counter[int] = Counter()  # job id -> executions started
        self.abandoned: Counter[int] = Counter()  # job id -> executions cut short
        self.rescued: set[tuple[str, int]] = set()  # (token, job id): runs a rescue took over
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
    def mono(self) -> float:
        return self.clock.monotonic()

    def truly_alive(self, p: Proc) -> bool:
        return p.state == "alive" and self.mono - p.beat_mono <= p.config.stale_after

    def live(self) -> list[Proc]:
        return [p for p in self.procs if p.state == "alive"]

    def _execution_starts(self, job: ClaimedJob, who: str) -> None:
        """The invariant: no overlap with an execution whose executor is alive."""
        for other in self.procs:
            if other.running is not None and other.running.id == job.id:
                taken = (other.info.token, job.id) in self.rescued
                assert taken or not self.truly_alive(other), (
                    f"job {job.id} started by {who} while {other.info.name} runs it, alive"
                )
                other.running = None
                self.abandoned[job.id] += 1
        self.runs[job.id] += 1
        record = self.adapter.get(job.id)
        if record is not None:
            assert record.attempts <= self.runs[job.id], "an attempt charged without a start"

    # -- producers ----------------------------------------------------------------------------
    @rule(boom=st.sampled_from([False, False, False, True]), wait=st.sampled_from([0, 0, 5, 100]))
    def enqueue(self, boom: bool, wait: int) -> None:
        self.seq += 1
        handler = (BOOM if boom else OK) % self.seq
        run_at = self.clock.now() + wait if wait else None
        job_id = self.adapter.enqueue(NewJob(handler, run_at=run_at))
        self.kinds[job_id] = "boom" if boom else "ok"
        self.drained = False

    # -- processes ----------------------------------------------------------------------------
    @rule(group=st.sampled_from(sorted(GROUPS)), name=st.sampled_from(NAMES))
    def start_runner(self, group: str, name: str) -> None:
        """A runner (``litejobs work``, another one at the same instant, a restart by systemd)
        starts a worker under a fixed name: refused while a live worker holds it."""
        config = GROUPS[group]
        info = worker(
            self.procs_table,
            name,
            host=HERE,
            stale_after=config.stale_after,
            max_attempts=config.max_attempts,
        )
        observer = self.procs_table.observer(max_attempts=config.max_attempts)
        try:
            got = self.adapter.register_worker(replace(info, name=""), [name], observer)
        except WorkerNameTaken:
            self.procs_table.kill(info.pid)
            event("runner refused: name live")
            return
        self.procs.append(Proc(got.worker, config, beat_mono=self.mono))

    @precondition(lambda self: self.procs)
    @rule(
        data=st.data(),
        what=st.sampled_from(["beat", "beat", "beat", "kill", "pause", "resume", "unrow"]),
    )
    def process_life(self, data: st.DataObject, what: str) -> None:
        p = data.draw(st.sampled_from(self.procs))
        if what == "beat" and p.state == "alive":
            self.adapter.heartbeat(p.info)  # re-creates the row if it was deleted
            p.beat_mono = self.mono
        elif what == "kill" and p.state != "dead":
            p.state = "dead"
            self.procs_table.kill(p.info.pid)
            if p.running is not None:
                self.abandoned[p.running.id] += 1
            p.running, p.reserved = None, []
        elif what == "pause" and p.state == "alive":
            p.state = "paused"
        elif what == "resume" and p.state == "paused":
            p.state = "alive"
        elif what == "unrow" and p.state != "dead":
            from tests.workers import delete_row

            delete_row(self.adapter, p.info)

    @rule(seconds=st.sampled_from([1, 2, 4, 6, 30, 59, 61, 100, 1000]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: self.kind == "sqlite")
    @rule(days=st.sampled_from([1, 3]))
    def jump(self, days: int) -> None:
        """The machine's wall clock is set forward by days (on PostgreSQL, the server's clock
        is everybody's: no such rule there)."""
        self.clock.jump(days * 86_400)

    # -- work ---------------------------------------------------------------------------------
    @precondition(lambda self: any(p.running is None and not p.reserved for p in self.live()))
    @rule(data=st.data(), limit=st.sampled_from([1, 3]))
    def claim_batch(self, data: st.DataObject, limit: int) -> None:
        """A live, idle worker claims a batch: the first job's execution starts at once."""
        idle = [p for p in self.live() if p.running is None and not p.reserved]
        p = data.draw(st.sampled_from(idle))
        jobs = self.adapter.claim(p.info, None, limit)
        if not jobs:
            return
        self._execution_starts(jobs[0], p.info.name)
        p.running, p.reserved = jobs[0], jobs[1:]

    @precondition(lambda self: any(p.running is not None for p in self.live()))
    @rule(data=st.data(), start_next=st.booleans())
    def finish_job(self, data: st.DataObject, start_next: bool) -> None:
        """A live worker's job ends; the worker records it and, with ``start_next``, starts
        the next reserved job in the same write (its attempt counted before it runs)."""
        busy = [p for p in self.live() if p.running is not None]
        p = data.draw(st.sampled_from(busy))
        job = p.running
        assert job is not None
        p.running = None
        outcome = self._outcome(job, p.config)
        nxt = p.reserved.pop(0) if start_next and p.reserved else None
        written, started = self.adapter.record([outcome], nxt)
        if not written[0]:  # it was presumed gone meanwhile: its run did not count
            event("late outcome fenced off")
            self.abandoned[job.id] += 1
        if nxt is not None:
            if started is None:
                event("reserved job taken back before its start")
                p.reserved = []
            else:
                self._execution_starts(started, p.info.name)
                p.running = started

    def _outcome(self, job: ClaimedJob, config: WorkerConfig) -> Outcome:
        if self.kinds[job.id] == "ok":
            return Outcome(job, "succeeded", delete=True)
        if job.attempts >= config.max_attempts:
            return Outcome(job, "failed", error="ValueError: boom")
        retry_at = self.clock.now() + config.retry_policy.seconds(job.attempts)
        return Outcome(job, "errored", error="ValueError: boom", retry_at=retry_at)

    @precondition(lambda self: any(p.reserved for p in self.live()))
    @rule(data=st.data())
    def give_back(self, data: st.DataObject) -> None:
        """A busy worker gives back what it reserved but has not started (after a second)."""
        p = data.draw(st.sampled_from([p for p in self.live() if p.reserved]))
        self.adapter.record([Outcome(j, "released") for j in p.reserved])
        p.reserved = []

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def rescue(self, data: st.DataObject) -> None:
        """A live worker looks for gone workers (by their own deadlines) and rescues."""
        p = data.draw(st.sampled_from(self.live()))
        observer = self.procs_table.observer(max_attempts=p.config.max_attempts)
        alive = {q.info.token for q in self.procs if self.truly_alive(q)}
        before = self._taken_runs()
        self.adapter.rescue(observer)
        taken = self._taken_runs()
        for token, job_id in taken - before:
            assert token not in alive, f"rescue took job {job_id} of a live worker"
            event("run taken by a rescue")
        # Such a worker may beat again later (a paused process): its run is abandoned all the
        # same, and another execution of that job overlaps nothing alive.
        self.rescued |= taken

    def _taken_runs(self) -> set[tuple[str, int]]:
        """(token, job id) of the model's runs whose rows their worker no longer holds."""
        taken: set[tuple[str, int]] = set()
        for q in self.procs:
            if q.running is not None:
                row = self.adapter.get(q.running.id)
                if row is None or row.lock_token != q.info.token:
                    taken.add((q.info.token, q.running.id))
        return taken

    @rule(group=st.sampled_from(sorted(GROUPS)))
    def workoff(self, group: str) -> None:
        """``jobs.workoff()`` in some process: a real Worker under a free name, everything due
        now, then it stops cleanly."""
        budget = 2 * len(self.kinds) + 10

        def on_job(job: ClaimedJob, result: Execution) -> None:
            ran.append(job)
            assert result.ok == (self.kinds[job.id] == "ok")
            if len(ran) > budget:
                worker_.stop.set()

        ran: list[ClaimedJob] = []
        worker_ = Worker(
            self.adapter,
            GROUPS[group],
            clock=self.clock,
            on_job=on_job,
            host=HERE,
            probe=self.procs_table.probe,
        )
        stats = worker_.run(workoff=True)
        assert len(ran) <= budget, "workoff never ends: jobs are claimed again and again"
        assert worker_.name not in {p.info.name for p in self.live() if self.truly_alive(p)}
        for job in ran:
            self._execution_starts(job, worker_.name)
        assert stats.lost == 0 or any(not self.truly_alive(p) for p in self.procs)

    # -- invariants ---------------------------------------------------------------------------
    @invariant()
    def held_jobs_belong_to_someone(self) -> None:
        """Every held row is held by the token of a claim in the model (or an abandoned one)."""
        tokens = {p.info.token for p in self.procs}
        for record in self.adapter.list_jobs(state=["reserved", "running"], limit=None):
            assert record.lock_token in tokens, f"job {record.id} held by an unknown token"

    # -- the end ------------------------------------------------------------------------------
    @rule()
    def drain_and_check(self) -> None:
        """Every process stops (finishing nothing); time passes; workoffs run until nothing is
        left. Then: nothing lost, nothing held, every extra run explained."""
        self.drained = True
        for p in self.procs:
            if p.state != "dead":
                if p.running is not None:
                    self.abandoned[p.running.id] += 1
                p.state, p.running, p.reserved = "dead", None, []
                self.procs_table.kill(p.info.pid)
        for _ in range(20):
            self.clock.advance(10_000)
            self.workoff("slow")
            active = self.adapter.list_jobs(
                state=["scheduled", "ready", "reserved", "running"], limit=None
            )
            if not active:
                break
        else:
            raise AssertionError(f"jobs still pending after draining: {active}")
        remaining = {r.id: r for r in self.adapter.list_jobs(limit=None)}
        for job_id, kind in self.kinds.items():
            record = remaining.get(job_id)
            if kind == "ok":
                assert self.runs[job_id] >= 1 or (record is not None and record.state == "failed")
                assert self.runs[job_id] - 1 <= self.abandoned[job_id], (
                    f"job {job_id} ran {self.runs[job_id]} times with "
                    f"{self.abandoned[job_id]} abandoned run(s)"
                )
                if record is not None:  # only a job whose workers kept dying fails
                    assert record.state == "failed" and "stopped during attempt" in (
                        record.last_error or ""
                    )
            else:
                assert record is not None and record.state == "failed", "boom ends failed"


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
