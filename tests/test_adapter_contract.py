"""The storage contract, rule by rule, with exact values (SPEC §3-4, issue 2).

Why: the worker, the CLI and the PostgreSQL adapter all rely on these rules; the state-machine
tests find odd sequences, these pin each rule down one at a time so a failure names the rule it
breaks. Everything goes through the :class:`~litejobs.adapters.base.Adapter` interface and the
``adapter`` fixture (a real SQLite file, and PostgreSQL when ``LITEJOBS_TEST_PG_URL`` is set), so
there is no SQL here; time is a :class:`~litejobs.clock.FakeClock`, so nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, example, given, settings

from litejobs import FakeClock
from litejobs.adapters.base import Adapter, ClaimedJob, NewJob, Outcome

W1 = "host/litejobs-worker.*.1"
W2 = "host/litejobs-worker.*.2"
STALE = 60.0


def new(n: int = 0, **options: object) -> NewJob:
    """A job whose handler carries ``n`` so rows are easy to tell apart."""
    handler = json.dumps({"name": "record", "path": "tests.sample_jobs:record", "args": [n]})
    return NewJob(handler=handler, **options)  # type: ignore[arg-type]


def claim_one(adapter: Adapter, worker: str = W1, queues: list[str] | None = None) -> ClaimedJob:
    jobs = adapter.claim(worker, queues, 1)
    assert len(jobs) == 1, f"expected one claimable job, got {jobs}"
    return jobs[0]


def register(adapter: Adapter, name: str) -> None:
    adapter.register_worker(name, host="host", pid=1, queues="*", max_attempts=24)


# -- pick order and filtering -----------------------------------------------------------------
def test_claim_order_is_priority_then_run_at_then_id_across_queues(
    adapter: Adapter, clock: FakeClock
) -> None:
    now = clock.now()
    ids = adapter.schedule_many(
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
    ids = adapter.schedule_many(
        [new(i, queue=q, priority=p, run_at=r) for i, (q, p, r) in enumerate(specs)]
    )
    expected = [
        job_id
        for _, _, job_id in sorted((p, r, j) for (_, p, r), j in zip(specs, ids, strict=True))
    ]
    assert [claim_one(adapter, queues=["a", "b"]).id for _ in ids] == expected
    assert adapter.claim(W1, ["a", "b"], 1) == []


def test_queue_filter_none_means_all_and_a_list_means_those(adapter: Adapter) -> None:
    a, b, c = (adapter.schedule(new(i, queue=q)) for i, q in enumerate(["a", "b", "c"]))
    assert adapter.claim(W1, ["nope"], 10) == []
    assert [j.id for j in adapter.claim(W1, ["c"], 10)] == [c]
    assert [j.id for j in adapter.claim(W1, ["a", "b"], 10)] == [a, b]
    d = adapter.schedule(new(3, queue="d"))
    assert [j.id for j in adapter.claim(W1, None, 10)] == [d]


@pytest.mark.parametrize("queues", [None, ["a", "b"]])
def test_a_limited_claim_takes_the_first_in_order(
    adapter: Adapter, clock: FakeClock, queues: list[str] | None
) -> None:
    """Which jobs a claim takes (not only how it sorts what it took) follows the order."""
    now = clock.now()
    late, early, urgent = adapter.schedule_many(
        [
            new(0, queue="a", priority=5, run_at=now),
            new(1, queue="b", priority=5, run_at=now - 10),
            new(2, queue="b", priority=4, run_at=now),
        ]
    )
    taken = [[j.id for j in adapter.claim(W1, queues, 1)] for _ in range(3)]
    assert taken == [[urgent], [early], [late]]


def test_claim_limit(adapter: Adapter) -> None:
    ids = adapter.schedule_many([new(i) for i in range(5)])
    assert [j.id for j in adapter.claim(W1, None, 2)] == ids[:2]
    assert [j.id for j in adapter.claim(W2, None, 2)] == ids[2:4]
    assert [j.id for j in adapter.claim(W1, None, 2)] == ids[4:]
    assert adapter.claim(W1, None, 2) == []


def test_run_at_is_never_early(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.schedule(new(run_at=clock.now() + 30))
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
    job_id = adapter.schedule(new(7, queue="q", priority=3, max_attempts=4))
    job = claim_one(adapter)
    assert (job.id, job.queue, job.priority, job.attempts, job.max_attempts) == (
        job_id,
        "q",
        3,
        1,
        4,
    )
    assert (job.locked_by, job.locked_at) == (W1, clock.now())
    assert json.loads(job.handler)["args"] == [7]
    row = adapter.get(job_id)
    assert row is not None
    assert (row.state, row.attempts, row.locked_by, row.locked_at) == (
        "running",
        1,
        W1,
        clock.now(),
    )
    assert adapter.claim(W2, None, 10) == []  # a locked job is nobody else's


# -- outcomes -----------------------------------------------------------------------------------
def test_success_deletes_by_default(adapter: Adapter) -> None:
    job_id = adapter.schedule(new())
    assert adapter.success(claim_one(adapter)) is True
    assert adapter.get(job_id) is None


def test_success_kept_clears_lock_run_at_and_last_error(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.schedule(new())
    assert adapter.error(claim_one(adapter), "ValueError: first try", clock.now())
    assert adapter.get(job_id).last_error == "ValueError: first try"  # type: ignore[union-attr]
    job = claim_one(adapter)
    assert job.attempts == 2
    clock.advance(3)
    assert adapter.success(job, delete=False) is True
    row = adapter.get(job_id)
    assert row is not None
    assert row.state == "succeeded"
    assert (row.locked_at, row.locked_by, row.run_at, row.last_error, row.failed_at) == (None,) * 5
    assert row.attempts == 2
    assert row.updated_at == clock.now()
    assert adapter.claim(W1, None, 10) == []  # a succeeded row is never run again


def test_error_sets_run_at_and_last_error_and_unlocks(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.schedule(new())
    job = claim_one(adapter)
    error = "ValueError: boom\n\nTraceback (most recent call last): ..."
    assert adapter.error(job, error, clock.now() + 16) is True
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
    job_id = adapter.schedule(new())
    clock.advance(5)
    assert adapter.failure(claim_one(adapter), "ValueError: last") is True
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
    job_id = adapter.schedule(new())
    assert adapter.failure(claim_one(adapter), "x", delete=True) is True
    assert adapter.get(job_id) is None


def test_release_gives_the_attempt_back(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.schedule(new())
    job = claim_one(adapter)
    assert adapter.record([Outcome(job, "release")]) == [True]
    row = adapter.get(job_id)
    assert row is not None
    assert (row.state, row.attempts, row.locked_by, row.locked_at) == ("ready", 0, None, None)
    again = claim_one(adapter, W2)
    assert (again.id, again.attempts) == (job_id, 1)


def test_record_writes_a_batch_and_reports_each(adapter: Adapter, clock: FakeClock) -> None:
    ids = adapter.schedule_many([new(i) for i in range(3)])
    a, b, c = adapter.claim(W1, None, 3)
    written = adapter.record(
        [
            Outcome(a, "success", delete=True),
            Outcome(b, "error", error="E", retry_at=clock.now() + 1),
            Outcome(c, "failure", error="F"),
        ]
    )
    assert written == [True, True, True]
    assert adapter.get(ids[0]) is None
    assert adapter.get(ids[1]).state == "scheduled"  # type: ignore[union-attr]
    assert adapter.get(ids[2]).state == "failed"  # type: ignore[union-attr]
    assert adapter.record([]) == []


# -- fencing and recovery -----------------------------------------------------------------------
def rescued(adapter: Adapter, clock: FakeClock) -> tuple[int, ClaimedJob, ClaimedJob]:
    """w1 claims a job and goes silent; after ``STALE`` s it is recovered and w2 claims it."""
    register(adapter, W1)
    job_id = adapter.schedule(new())
    stale = claim_one(adapter, W1)
    clock.advance(STALE + 1)
    register(adapter, W2)  # fresh heartbeat: w2 is alive, w1 is not
    assert adapter.recover_stale(STALE, 24) == (1, 0)
    fresh = claim_one(adapter, W2)
    assert (fresh.id, fresh.attempts) == (job_id, 2)
    return job_id, stale, fresh


def test_stale_success_does_not_touch_a_rescued_job(adapter: Adapter, clock: FakeClock) -> None:
    job_id, stale, fresh = rescued(adapter, clock)
    assert adapter.success(stale) is False
    assert adapter.success(stale, delete=False) is False
    row = adapter.get(job_id)
    assert row is not None
    assert (row.state, row.locked_by, row.attempts) == ("running", W2, 2)
    assert adapter.success(fresh) is True
    assert adapter.get(job_id) is None


def test_stale_error_and_failure_do_not_touch_a_rescued_job(
    adapter: Adapter, clock: FakeClock
) -> None:
    job_id, stale, fresh = rescued(adapter, clock)
    assert adapter.error(stale, "late error", clock.now() + 1) is False
    assert adapter.failure(stale, "late failure") is False
    assert adapter.record([Outcome(stale, "release")]) == [False]
    row = adapter.get(job_id)
    assert row is not None
    assert (row.state, row.locked_by, row.attempts, row.failed_at) == ("running", W2, 2, None)
    assert row.last_error is not None and "late" not in row.last_error
    assert adapter.error(fresh, "ValueError: w2", clock.now() + 16) is True
    assert adapter.get(job_id).last_error == "ValueError: w2"  # type: ignore[union-attr]


def test_fencing_holds_when_a_retry_reset_the_attempts(adapter: Adapter, clock: FakeClock) -> None:
    """A person retried the job after recovery failed it: the new claim has the same attempt
    number as the stale one, so the worker's name is what fences it."""
    register(adapter, W1)
    job_id = adapter.schedule(new(max_attempts=1))
    stale = claim_one(adapter, W1)
    clock.advance(STALE + 1)
    register(adapter, W2)
    assert adapter.recover_stale(STALE, 24) == (0, 1)  # its last attempt: failed
    assert adapter.retry(job_id)
    fresh = claim_one(adapter, W2)
    assert fresh.attempts == stale.attempts == 1
    assert adapter.success(stale) is False
    assert adapter.failure(stale, "late") is False
    row = adapter.get(job_id)
    assert row is not None
    assert (row.state, row.locked_by) == ("running", W2)
    assert adapter.success(fresh) is True


