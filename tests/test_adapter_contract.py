"""The storage contract, rule by rule, with exact values.

Why: the worker, the CLI and the PostgreSQL adapter all rely on these rules; the state-machine
tests find odd sequences, these pin each rule down one at a time so a failure names the rule it
breaks. Everything goes through the :class:`~litejobs.adapters.base.Adapter` interface and the
``adapter`` fixture (a real SQLite file, and PostgreSQL when ``LITEJOBS_TEST_PG_URL`` is set), so
there is no SQL here; time is a :class:`~litejobs.clock.FakeClock`, so nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, example, given, settings

from litejobs import FakeClock
from litejobs.adapters.base import Adapter, ClaimedJob, NewJob, Outcome
from litejobs.errors import ValidationError
from tests.workers import (
    CONTAINER,
    ELSEWHERE,
    Processes,
    delete_row,
    register,
    worker,
)

PROCS = Processes()
W1 = worker(PROCS, "host/litejobs-worker.*.1")
W2 = worker(PROCS, "host/litejobs-worker.*.2")
STALE = 60.0


def new(n: int = 0, **options: object) -> NewJob:
    """A job whose handler carries ``n`` so rows are easy to tell apart."""
    handler = json.dumps({"name": "record", "path": "tests.sample_jobs:record", "args": [n]})
    return NewJob(handler=handler, **options)  # type: ignore[arg-type]


def claim_one(adapter: Adapter, who: object = W1, queues: list[str] | None = None) -> ClaimedJob:
    jobs = adapter.claim(who, queues, 1)  # type: ignore[arg-type]
    assert len(jobs) == 1, f"expected one claimable job, got {jobs}"
    return jobs[0]


def record_one(adapter: Adapter, outcome: Outcome) -> bool:
    return adapter.record([outcome])[0][0]


def succeed(adapter: Adapter, job: ClaimedJob, delete: bool = True) -> bool:
    return record_one(adapter, Outcome(job, "succeeded", delete=delete))


def err(adapter: Adapter, job: ClaimedJob, error: str, retry_at: float) -> bool:
    return record_one(adapter, Outcome(job, "errored", error=error, retry_at=retry_at))


def fail(adapter: Adapter, job: ClaimedJob, error: str, delete: bool = False) -> bool:
    return record_one(adapter, Outcome(job, "failed", error=error, delete=delete))


# -- pick order and filtering -----------------------------------------------------------------
def test_claim_order_is_priority_then_run_at_then_id_across_queues(
    adapter: Adapter, clock: FakeClock
) -> None:
    now = clock.now()
    ids = adapter.enqueue_many(
        [
            new(0, queue="a", priority=50, run_at=now - 10),  # 0
            new(1, queue="b", priority=10, run_at=now - 1),  # 1
            new(2, queue="a", priority=10, run_at=now - 5),  # 2
            new(3, queue="c", priority=10, run_at=now - 5),  # 3 (same key as 2: id decides)
            new(4, queue="b", priority=1, run_at=now),  # 4
            new(5, queue="c", priority=100, run_at=now - 1000),  # 5
        ]
    )
    order = [j.id for j in adapter.claim(W1, None, 100)]
    assert order == [ids[4], ids[2], ids[3], ids[1], ids[0], ids[5]]


def test_claim_order_one_at_a_time_matches_a_batch(adapter: Adapter, clock: FakeClock) -> None:
    now = clock.now()
    specs = [("ab"[i % 2], 1 + (i * 7) % 3, now - i % 4) for i in range(9)]
    ids = adapter.enqueue_many(
        [new(i, queue=q, priority=p, run_at=r) for i, (q, p, r) in enumerate(specs)]
    )
    expected = [
        job_id
        for _, _, job_id in sorted((p, r, j) for (_, p, r), j in zip(specs, ids, strict=True))
    ]
    assert [claim_one(adapter, queues=["a", "b"]).id for _ in ids] == expected
    assert adapter.claim(W1, ["a", "b"], 1) == []


def test_queue_filter_none_means_all_and_a_list_means_those(adapter: Adapter) -> None:
    a, b, c = (adapter.enqueue(new(i, queue=q)) for i, q in enumerate(["a", "b", "c"]))
    assert adapter.claim(W1, ["nope"], 10) == []
    assert [j.id for j in adapter.claim(W1, ["c"], 10)] == [c]
    assert [j.id for j in adapter.claim(W1, ["a", "b"], 10)] == [a, b]
    d = adapter.enqueue(new(3, queue="d"))
    assert [j.id for j in adapter.claim(W1, None, 10)] == [d]


@pytest.mark.parametrize("queues", [None, ["a", "b"]])
def test_a_limited_claim_takes_the_first_in_order(
    adapter: Adapter, clock: FakeClock, queues: list[str] | None
) -> None:
    """Which jobs a claim takes (not only how it sorts what it took) follows the order."""
    now = clock.now()
    late, early, urgent = adapter.enqueue_many(
        [
            new(0, queue="a", priority=5, run_at=now),
            new(1, queue="b", priority=5, run_at=now - 10),
            new(2, queue="b", priority=4, run_at=now),
        ]
    )
    taken = [[j.id for j in adapter.claim(W1, queues, 1)] for _ in range(3)]
    assert taken == [[urgent], [early], [late]]


def test_claim_limit(adapter: Adapter) -> None:
    ids = adapter.enqueue_many([new(i) for i in range(5)])
    assert [j.id for j in adapter.claim(W1, None, 2)] == ids[:2]
    assert [j.id for j in adapter.claim(W2, None, 2)] == ids[2:4]
    assert [j.id for j in adapter.claim(W1, None, 2)] == ids[4:]
    assert adapter.claim(W1, None, 2) == []


def test_run_at_is_never_early(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.enqueue(new(run_at=clock.now() + 30))
    assert adapter.get(job_id).state == "scheduled"  # type: ignore[union-attr]
    assert not adapter.has_ready(None)
    assert adapter.claim(W1, None, 10) == []
    clock.advance(29.999)
    assert adapter.claim(W1, None, 10) == []
    clock.advance(0.001)  # exactly run_at: due
    assert adapter.has_ready(None)
    assert adapter.get(job_id).state == "ready"  # type: ignore[union-attr]
    assert claim_one(adapter).id == job_id


def test_claim_locks_and_increments_attempts(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.enqueue(new(7, queue="q", priority=3, max_attempts=4))
    job = claim_one(adapter)
    assert (job.id, job.queue, job.priority, job.attempts, job.max_attempts) == (
        job_id,
        "q",
        3,
        1,
        4,
    )
    assert (job.locked_by, job.lock_token, job.locked_at) == (W1.name, W1.token, clock.now())
    assert json.loads(job.handler)["args"] == [7]
    row = adapter.get(job_id)
    assert row is not None
    assert (row.state, row.attempts, row.locked_by, row.locked_at) == (
        "running",
        1,
        W1.name,
        clock.now(),
    )
    assert adapter.claim(W2, None, 10) == []  # a locked job is nobody else's


# -- outcomes -----------------------------------------------------------------------------------
def test_success_deletes_by_default(adapter: Adapter) -> None:
    job_id = adapter.enqueue(new())
    assert succeed(adapter, claim_one(adapter)) is True
    assert adapter.get(job_id) is None


def test_success_kept_clears_lock_run_at_and_last_error(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.enqueue(new())
    assert err(adapter, claim_one(adapter), "ValueError: first try", clock.now())
    assert adapter.get(job_id).last_error == "ValueError: first try"  # type: ignore[union-attr]
    job = claim_one(adapter)
    assert job.attempts == 2
    clock.advance(3)
    assert succeed(adapter, job, delete=False) is True
    row = adapter.get(job_id)
    assert row is not None
    assert row.state == "succeeded"
    assert (row.locked_at, row.locked_by, row.run_at, row.last_error, row.failed_at) == (None,) * 5
    assert row.attempts == 2
    assert row.updated_at == clock.now()
    assert adapter.claim(W1, None, 10) == []  # a succeeded row is never run again


def test_error_sets_run_at_and_last_error_and_unlocks(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.enqueue(new())
    job = claim_one(adapter)
    error = "ValueError: boom\n\nTraceback (most recent call last): ..."
    assert err(adapter, job, error, clock.now() + 16) is True
    row = adapter.get(job_id)
    assert row is not None
    assert (row.state, row.run_at, row.last_error) == ("scheduled", clock.now() + 16, error)
    assert (row.locked_at, row.locked_by, row.failed_at, row.attempts) == (None, None, None, 1)
    clock.advance(15.5)
    assert adapter.claim(W1, None, 1) == []
    clock.advance(0.5)
    assert claim_one(adapter).attempts == 2


def test_failure_sets_failed_at_clears_run_at_and_is_never_claimed(
    adapter: Adapter, clock: FakeClock
) -> None:
    job_id = adapter.enqueue(new())
    clock.advance(5)
    assert fail(adapter, claim_one(adapter), "ValueError: last") is True
    row = adapter.get(job_id)
    assert row is not None
    assert (row.state, row.failed_at, row.run_at, row.last_error) == (
        "failed",
        clock.now(),
        None,
        "ValueError: last",
    )
    assert (row.locked_at, row.locked_by) == (None, None)
    clock.advance(10**8)
    assert adapter.claim(W1, None, 10) == []
    assert not adapter.has_ready(None)
    assert adapter.next_run_at(None) is None


def test_failure_delete_removes_the_row(adapter: Adapter) -> None:
    job_id = adapter.enqueue(new())
    assert fail(adapter, claim_one(adapter), "x", delete=True) is True
    assert adapter.get(job_id) is None


def test_release_gives_the_attempt_back(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.enqueue(new())
    job = claim_one(adapter)
    assert adapter.record([Outcome(job, "released")])[0] == [True]
    row = adapter.get(job_id)
    assert row is not None
    assert (row.state, row.attempts, row.locked_by, row.locked_at) == ("ready", 0, None, None)
    again = claim_one(adapter, W2)
    assert (again.id, again.attempts) == (job_id, 1)


def test_record_writes_a_batch_and_reports_each(adapter: Adapter, clock: FakeClock) -> None:
    ids = adapter.enqueue_many([new(i) for i in range(3)])
    a, b, c = adapter.claim(W1, None, 3)
    written, _ = adapter.record(
        [
            Outcome(a, "succeeded", delete=True),
            Outcome(b, "errored", error="E", retry_at=clock.now() + 1),
            Outcome(c, "failed", error="F"),
        ]
    )
    assert written == [True, True, True]
    assert adapter.get(ids[0]) is None
    assert adapter.get(ids[1]).state == "scheduled"  # type: ignore[union-attr]
    assert adapter.get(ids[2]).state == "failed"  # type: ignore[union-attr]
    assert adapter.record([])[0] == []


# -- workers: names, liveness, rescue ------------------------------------------------------------
# Each rule of worker identity, one test each. `procs` is a fake process table; `here` observes
# from this machine (same boot and PID namespace as the workers unless a test says otherwise).
@pytest.fixture
def procs() -> Processes:
    return Processes()


def rescued_by_w2(
    adapter: Adapter, clock: FakeClock, procs: Processes, **w1_options: object
) -> tuple[int, ClaimedJob, ClaimedJob]:
    """w1 claims a job and goes silent past its own deadline; w2 rescues it and claims it."""
    w1 = register(adapter, procs, worker(procs, **w1_options)).worker  # type: ignore[arg-type]
    w2 = register(adapter, procs, worker(procs, "host/litejobs-worker.*.2")).worker
    job_id = adapter.enqueue(new())
    stale = claim_one(adapter, w1)
    clock.advance(w1.stale_after + 1)
    adapter.heartbeat(w2)
    result = adapter.rescue(procs.observer())
    assert (result.released, result.failed, result.workers) in (
        (1, 0, (w1.name,)),
        (0, 1, (w1.name,)),
    )
    if result.failed:
        return job_id, stale, stale
    fresh = claim_one(adapter, w2)
    assert (fresh.id, fresh.attempts) == (job_id, 2)
    return job_id, stale, fresh


def test_a_late_outcome_does_not_touch_a_rescued_job(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    job_id, stale, fresh = rescued_by_w2(adapter, clock, procs)
    assert succeed(adapter, stale) is False
    assert succeed(adapter, stale, delete=False) is False
    assert err(adapter, stale, "late error", clock.now() + 1) is False
    assert fail(adapter, stale, "late failure") is False
    assert adapter.record([Outcome(stale, "released")])[0] == [False]
    row = adapter.require(job_id)
    assert (row.state, row.lock_token, row.attempts) == ("running", fresh.lock_token, 2)
    assert row.last_error is not None and "late" not in row.last_error
    assert "lost: worker host/litejobs-worker.*.1 stopped during attempt 1" in row.last_error
    assert err(adapter, fresh, "ValueError: w2", clock.now() + 16) is True
    assert adapter.require(job_id).last_error == "ValueError: w2"


def test_fencing_holds_when_the_same_name_reclaims_after_a_retry(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    """A person retried the job after a rescue failed it; the *same name*, in a new process,
    holds it at the same attempt number again: the token and claim time tell them apart."""
    paused = register(adapter, procs, worker(procs, max_attempts=1)).worker
    job_id = adapter.enqueue(new())
    stale = claim_one(adapter, paused)  # a process that is paused, not dead
    clock.advance(61)
    assert adapter.rescue(procs.observer()).failed == 1  # its last attempt: failed
    assert adapter.retry(job_id)
    successor = register(adapter, procs, worker(procs, paused.name)).worker
    fresh = claim_one(adapter, successor)
    assert (fresh.locked_by, fresh.attempts) == (stale.locked_by, stale.attempts)
    assert succeed(adapter, stale) is False  # the paused predecessor wakes up: refused
    assert err(adapter, stale, "late", retry_at=clock.now()) is False
    row = adapter.require(job_id)
    assert (row.state, row.lock_token, row.attempts) == ("running", successor.token, 1)
    assert succeed(adapter, fresh) is True


def test_fencing_holds_when_a_clock_set_back_repeats_the_claim_instant(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    """The wall clock is set back (NTP step, restored snapshot) to the very instant of a paused
    worker's claim; a person retried the job after a rescue failed it; another worker claims it
    at that instant, at the same attempt number. Claim time and attempts now match: only the
    lock token tells the two claims apart."""
    paused = register(adapter, procs, worker(procs, max_attempts=1)).worker
    job_id = adapter.enqueue(new())
    stale = claim_one(adapter, paused)
    clock.advance(61)  # silent past its deadline on the monotonic clock
    assert adapter.rescue(procs.observer()).failed == 1
    assert adapter.retry(job_id)
    clock.jump(-61)  # the wall clock is back at the claim's instant
    other = register(adapter, procs, worker(procs)).worker
    fresh = claim_one(adapter, other)
    assert (fresh.locked_at, fresh.stored_attempts) == (stale.locked_at, stale.stored_attempts)
    assert succeed(adapter, stale) is False  # the paused worker wakes up: refused
    assert succeed(adapter, stale, delete=False) is False
    assert err(adapter, stale, "late", retry_at=clock.now()) is False
    assert fail(adapter, stale, "late") is False
    row = adapter.require(job_id)
    assert (row.state, row.lock_token, row.attempts) == ("running", other.token, 1)
    assert succeed(adapter, fresh) is True


def test_a_live_name_is_never_taken_and_nothing_is_released(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    """A newcomer wanting a live worker's name (a second runner, an in-process workoff) is
    refused in the same transaction as the check; the live worker's job stays its own."""
    from litejobs.errors import WorkerNameTaken

    live = register(adapter, procs, worker(procs)).worker
    job_id = adapter.enqueue(new())
    claim_one(adapter, live)
    clock.advance(30)
    with pytest.raises(WorkerNameTaken, match=r"host/litejobs-worker\.\*\.1 \(pid \d+\)"):
        register(adapter, procs, worker(procs, live.name))
    row = adapter.require(job_id)
    assert (row.state, row.lock_token) == ("running", live.token)
    assert [w.token for w in adapter.workers()] == [live.token]


def test_a_newcomer_gets_the_first_free_name(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    live = register(adapter, procs, worker(procs, "host/w.0")).worker
    dead = register(adapter, procs, worker(procs, "host/w.1")).worker
    procs.kill(dead.pid)
    names = ["host/w.0", "host/w.1", "host/w.2"]
    got = adapter.register_worker(worker(procs, ""), names, procs.observer())
    assert got.worker.name == "host/w.1" and got.rescued.workers == ("host/w.1",)
    again = adapter.register_worker(worker(procs, ""), names, procs.observer())
    assert again.worker.name == "host/w.2"
    assert sorted(w.name for w in adapter.workers()) == names
    assert live.name == "host/w.0"


def test_a_dead_predecessor_of_the_same_name_is_rescued_at_once(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    """Same-name reclaim: the old process is provably gone (same machine, pid gone), so its
    job is ready again immediately, its attempt counted; another name's job is untouched."""
    old = register(adapter, procs, worker(procs)).worker
    other = register(adapter, procs, worker(procs, "host/litejobs-worker.*.2")).worker
    mine, theirs = adapter.enqueue(new(1)), adapter.enqueue(new(2))
    stale = claim_one(adapter, old)
    claim_one(adapter, other)
    procs.kill(old.pid)
    clock.advance(2)
    got = register(adapter, procs, worker(procs, old.name))
    assert (got.rescued.released, got.rescued.job_ids) == (1, (mine,))
    row = adapter.require(mine)
    assert (row.state, row.lock_token, row.attempts, row.run_at) == ("ready", None, 1, clock.now())
    assert row.last_error == f"restarted: worker {old.name} stopped during attempt 1"
    assert adapter.require(theirs).lock_token == other.token
    assert succeed(adapter, stale) is False
    new_claim = claim_one(adapter, got.worker)
    assert new_claim.attempts == 2 and succeed(adapter, new_claim) is True


def test_a_reused_pid_is_not_the_worker_that_held_it(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    old = register(adapter, procs, worker(procs)).worker
    adapter.enqueue(new())
    claim_one(adapter, old)
    procs.reuse(old.pid)  # died; a newer process got its pid
    assert adapter.rescue(procs.observer()).released == 1


def test_a_pid_in_another_pid_namespace_proves_nothing(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    """A container on this machine: its pids mean nothing here, only its silence counts
    (measured on the shared monotonic clock)."""
    boxed = register(adapter, procs, worker(procs, host=CONTAINER)).worker
    adapter.enqueue(new())
    claim_one(adapter, boxed)
    procs.kill(boxed.pid)  # not visible from here: must not matter
    assert not adapter.rescue(procs.observer())
    clock.advance(61)
    assert adapter.rescue(procs.observer()).released == 1


def test_each_worker_is_judged_by_its_own_deadline(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    """Groups with different settings: a slow group's worker silent for 20 s is alive (its
    own limit is 60 s), whoever looks; a fast group's worker silent for 6 s is gone."""
    slow = register(adapter, procs, worker(procs, "host/slow.0", stale_after=60)).worker
    fast = register(adapter, procs, worker(procs, "host/fast.0", stale_after=5)).worker
    slow_job, fast_job = adapter.enqueue(new(1)), adapter.enqueue(new(2))
    claim_one(adapter, slow)
    claim_one(adapter, fast)
    clock.advance(6)
    assert adapter.rescue(procs.observer()).job_ids == (fast_job,)
    clock.advance(14)  # slow silent 20 s
    assert not adapter.rescue(procs.observer())
    assert adapter.require(slow_job).lock_token == slow.token
    clock.advance(41)
    assert adapter.rescue(procs.observer()).job_ids == (slow_job,)


def test_a_heartbeating_worker_keeps_its_job_across_a_wall_clock_jump(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    """The wall clock is set forward by three days: a worker on this machine is judged by the
    monotonic clock, so it is not silent; its row is neither pruned nor its job taken."""
    live = register(adapter, procs, worker(procs)).worker
    job_id = adapter.enqueue(new())
    claim_one(adapter, live)
    clock.advance(30)
    clock.jump(3 * 86_400)
    assert not adapter.rescue(procs.observer())
    adapter.heartbeat(live)
    clock.advance(59)
    assert not adapter.rescue(procs.observer())
    assert adapter.require(job_id).lock_token == live.token
    assert [w.token for w in adapter.workers()] == [live.token]


def test_a_worker_on_another_machine_is_judged_by_its_declared_deadline(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    remote = register(adapter, procs, worker(procs, "other/w.0", host=ELSEWHERE)).worker
    job_id = adapter.enqueue(new())
    claim_one(adapter, remote)
    procs.kill(remote.pid)  # a pid on another machine proves nothing here
    clock.advance(59)
    assert not adapter.rescue(procs.observer())
    adapter.heartbeat(remote)
    clock.advance(59)
    assert not adapter.rescue(procs.observer())
    clock.advance(2)  # its deadline: last heartbeat + its own 60 s
    assert adapter.rescue(procs.observer()).job_ids == (job_id,)


def test_a_deleted_worker_row_comes_back_with_the_next_heartbeat(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    """A row deleted by hand is no death certificate: an observer adopts the orphaned lock with
    a stand-in row (the grace, on its monotonic clock, so a wall-clock jump changes nothing);
    the worker's next heartbeat makes the row its own again, and its job stays its own."""
    live = register(adapter, procs, worker(procs)).worker
    job_id = adapter.enqueue(new())
    claim_one(adapter, live)
    delete_row(adapter, live)
    observer = procs.observer(orphan_grace=600)
    assert not adapter.rescue(observer)
    [stand_in] = adapter.workers()
    assert (stand_in.token, stand_in.name, stand_in.pid, stand_in.stale_after) == (
        live.token,
        live.name,
        0,
        600,
    )
    clock.jump(10 * 86_400)
    clock.advance(9)
    assert not adapter.rescue(observer)
    assert adapter.heartbeat(live) is True  # the stand-in becomes its own row again
    [row] = adapter.workers()
    assert (row.pid, row.stale_after) == (live.pid, live.stale_after)
    clock.advance(3600)
    adapter.heartbeat(live)
    assert not adapter.rescue(observer)
    assert adapter.require(job_id).lock_token == live.token
    delete_row(adapter, live)
    assert adapter.heartbeat(live) is False  # re-created


def test_an_orphaned_lock_is_rescued_after_the_grace(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    """A lock whose worker row is gone and never comes back (an older litejobs' lock, a
    deleted row of a dead worker) is rescued once its stand-in row expires -- also when each
    look is made by a different observer (cron workoffs), since the stand-in is stored."""
    gone = worker(procs)  # never registered
    job_id = adapter.enqueue(new())
    claim_one(adapter, gone)
    assert not adapter.rescue(procs.observer(orphan_grace=300))
    clock.advance(299)
    assert not adapter.rescue(procs.observer(orphan_grace=5))  # the first adopter's rules hold
    clock.advance(2)
    assert adapter.rescue(procs.observer()).job_ids == (job_id,)
    assert adapter.workers() == []


def test_rescue_follows_the_holders_rules_for_a_last_attempt(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    """A job on its last attempt when its worker died fails (and is deleted when the worker's
    group deletes failed jobs); a job's own max_attempts wins over the group's."""
    keeper = register(adapter, procs, worker(procs, "host/a.0", max_attempts=1)).worker
    deleter = register(
        adapter, procs, worker(procs, "host/b.0", max_attempts=1, delete_failed=True)
    ).worker
    kept_id, deleted_id = adapter.enqueue(new(1)), adapter.enqueue(new(2))
    own = adapter.enqueue(new(3, max_attempts=5))
    claim_one(adapter, keeper)
    claim_one(adapter, deleter)
    claim_one(adapter, keeper)
    procs.kill(keeper.pid)
    procs.kill(deleter.pid)
    result = adapter.rescue(procs.observer(max_attempts=99))
    assert (result.released, result.failed) == (1, 2)
    row = adapter.require(kept_id)
    assert (row.state, row.run_at) == ("failed", None) and row.failed_at == clock.now()
    assert adapter.get(deleted_id) is None
    assert adapter.require(own).state == "ready"


def test_reserved_jobs_are_not_charged_and_go_back_uncounted_when_the_worker_dies(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    """A batch claim starts its first job (attempt counted) and reserves the rest (not counted).
    If the worker dies, the reserved ones go back with no attempt charged -- even jobs with
    max_attempts=1 -- keep their place (run_at), and are marked suspect (one may have been
    running): their next start is charged before they run."""
    w = register(adapter, procs, worker(procs, max_attempts=1)).worker
    ids = adapter.enqueue_many([new(i, max_attempts=1) for i in range(4)])
    first, *rest = adapter.claim(w, None, 4)
    assert (first.id, first.charged, first.attempts) == (ids[0], True, 1)
    assert [(j.charged, j.attempts) for j in rest] == [(False, 1)] * 3
    assert [adapter.require(i).state for i in ids] == ["running"] + ["reserved"] * 3
    assert [adapter.require(i).attempts for i in ids] == [1, 0, 0, 0]
    procs.kill(w.pid)
    result = adapter.rescue(procs.observer())
    assert (result.released, result.failed, result.returned) == (0, 1, 3)
    assert [adapter.require(i).state for i in ids] == ["failed", "ready", "ready", "ready"]
    assert [adapter.require(i).attempts for i in ids[1:]] == [0, 0, 0]
    again = adapter.claim(register(adapter, procs, worker(procs)).worker, None, 3)
    # The first is charged by the claim itself; the reserved ones will be charged at start.
    assert [(j.id, j.charged, j.suspect) for j in again] == [
        (ids[1], True, False),
        (ids[2], False, True),
        (ids[3], False, True),
    ]


def test_starting_a_reserved_job_charges_it_and_is_fenced(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    w = register(adapter, procs, worker(procs)).worker
    adapter.enqueue_many([new(i) for i in range(3)])
    first, second, third = adapter.claim(w, None, 3)
    written, started = adapter.record([Outcome(first, "succeeded", delete=True)], second)
    assert written == [True] and started is not None and started.charged
    row = adapter.require(second.id)
    assert (row.state, row.attempts) == ("running", 1)
    assert succeed(adapter, second) is False  # the uncharged claim no longer matches
    assert succeed(adapter, started) is True
    # A reserved job recorded without being started first is charged by its outcome.
    assert err(adapter, third, "E", clock.now() + 1) is True
    assert adapter.require(third.id).attempts == 1
    # A start refused (the job was taken back) returns None.
    assert adapter.record([], third) == ([], None)


def test_give_back_returns_everything_unstarted(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    w = register(adapter, procs, worker(procs)).worker
    ids = adapter.enqueue_many([new(i) for i in range(3)])
    adapter.claim(w, None, 3)
    assert adapter.give_back(w) == 3
    assert [(adapter.require(i).state, adapter.require(i).attempts) for i in ids] == [
        ("ready", 0)
    ] * 3


def test_deregister_rescues_what_the_worker_still_holds(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    """A stop that could not wait: the running job is released at once (its attempt counts),
    reserved ones go back uncounted, and the row is gone."""
    w = register(adapter, procs, worker(procs)).worker
    ids = adapter.enqueue_many([new(i) for i in range(2)])
    adapter.claim(w, None, 2)
    result = adapter.deregister_worker(w)
    assert (result.released, result.returned) == (1, 1)
    assert [adapter.require(i).attempts for i in ids] == [1, 0]
    assert "stopped: worker" in (adapter.require(ids[0]).last_error or "")
    assert adapter.workers() == []


def test_worker_rows_carry_identity_and_deadline(
    adapter: Adapter, clock: FakeClock, procs: Processes
) -> None:
    w = register(adapter, procs, worker(procs, stale_after=45, max_attempts=7)).worker
    clock.advance(5)
    adapter.heartbeat(w)
    [row] = adapter.workers()
    assert (row.token, row.name, row.host, row.boot_id, row.pid) == (
        w.token,
        w.name,
        "host",
        "boot-here",
        w.pid,
    )
    assert (row.heartbeat_at, row.expires_at, row.beat_mono) == (
        clock.now(),
        clock.now() + 45,
        clock.monotonic(),
    )
    assert (row.stale_after, row.max_attempts, row.delete_failed) == (45, 7, False)


# -- unique jobs --------------------------------------------------------------------------------
def test_unique_key_returns_the_active_job(adapter: Adapter, clock: FakeClock) -> None:
    first = adapter.enqueue(new(1, unique_key="user:42", run_at=clock.now() + 60))
    assert adapter.enqueue(new(2, unique_key="user:42")) == first  # scheduled
    clock.advance(60)
    assert adapter.enqueue(new(3, unique_key="user:42")) == first  # ready
    job = claim_one(adapter)
    assert adapter.enqueue(new(4, unique_key="user:42")) == first  # running
    assert adapter.enqueue(new(5, unique_key="user:7")) != first
    assert adapter.enqueue_many([new(6, unique_key="user:42")]) == [first]
    assert json.loads(job.handler)["args"] == [1]  # the twin did not overwrite it
    assert succeed(adapter, job)
    second = adapter.enqueue(new(7, unique_key="user:42"))
    assert second != first
    assert adapter.get(second).unique_key == "user:42"  # type: ignore[union-attr]


def test_unique_key_is_free_again_after_failure_or_kept_success(adapter: Adapter) -> None:
    failed = adapter.enqueue(new(unique_key="k"))
    fail(adapter, claim_one(adapter), "x")
    kept = adapter.enqueue(new(unique_key="k"))
    assert kept != failed
    succeed(adapter, claim_one(adapter), delete=False)
    assert adapter.enqueue(new(unique_key="k")) not in (failed, kept)


# -- administration -----------------------------------------------------------------------------
def test_retry_makes_a_failed_job_ready_now_with_fresh_attempts(
    adapter: Adapter, clock: FakeClock
) -> None:
    job_id = adapter.enqueue(new(max_attempts=1))
    fail(adapter, claim_one(adapter), "x")
    clock.advance(10)
    assert adapter.retry(job_id) is True
    row = adapter.get(job_id)
    assert row is not None
    assert (row.state, row.failed_at, row.run_at, row.attempts) == ("ready", None, clock.now(), 0)
    assert claim_one(adapter).attempts == 1
    assert adapter.retry(10**9) is False


def test_retry_makes_a_scheduled_job_ready_now(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.enqueue(new(run_at=clock.now() + 3600))
    assert adapter.retry(job_id) is True
    assert adapter.get(job_id).run_at == clock.now()  # type: ignore[union-attr]
    assert claim_one(adapter).id == job_id


def test_retry_failed_by_queue(adapter: Adapter) -> None:
    ids = adapter.enqueue_many([new(i, queue=q) for i, q in enumerate(["a", "a", "b"])])
    for job in adapter.claim(W1, None, 3):
        fail(adapter, job, "x")
    assert adapter.retry_failed("a") == 2
    assert [adapter.get(i).state for i in ids] == ["ready", "ready", "failed"]  # type: ignore[union-attr]
    assert adapter.retry_failed() == 1
    assert adapter.retry_failed() == 0


def test_delete(adapter: Adapter) -> None:
    job_id = adapter.enqueue(new())
    assert adapter.delete(job_id) is True
    assert adapter.delete(job_id) is False
    assert adapter.get(job_id) is None


@pytest.fixture
def mixed(adapter: Adapter, clock: FakeClock) -> Iterator[Adapter]:
    """Queue a: 2 ready + 1 failed; queue b: 1 scheduled + 1 running."""
    adapter.enqueue_many([new(0, queue="a"), new(1, queue="a"), new(2, queue="a")])
    fail(adapter, claim_one(adapter, queues=["a"]), "x")
    adapter.enqueue(new(3, queue="b", run_at=clock.now() + 50))
    adapter.enqueue(new(4, queue="b"))
    claim_one(adapter, queues=["b"])
    yield adapter


def test_counts_and_list_jobs(mixed: Adapter, clock: FakeClock) -> None:
    assert mixed.counts() == {
        "a": {"ready": 2, "failed": 1},
        "b": {"scheduled": 1, "running": 1},
    }
    assert [r.state for r in mixed.list_jobs()] == [
        "failed",
        "ready",
        "ready",
        "scheduled",
        "running",
    ]
    assert [r.args for r in mixed.list_jobs(queue="b")] == [[3], [4]]
    assert [r.args for r in mixed.list_jobs(state="ready")] == [[1], [2]]
    assert [r.args for r in mixed.list_jobs(queue="a", state="failed")] == [[0]]
    assert len(mixed.list_jobs(limit=2)) == 2
    assert mixed.list_jobs(queue="nope") == []
    first = mixed.list_jobs(limit=1)[0]
    assert (first.name, first.path, first.queue, first.priority) == (
        "record",
        "tests.sample_jobs:record",
        "a",
        50,
    )
    clock.advance(50)  # the scheduled job is due: inspection calls it ready
    assert mixed.counts()["b"] == {"ready": 1, "running": 1}
    assert [r.args for r in mixed.list_jobs(state="ready", queue="b")] == [[3]]


def test_clear_all_queue_and_failed_only(mixed: Adapter) -> None:
    assert mixed.clear(failed_only=True) == 1
    assert mixed.clear(queue="a") == 2
    assert mixed.counts() == {"b": {"scheduled": 1, "running": 1}}
    assert mixed.clear() == 2
    assert mixed.counts() == {}
    assert mixed.clear() == 0


def test_clear_failed_only_in_one_queue(mixed: Adapter) -> None:
    assert mixed.clear(queue="b", failed_only=True) == 0
    assert mixed.clear(queue="a", failed_only=True) == 1
    assert mixed.counts()["a"] == {"ready": 2}


def test_oldest_ready_at_and_next_run_at(adapter: Adapter, clock: FakeClock) -> None:
    now = clock.now()
    assert adapter.oldest_ready_at() is None
    assert adapter.next_run_at(None) is None
    adapter.enqueue(new(0, queue="a", run_at=now - 30))
    adapter.enqueue(new(1, queue="b", run_at=now - 5))
    adapter.enqueue(new(2, queue="a", run_at=now + 20))
    adapter.enqueue(new(3, queue="b", run_at=now + 10))
    assert adapter.oldest_ready_at() == now - 30
    assert adapter.next_run_at(None) == now + 10
    assert adapter.next_run_at(["a"]) == now + 20
    assert adapter.next_run_at(["c"]) is None
    claim_one(adapter, queues=["a"])  # a running job is not ready
    assert adapter.oldest_ready_at() == now - 5


def test_schedule_many_returns_ids_in_order(adapter: Adapter, clock: FakeClock) -> None:
    rows = [new(i, queue=f"q{i % 3}", priority=1 + i, run_at=clock.now() + i) for i in range(50)]
    ids = adapter.enqueue_many(rows)
    assert len(set(ids)) == 50
    for i, job_id in enumerate(ids):
        record = adapter.get(job_id)
        assert record is not None
        assert (record.args, record.queue, record.priority, record.run_at, record.attempts) == (
            [i],
            f"q{i % 3}",
            1 + i,
            clock.now() + i,
            0,
        )
    assert adapter.enqueue_many([]) == []


def test_prune_deletes_only_old_finished_rows(adapter: Adapter, clock: FakeClock) -> None:
    ids = adapter.enqueue_many([new(i) for i in range(4)])
    a, b, c, _ = adapter.claim(W1, None, 4)
    succeed(adapter, a, delete=False)
    fail(adapter, b, "x")
    clock.advance(100)
    succeed(adapter, c, delete=False)  # finished, but recent
    late = adapter.enqueue(new(9))  # pending: never pruned
    assert adapter.prune(clock.now() - 50) == 2
    assert [adapter.get(i) is not None for i in ids] == [False, False, True, True]
    assert adapter.get(late) is not None


def test_require_and_get_of_a_missing_job(adapter: Adapter) -> None:
    from litejobs.errors import JobNotFoundError

    assert adapter.get(12345) is None
    with pytest.raises(JobNotFoundError, match="no job with id 12345"):
        adapter.require(12345)


# -- a property: the claim order ------------------------------------------------------------------
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(
    jobs=st.lists(
        st.tuples(
            st.sampled_from([1, 2, 50, 100]),  # priority: few values, so ties are common
            st.integers(-3, 3),  # run_at offset (s); > 0 is not due; ties leave it to the id
            st.sampled_from(["a", "b", "c"]),
        ),
        min_size=1,
        max_size=25,
    ),
    queues=st.one_of(
        st.none(), st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, unique=True)
    ),
    limit=st.integers(1, 30),
)
@example(jobs=[(1, 0, "a"), (1, -1, "b")], queues=None, limit=1)  # run_at beats id
@example(jobs=[(1, 0, "a"), (1, -1, "b")], queues=["a", "b"], limit=1)
@example(jobs=[(2, -3, "a"), (1, 0, "b"), (1, 0, "c"), (2, 3, "a")], queues=None, limit=2)
def test_claim_order_property(
    adapter: Adapter,
    clock: FakeClock,
    jobs: list[tuple[int, int, str]],
    queues: list[str] | None,
    limit: int,
) -> None:
    """Claims return exactly the first ``limit`` eligible jobs by ``(priority, run_at, id)``."""
    adapter.clear()
    now = clock.now()
    ids = adapter.enqueue_many(
        [new(i, priority=p, run_at=now + off, queue=q) for i, (p, off, q) in enumerate(jobs)]
    )
    eligible = sorted(
        (p, now + off, job_id)
        for job_id, (p, off, q) in zip(ids, jobs, strict=True)
        if off <= 0 and (queues is None or q in queues)
    )
    expected = [job_id for _, _, job_id in eligible]
    assert [j.id for j in adapter.claim(W1, queues, limit)] == expected[:limit]
    rest = []
    while batch := adapter.claim(W1, queues, 1):
        rest.append(batch[0].id)
    assert rest == expected[limit:]


# -- batches: later.many's runs ------------------------------------------------------------------
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def _stored_handlers(adapter: Adapter, ids: list[int]) -> list[object]:
    """The stored handler text, byte for byte (both adapters store a run with one statement)."""
    from litejobs import SQLiteAdapter
    from litejobs.adapters.postgres import PostgresAdapter

    if isinstance(adapter, SQLiteAdapter):
        conn = adapter.connection
        return [
            conn.execute("SELECT handler FROM background_jobs WHERE id = ?", (i,)).fetchone()[0]  # type: ignore[index]
            for i in ids
        ]
    assert isinstance(adapter, PostgresAdapter)
    with adapter.connection.cursor() as cur:
        sql = f"SELECT handler FROM {adapter._s}.background_jobs WHERE id = %s"
        return [cur.execute(sql, (i,)).fetchone()[0] for i in ids]  # type: ignore[index]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from(["record", "boom", "tests.sample_jobs:record_all"]),
            st.none() | st.lists(JSON_VALUES, max_size=3) | st.tuples(JSON_VALUES),
        ),
        max_size=12,
    ),
    wait=st.sampled_from([None, 0, 30]),
)
def test_a_job_batch_stores_what_one_by_one_scheduling_stores(
    adapter: Adapter, clock: FakeClock, calls: list[tuple[str, object]], wait: int | None
) -> None:
    """``later.many`` validates runs of one job together and SQLite stores a run with one
    statement (``json_each`` splits the arguments): every row, its handler text included, must
    be what scheduling the same jobs one at a time stores, in the same order."""
    from litejobs.scheduling import build_job_batch, build_new_job
    from tests import sample_jobs

    # Jobs that take any arguments: this is about what is stored, not about signatures.
    refs = {"record": sample_jobs.record_all, "boom": sample_jobs.ignore_all}
    items = [(refs.get(name, name), args) for name, args in calls]
    adapter.clear()
    now = clock.now()
    batch = build_job_batch(items, now=now, wait=wait, priority=7)  # type: ignore[arg-type]
    many = adapter.enqueue_many(batch)
    single = [
        adapter.enqueue(build_new_job(job, args, now=now, wait=wait, priority=7))  # type: ignore[arg-type]
        for job, args in items
    ]
    assert len(many) == len(items) and many == sorted(set(many))
    assert _stored_handlers(adapter, many) == _stored_handlers(adapter, single)

    def row(job_id: int) -> tuple[object, ...]:
        r = adapter.require(job_id)
        return (r.state, r.queue, r.priority, r.run_at, r.max_attempts, r.attempts, r.unique_key)

    assert [row(i) for i in many] == [row(i) for i in single]
    assert list(batch) == [build_new_job(j, a, now=now, wait=wait, priority=7) for j, a in items]  # type: ignore[arg-type]


@pytest.mark.parametrize("depth", [1200, 20_000])
def test_a_run_too_deep_for_the_json_parser_is_stored_row_by_row(
    adapter: Adapter, clock: FakeClock, depth: int
) -> None:
    """SQLite's JSON parser stops at 1000 levels, PostgreSQL's at its stack depth (~10k);
    Python encodes deeper with a raised recursion limit. Such a run is stored row by row,
    with the same handler text."""
    import sys

    from litejobs.scheduling import build_job_batch, build_new_job
    from tests import sample_jobs

    deep: list[object] = []
    for _ in range(depth):
        deep = [deep]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        now = clock.now()
        items = [(sample_jobs.record, [deep]), (sample_jobs.record, [1])]
        ids = adapter.enqueue_many(build_job_batch(items, now=now))
        expected = [build_new_job(job, args, now=now).handler for job, args in items]
        assert _stored_handlers(adapter, ids) == expected
    finally:
        sys.setrecursionlimit(limit)


def test_arguments_nested_past_the_recursion_limit_are_a_serialization_error(
    adapter: Adapter,
) -> None:
    """Not a ``RecursionError`` out of ``later()``: the same typed error as any argument JSON
    cannot hold, one at a time and in a batch; nothing stored."""
    from litejobs import JobManager
    from litejobs.errors import SerializationError
    from tests import sample_jobs

    later = JobManager(adapters={"db": adapter}).create_scheduler()
    deep = sample_jobs.nested(5000)
    with pytest.raises(SerializationError, match="nest too deeply to encode as JSON"):
        later(sample_jobs.record, [deep])
    with pytest.raises(SerializationError, match=r"^item 1 of the batch .*nest too deeply"):
        later.many([(sample_jobs.record, [1]), (sample_jobs.record, [deep])])
    assert adapter.list_jobs() == []


def test_a_batch_error_names_the_first_bad_item(adapter: Adapter) -> None:
    """An argument error in ``later.many`` says which item and which job; the first bad item
    in order is the one reported, as when each item was checked in turn."""
    from litejobs import JobManager
    from litejobs.errors import HandlerNotFoundError, SerializationError
    from tests import sample_jobs

    later = JobManager(adapters={"db": adapter}).create_scheduler()
    ok = (sample_jobs.record, [1])
    with pytest.raises(
        SerializationError,
        match=r"^item 2 of the batch \(tests\.sample_jobs:record\): job arguments must .*set",
    ):
        later.many([ok, ok, (sample_jobs.record, [{6}]), (sample_jobs.record, "abc")])
    with pytest.raises(SerializationError, match=r"^item 1 of the batch .*list of positional"):
        later.many([ok, (sample_jobs.record, "abc"), (sample_jobs.record, [{6}])])
    with pytest.raises(
        SerializationError, match=r"^item 1 of the batch \(tests\.sample_jobs:boom\)"
    ):
        later.many([ok, (sample_jobs.boom, [{6}]), ok])
    with pytest.raises(SerializationError, match=r"^item 1 "):  # before item 2's unknown job
        later.many([ok, (sample_jobs.record, [object()]), ("tests.sample_jobs:nope", [1])])
    with pytest.raises(HandlerNotFoundError):
        later.many([ok, ("tests.sample_jobs:nope", [1]), (sample_jobs.record, [object()])])
    with pytest.raises(SerializationError, match=r"^item 1 "):  # the one-by-one path too
        later.many([ok, (sample_jobs.record, [{6}])], unique=True)
    assert adapter.counts() == {}


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.get(2**70),
        lambda a: a.retry(2**63),
        lambda a: a.delete(-1),
        lambda a: a.cancel(0),
        lambda a: a.get("7"),
        lambda a: a.list_jobs(limit=2**64),
        lambda a: a.list_jobs(limit=-1),
    ],
    ids=["get-huge", "retry-huge", "delete-neg", "cancel-0", "get-text", "list-huge", "list-neg"],
)
def test_ids_and_limits_storage_cannot_hold_are_a_validation_error(
    adapter: Adapter, call: Callable[[Adapter], object]
) -> None:
    """A script calling the adapter directly gets the CLI's words, not the driver's
    ``OverflowError``; nothing is stored or changed."""
    [job_id] = adapter.enqueue_many([new()])
    with pytest.raises(ValidationError, match=r"must be a whole number >= -?\d+ and <="):
        call(adapter)
    assert [j.id for j in adapter.list_jobs()] == [job_id]