def test_fencing_holds_when_the_same_name_reclaims_after_a_retry(
    adapter: Adapter, clock: FakeClock
) -> None:
    """The ABA case: after a person's retry the *same* worker name holds the job at the same
    attempt number again; only the claim time (``locked_at``) tells the old claim apart."""
    register(adapter, W1)
    job_id = adapter.schedule(new(max_attempts=1))
    stale = claim_one(adapter, W1)  # a W1 process that is paused, not dead
    clock.advance(STALE + 1)
    register(adapter, W2)
    assert adapter.recover_stale(STALE, 24) == (0, 1)  # its last attempt: failed
    assert adapter.retry(job_id)
    clock.advance(1)
    fresh = claim_one(adapter, W1)  # W1's restarted successor takes it again
    assert (fresh.locked_by, fresh.attempts) == (stale.locked_by, stale.attempts)
    assert adapter.success(stale) is False  # the paused predecessor wakes up: refused
    assert adapter.error(stale, "late", retry_at=clock.now()) is False
    row = adapter.get(job_id)
    assert row is not None
    assert (row.state, row.locked_by, row.attempts) == ("running", W1, 1)
    assert adapter.success(fresh) is True


def test_same_worker_name_cannot_fence_an_older_attempt(adapter: Adapter, clock: FakeClock) -> None:
    """A restarted worker reuses its name: the attempt number still tells its claims apart."""
    register(adapter, W1)
    job_id = adapter.schedule(new())
    old = claim_one(adapter, W1)
    assert adapter.register_worker(W1, host="host", pid=2, queues="*") == 1  # restart: released
    new_claim = claim_one(adapter, W1)
    assert new_claim.attempts == 2
    assert adapter.success(old) is False
    assert adapter.get(job_id).locked_by == W1  # type: ignore[union-attr]
    assert adapter.success(new_claim) is True


def test_register_worker_releases_what_the_same_name_held(
    adapter: Adapter, clock: FakeClock
) -> None:
    register(adapter, W1)
    register(adapter, W2)
    mine = adapter.schedule(new(1))
    other = adapter.schedule(new(2))
    claim_one(adapter, W1)
    claim_one(adapter, W2)
    clock.advance(2)
    assert adapter.register_worker(W1, host="host", pid=99, queues="*") == 1
    row = adapter.get(mine)
    assert row is not None
    assert (row.state, row.locked_by, row.attempts, row.run_at) == ("ready", None, 1, clock.now())
    assert row.last_error is not None and W1 in row.last_error
    assert adapter.get(other).locked_by == W2  # type: ignore[union-attr]
    assert {w.name: w.pid for w in adapter.workers()}[W1] == 99


def test_register_worker_fails_a_job_on_its_last_attempt(adapter: Adapter) -> None:
    register(adapter, W1)
    job_id = adapter.schedule(new(max_attempts=1))
    claim_one(adapter, W1)
    assert adapter.register_worker(W1, host="host", pid=2, queues="*", max_attempts=24) == 1
    row = adapter.get(job_id)
    assert row is not None
    assert (row.state, row.run_at) == ("failed", None)
    assert row.failed_at is not None


def test_recover_stale_heartbeat_unknown_and_live_workers(
    adapter: Adapter, clock: FakeClock
) -> None:
    register(adapter, W1)
    register(adapter, W2)
    silent, live, unknown = (adapter.schedule(new(i)) for i in range(3))
    claim_one(adapter, W1)
    claim_one(adapter, W2)
    claim_one(adapter, "host/never-registered.0")
    clock.advance(STALE - 1)
    adapter.heartbeat(W2)
    assert adapter.recover_stale(STALE, 24) == (1, 0)  # only the unknown worker's job
    assert adapter.get(unknown).state == "ready"  # type: ignore[union-attr]
    assert adapter.get(silent).locked_by == W1  # type: ignore[union-attr]
    clock.advance(2)  # W1 silent for STALE + 1; W2 heartbeated 2 s ago
    assert adapter.recover_stale(STALE, 24) == (1, 0)
    assert adapter.get(silent).state == "ready"  # type: ignore[union-attr]
    assert "lost" in (adapter.get(silent).last_error or "")  # type: ignore[union-attr]
    for _ in range(5):  # a live, heartbeating worker's job is never taken
        clock.advance(STALE - 1)
        adapter.heartbeat(W2)
        assert adapter.recover_stale(STALE, 24) == (0, 0)
    row = adapter.get(live)
    assert row is not None
    assert (row.state, row.locked_by) == ("running", W2)


def test_recover_stale_fails_jobs_out_of_attempts(adapter: Adapter, clock: FakeClock) -> None:
    register(adapter, W1)
    own_limit = adapter.schedule(new(1, max_attempts=1))
    worker_limit = adapter.schedule(new(2))
    more_left = adapter.schedule(new(3, max_attempts=5))
    adapter.claim(W1, None, 3)
    clock.advance(STALE + 1)
    assert adapter.recover_stale(STALE, 1) == (1, 2)
    assert adapter.get(own_limit).state == "failed"  # type: ignore[union-attr]
    assert adapter.get(worker_limit).state == "failed"  # type: ignore[union-attr]
    assert adapter.get(more_left).state == "ready"  # type: ignore[union-attr]
    assert adapter.get(own_limit).run_at is None  # type: ignore[union-attr]


def test_recover_stale_lock_timeout_is_the_last_resort(adapter: Adapter, clock: FakeClock) -> None:
    register(adapter, W1)
    job_id = adapter.schedule(new())
    claim_one(adapter, W1)
    clock.advance(100)
    adapter.heartbeat(W1)
    assert adapter.recover_stale(STALE, 24, lock_timeout=200) == (0, 0)
    clock.advance(101)
    adapter.heartbeat(W1)
    assert adapter.recover_stale(STALE, 24, lock_timeout=200) == (1, 0)
    assert adapter.get(job_id).state == "ready"  # type: ignore[union-attr]


def test_deregister_worker_makes_its_jobs_recoverable(adapter: Adapter) -> None:
    register(adapter, W1)
    job_id = adapter.schedule(new())
    claim_one(adapter, W1)
    assert adapter.recover_stale(STALE, 24) == (0, 0)
    adapter.deregister_worker(W1)
    assert W1 not in {w.name for w in adapter.workers()}
    assert adapter.recover_stale(STALE, 24) == (1, 0)
    assert adapter.get(job_id).state == "ready"  # type: ignore[union-attr]


# -- unique jobs --------------------------------------------------------------------------------
def test_unique_key_returns_the_active_job(adapter: Adapter, clock: FakeClock) -> None:
    first = adapter.schedule(new(1, unique_key="user:42", run_at=clock.now() + 60))
    assert adapter.schedule(new(2, unique_key="user:42")) == first  # scheduled
    clock.advance(60)
    assert adapter.schedule(new(3, unique_key="user:42")) == first  # ready
    job = claim_one(adapter)
    assert adapter.schedule(new(4, unique_key="user:42")) == first  # running
    assert adapter.schedule(new(5, unique_key="user:7")) != first
    assert adapter.schedule_many([new(6, unique_key="user:42")]) == [first]
    assert json.loads(job.handler)["args"] == [1]  # the twin did not overwrite it
    assert adapter.success(job)
    second = adapter.schedule(new(7, unique_key="user:42"))
    assert second != first
    assert adapter.get(second).unique_key == "user:42"  # type: ignore[union-attr]


def test_unique_key_is_free_again_after_failure_or_kept_success(adapter: Adapter) -> None:
    failed = adapter.schedule(new(unique_key="k"))
    adapter.failure(claim_one(adapter), "x")
    kept = adapter.schedule(new(unique_key="k"))
    assert kept != failed
    adapter.success(claim_one(adapter), delete=False)
    assert adapter.schedule(new(unique_key="k")) not in (failed, kept)


# -- administration -----------------------------------------------------------------------------
def test_retry_makes_a_failed_job_ready_now_with_fresh_attempts(
    adapter: Adapter, clock: FakeClock
) -> None:
    job_id = adapter.schedule(new(max_attempts=1))
    adapter.failure(claim_one(adapter), "x")
    clock.advance(10)
    assert adapter.retry(job_id) is True
    row = adapter.get(job_id)
    assert row is not None
    assert (row.state, row.failed_at, row.run_at, row.attempts) == ("ready", None, clock.now(), 0)
    assert claim_one(adapter).attempts == 1
    assert adapter.retry(10**9) is False


def test_retry_makes_a_scheduled_job_ready_now(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.schedule(new(run_at=clock.now() + 3600))
    assert adapter.retry(job_id) is True
    assert adapter.get(job_id).run_at == clock.now()  # type: ignore[union-attr]
    assert claim_one(adapter).id == job_id


def test_retry_failed_by_queue(adapter: Adapter) -> None:
    ids = adapter.schedule_many([new(i, queue=q) for i, q in enumerate(["a", "a", "b"])])
    for job in adapter.claim(W1, None, 3):
        adapter.failure(job, "x")
    assert adapter.retry_failed("a") == 2
    assert [adapter.get(i).state for i in ids] == ["ready", "ready", "failed"]  # type: ignore[union-attr]
    assert adapter.retry_failed() == 1
    assert adapter.retry_failed() == 0


def test_delete(adapter: Adapter) -> None:
    job_id = adapter.schedule(new())
    assert adapter.delete(job_id) is True
    assert adapter.delete(job_id) is False
    assert adapter.get(job_id) is None


@pytest.fixture
def mixed(adapter: Adapter, clock: FakeClock) -> Iterator[Adapter]:
    """Queue a: 2 ready + 1 failed; queue b: 1 scheduled + 1 running."""
    adapter.schedule_many([new(0, queue="a"), new(1, queue="a"), new(2, queue="a")])
    adapter.failure(claim_one(adapter, queues=["a"]), "x")
    adapter.schedule(new(3, queue="b", run_at=clock.now() + 50))
    adapter.schedule(new(4, queue="b"))
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
    adapter.schedule(new(0, queue="a", run_at=now - 30))
    adapter.schedule(new(1, queue="b", run_at=now - 5))
    adapter.schedule(new(2, queue="a", run_at=now + 20))
    adapter.schedule(new(3, queue="b", run_at=now + 10))
    assert adapter.oldest_ready_at() == now - 30
    assert adapter.next_run_at(None) == now + 10
    assert adapter.next_run_at(["a"]) == now + 20
    assert adapter.next_run_at(["c"]) is None
    claim_one(adapter, queues=["a"])  # a running job is not ready
    assert adapter.oldest_ready_at() == now - 5


def test_schedule_many_returns_ids_in_order(adapter: Adapter, clock: FakeClock) -> None:
    rows = [new(i, queue=f"q{i % 3}", priority=1 + i, run_at=clock.now() + i) for i in range(50)]
    ids = adapter.schedule_many(rows)
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
    assert adapter.schedule_many([]) == []


def test_prune_deletes_only_old_finished_rows(adapter: Adapter, clock: FakeClock) -> None:
    ids = adapter.schedule_many([new(i) for i in range(4)])
    a, b, c, _ = adapter.claim(W1, None, 4)
    adapter.success(a, delete=False)
    adapter.failure(b, "x")
    clock.advance(100)
    adapter.success(c, delete=False)  # finished, but recent
    late = adapter.schedule(new(9))  # pending: never pruned
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
    ids = adapter.schedule_many(
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
        sql = f"SELECT handler FROM {adapter._jobs} WHERE id = %s"
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
    many = adapter.schedule_many(batch)
    single = [
        adapter.schedule(build_new_job(job, args, now=now, wait=wait, priority=7))  # type: ignore[arg-type]
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
        ids = adapter.schedule_many(build_job_batch(items, now=now))
        expected = [build_new_job(job, args, now=now).handler for job, args in items]
        assert _stored_handlers(adapter, ids) == expected
    finally:
        sys.setrecursionlimit(limit)


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
