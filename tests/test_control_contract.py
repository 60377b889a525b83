"""Job control in the storage contract, rule by rule, on every adapter: cancel (before it starts,
while reserved, while running, after a crash), paused queues, limits of held jobs per queue,
snoozes, unique keys held for a period, a job's own timeout and retry policy stored with it.

Why: these rules are what ``litejobs cancel``, ``pause`` and ``queue_limits`` promise on every
host; the worker only carries out what storage decides, so each rule is pinned here through the
:class:`~litejobs.adapters.base.Adapter` interface alone (a real SQLite file, and PostgreSQL when
``LITEJOBS_TEST_PG_URL`` is set), with a :class:`FakeClock`: nothing sleeps.
"""

from __future__ import annotations

import json

import pytest

from litejobs import FakeClock
from litejobs.adapters.base import Adapter, ClaimedJob, NewJob, Outcome
from litejobs.errors import JobRunningError
from tests.workers import Processes, register, worker

PROCS = Processes()
W1 = worker(PROCS, "host/litejobs-worker.*.1")
W2 = worker(PROCS, "host/litejobs-worker.*.2")


def new(n: int = 0, **options: object) -> NewJob:
    handler = json.dumps({"name": "record", "path": "tests.sample_jobs:record", "args": [n]})
    return NewJob(handler=handler, **options)  # type: ignore[arg-type]


def claim(adapter: Adapter, limit: int = 1, queues: list[str] | None = None) -> list[ClaimedJob]:
    return adapter.claim(W1, queues, limit)


def state(adapter: Adapter, job_id: int) -> str:
    return adapter.require(job_id).state


def record(adapter: Adapter, outcome: Outcome) -> bool:
    return adapter.record([outcome])[0][0]


# -- cancel -------------------------------------------------------------------------------------
@pytest.mark.parametrize("wait", [0, 30])
def test_a_cancelled_waiting_job_never_starts(
    adapter: Adapter, clock: FakeClock, wait: int
) -> None:
    job_id = adapter.enqueue(new(run_at=clock.now() + wait))
    before = "scheduled" if wait else "ready"
    assert adapter.cancel(job_id) == before
    row = adapter.require(job_id)
    assert (row.state, row.cancelled_at, row.run_at, row.attempts) == (
        "cancelled",
        clock.now(),
        None,
        0,
    )
    clock.advance(60)
    assert adapter.claim(W1, None, 10) == []
    assert not adapter.has_ready(None)
    assert adapter.counts() == {"default": {"cancelled": 1}}


def test_a_cancelled_reserved_job_cannot_be_started_or_given_back(adapter: Adapter) -> None:
    first, second = adapter.enqueue_many([new(1), new(2)])
    running, reserved = claim(adapter, 2)
    assert (running.id, reserved.id, reserved.charged) == (first, second, False)
    assert adapter.cancel(second) == "reserved"
    assert state(adapter, second) == "cancelled"
    written, started = adapter.record([Outcome(running, "succeeded")], reserved)
    assert (written, started) == ([True], None)  # the start is fenced off
    assert adapter.record([Outcome(reserved, "released")])[0] == [False]
    assert adapter.require(second).attempts == 0  # never charged: it never started


def test_a_running_job_gets_a_cancel_request_its_worker_carries_out(
    adapter: Adapter, clock: FakeClock
) -> None:
    job_id = adapter.enqueue(new())
    [job] = claim(adapter)
    assert not adapter.cancel_requested(job)
    asked = clock.now()
    assert adapter.cancel(job_id) == "running"
    row = adapter.require(job_id)
    assert (row.state, row.cancelled_at, row.lock_token) == ("running", asked, W1.token)
    assert adapter.cancel_requested(job)
    clock.advance(1)
    assert adapter.cancel(job_id) == "running"  # asked again: the first time is kept
    assert adapter.require(job_id).cancelled_at == asked
    error = "JobCancelledError: cancelled while running"
    assert record(adapter, Outcome(job, "cancelled", error=error))
    row = adapter.require(job_id)
    assert (row.state, row.cancelled_at, row.last_error, row.attempts) == (
        "cancelled",
        asked,
        error,
        1,
    )
    assert (row.lock_token, row.locked_at, row.run_at) == (None, None, None)
    assert adapter.cancel(job_id) == "cancelled"  # finished: nothing changes
    assert adapter.require(job_id).updated_at == clock.now()


def test_a_cancel_request_is_only_seen_by_the_claim_that_holds_the_job(adapter: Adapter) -> None:
    job_id = adapter.enqueue(new())
    [job] = claim(adapter)
    adapter.cancel(job_id)
    stranger = ClaimedJob(**{**_fields(job), "lock_token": W2.token})
    assert adapter.cancel_requested(job) and not adapter.cancel_requested(stranger)


@pytest.mark.parametrize("kind", ["errored", "released", "snoozed"])
def test_a_job_cancelled_while_it_ran_never_runs_again_whatever_its_outcome(
    adapter: Adapter, clock: FakeClock, kind: str
) -> None:
    """The worker may record an outcome before it saw the request (the job erred, or it was
    given back): the request still wins."""
    job_id = adapter.enqueue(new())
    [job] = claim(adapter)
    adapter.cancel(job_id)
    assert record(adapter, Outcome(job, kind, error="ValueError: x", retry_at=clock.now()))  # type: ignore[arg-type]
    assert state(adapter, job_id) == "cancelled"
    assert adapter.claim(W1, None, 10) == []


def test_a_job_that_succeeded_before_its_cancel_was_carried_out_is_a_success(
    adapter: Adapter,
) -> None:
    job_id = adapter.enqueue(new())
    [job] = claim(adapter)
    adapter.cancel(job_id)
    assert record(adapter, Outcome(job, "succeeded", delete=False))
    assert state(adapter, job_id) == "succeeded"


def test_a_gone_workers_cancelled_job_is_cancelled_not_rescued(adapter: Adapter) -> None:
    procs = Processes()
    info = worker(procs, "host/w.0")
    register(adapter, procs, info)
    cancelled, other = adapter.enqueue_many([new(1), new(2)])
    [job] = adapter.claim(info, None, 1)
    adapter.cancel(cancelled)
    procs.kill(info.pid)
    rescued = adapter.rescue(procs.observer())
    assert (rescued.cancelled, rescued.released, rescued.job_ids) == (1, 0, (cancelled,))
    row = adapter.require(cancelled)
    assert row.state == "cancelled" and "cancelled" in (row.last_error or "")
    assert [j.id for j in adapter.claim(W1, None, 10)] == [other]
    assert job.id == cancelled


def test_what_a_worker_gives_back_after_a_cancel_request_is_cancelled(adapter: Adapter) -> None:
    first, second = adapter.enqueue_many([new(1), new(2)])
    claim(adapter, 2)
    adapter.cancel(first)
    assert adapter.give_back(W1) == 1  # the other one goes back, ready
    assert (state(adapter, first), state(adapter, second)) == ("cancelled", "ready")


@pytest.mark.parametrize("outcome", ["failed", "succeeded"])
def test_a_finished_job_is_not_cancelled(adapter: Adapter, outcome: str) -> None:
    job_id = adapter.enqueue(new())
    [job] = claim(adapter)
    record(adapter, Outcome(job, outcome, error="x", delete=False))  # type: ignore[arg-type]
    before = adapter.require(job_id)
    assert adapter.cancel(job_id) == outcome
    assert adapter.require(job_id) == before
    assert adapter.cancel(10_000) is None


def test_a_person_retries_a_cancelled_job_from_scratch(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.enqueue(new())
    [job] = claim(adapter)
    adapter.cancel(job_id)
    record(adapter, Outcome(job, "cancelled", error="Cancel: no"))
    clock.advance(5)
    assert adapter.retry(job_id)
    row = adapter.require(job_id)
    assert (row.state, row.attempts, row.cancelled_at, row.run_at) == (
        "ready",
        0,
        None,
        clock.now(),
    )
    [again] = claim(adapter)
    assert again.id == job_id and not adapter.cancel_requested(again)
    assert record(adapter, Outcome(again, "errored", error="E", retry_at=clock.now()))
    assert state(adapter, job_id) == "ready"  # an old request does not haunt the new run


def test_delete_refuses_a_held_job_unless_forced(adapter: Adapter) -> None:
    running, reserved = adapter.enqueue_many([new(1), new(2)])
    claim(adapter, 2)
    for job_id, held in ((running, "running"), (reserved, "reserved")):
        with pytest.raises(JobRunningError, match=f"job {job_id} is {held}.*litejobs cancel"):
            adapter.delete(job_id)
        assert state(adapter, job_id) == held
        assert adapter.delete(job_id, force=True)
        assert adapter.get(job_id) is None
    waiting = adapter.enqueue(new(3))
    assert adapter.delete(waiting) and not adapter.delete(waiting)


# -- paused queues ----------------------------------------------------------------------------
def test_a_paused_queues_jobs_are_not_claimed_until_it_resumes(
    adapter: Adapter, clock: FakeClock
) -> None:
    urgent, mail, later_one = adapter.enqueue_many(
        [
            new(1, queue="email", priority=1),
            new(2, queue="default", priority=50),
            new(3, queue="email", priority=1, run_at=clock.now() + 5),
        ]
    )
    assert adapter.pause("email") is True
    assert adapter.pause("email") is False  # already paused
    clock.advance(10)
    for queues in (None, ["email"], ["email", "default"]):
        assert not adapter.has_ready(["email"])
        got = adapter.claim(W1, queues, 10)
        assert [j.id for j in got] == ([] if queues == ["email"] else [mail])
        if got:
            record(adapter, Outcome(got[0], "released"))
    controls = adapter.queue_controls()
    assert list(controls) == ["email"] and controls["email"].paused
    assert adapter.resume("email") is True
    assert adapter.resume("email") is False
    assert adapter.queue_controls() == {}
    assert adapter.has_ready(["email"])
    assert [j.id for j in adapter.claim(W1, None, 10)] == [urgent, later_one, mail]


def test_a_paused_queues_running_job_finishes(adapter: Adapter) -> None:
    job_id = adapter.enqueue(new(queue="email"))
    [job] = claim(adapter)
    adapter.pause("email")
    assert record(adapter, Outcome(job, "succeeded", delete=False))
    assert state(adapter, job_id) == "succeeded"


def test_a_paused_backlog_does_not_hide_other_queues_work(adapter: Adapter) -> None:
    """Claims and the idle check look queue by queue: a paused queue's thousands of urgent jobs
    are skipped without being read, and the rest is taken in order."""
    adapter.enqueue_many([new(i, queue="bulk", priority=1) for i in range(300)])
    normal = adapter.enqueue_many(
        [new(i, queue=q, priority=p) for i, (q, p) in enumerate([("a", 9), ("b", 5), ("a", 7)])]
    )
    adapter.pause("bulk")
    assert adapter.has_ready(None)
    assert [j.id for j in adapter.claim(W1, None, 2)] == [normal[1], normal[2]]
    assert [j.id for j in adapter.claim(W2, None, 5)] == [normal[0]]
    assert not adapter.has_ready(None)


# -- limits of held jobs ------------------------------------------------------------------------
@pytest.mark.parametrize("queues", [None, ["email"], ["email", "default"]])
def test_a_limited_queue_never_holds_more_than_its_limit(
    adapter: Adapter, queues: list[str] | None
) -> None:
    ids = adapter.enqueue_many([new(i, queue="email") for i in range(5)])
    other = adapter.enqueue(new(9, queue="default", priority=100))
    adapter.set_queue_limit("email", 2)
    assert adapter.queue_controls()["email"].limit == 2
    first = adapter.claim(W1, queues, 10)
    taken = [j.id for j in first if j.queue == "email"]
    assert taken == ids[:2]  # one running, one reserved: both count
    assert [j.id for j in adapter.claim(W2, ["email"], 10)] == []
    record(adapter, Outcome(first[0], "succeeded"))  # one slot frees
    assert [j.id for j in adapter.claim(W2, ["email"], 10)] == [ids[2]]
    assert [j.id for j in adapter.claim(W2, ["email"], 10)] == []
    adapter.set_queue_limit("email", None)
    assert adapter.queue_controls() == {}
    rest = [j.id for j in adapter.claim(W2, None, 10)]
    assert rest == ids[3:] + ([] if queues is None or "default" in queues else [other])


def test_a_lower_limit_applies_to_the_next_claims(adapter: Adapter) -> None:
    ids = adapter.enqueue_many([new(i, queue="q") for i in range(4)])
    held = adapter.claim(W1, None, 3)
    adapter.set_queue_limit("q", 1)
    assert adapter.claim(W2, None, 10) == []  # 3 held, limit 1: nothing more
    record(adapter, Outcome(held[0], "succeeded"))
    record(adapter, Outcome(held[1], "released"))
    assert adapter.claim(W2, None, 10) == []  # still 1 held (the third)
    record(adapter, Outcome(held[2], "released"))
    assert [j.id for j in adapter.claim(W2, None, 10)] == [ids[1]]


def test_pause_and_limit_share_a_queue(adapter: Adapter) -> None:
    ids = adapter.enqueue_many([new(i, queue="q") for i in range(3)])
    adapter.set_queue_limit("q", 1)
    adapter.pause("q")
    assert adapter.claim(W1, None, 10) == []
    adapter.resume("q")
    assert adapter.queue_controls()["q"].limit == 1  # resuming keeps the limit
    assert [j.id for j in adapter.claim(W1, None, 10)] == ids[:1]


# -- snooze -------------------------------------------------------------------------------------
def test_a_snooze_gives_its_attempt_back(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.enqueue(new(max_attempts=1))
    [job] = claim(adapter)
    assert record(adapter, Outcome(job, "errored", error="E1", retry_at=clock.now()))
    [job] = claim(adapter)
    assert job.attempts == 2
    assert record(adapter, Outcome(job, "snoozed", retry_at=clock.now() + 600))
    row = adapter.require(job_id)
    assert (row.state, row.attempts, row.run_at, row.last_error) == (
        "scheduled",
        1,
        clock.now() + 600,
        "E1",
    )
    assert (row.lock_token, row.locked_at) == (None, None)
    clock.advance(600)
    [again] = claim(adapter)
    assert again.attempts == 2  # the snoozed run was not counted


def test_a_snooze_of_zero_seconds_is_ready_at_once(adapter: Adapter, clock: FakeClock) -> None:
    job_id = adapter.enqueue(new())
    [job] = claim(adapter)
    assert record(adapter, Outcome(job, "snoozed", retry_at=clock.now()))
    assert state(adapter, job_id) == "ready" and adapter.has_ready(None)


# -- unique keys held for a period ----------------------------------------------------------------
def test_a_key_is_held_for_its_period_after_success(adapter: Adapter, clock: FakeClock) -> None:
    options = {"unique_key": "digest:42", "unique_for": 3600.0, "unique_states": ("succeeded",)}
    first = adapter.enqueue(new(1, **options))
    [job] = claim(adapter)
    record(adapter, Outcome(job, "succeeded", delete=True))  # the row is gone
    clock.advance(3599)
    assert adapter.enqueue(new(2, **options)) == first
    assert adapter.list_jobs() == []
    clock.advance(1)
    second = adapter.enqueue(new(3, **options))
    assert second != first and state(adapter, second) == "ready"


def test_a_period_counts_only_the_finished_states_named(adapter: Adapter, clock: FakeClock) -> None:
    options = {"unique_key": "k", "unique_for": 60.0, "unique_states": ("succeeded",)}
    first = adapter.enqueue(new(1, **options))
    [job] = claim(adapter)
    record(adapter, Outcome(job, "failed", error="E"))
    second = adapter.enqueue(new(2, **options))  # failed does not hold the key here
    assert second != first
    assert adapter.enqueue(new(3, **options)) == second  # active: always holds it
    failed_too = {**options, "unique_states": ("succeeded", "failed")}
    assert adapter.cancel(second) == "ready"
    third = adapter.enqueue(new(4, **failed_too))
    assert third != second  # cancelled is not named either
    [job] = claim(adapter)
    record(adapter, Outcome(job, "failed", error="E"))
    assert adapter.enqueue(new(5, **failed_too)) == third


def test_a_plain_unique_key_and_a_period_share_the_active_job(adapter: Adapter) -> None:
    plain = adapter.enqueue(new(1, unique_key="k"))
    assert adapter.enqueue(new(2, unique_key="k", unique_for=60.0, unique_states=())) == plain
    assert len(adapter.list_jobs()) == 1


# -- a job's own timeout and retry policy -------------------------------------------------------
def test_a_jobs_own_timeout_and_retry_policy_reach_its_worker(adapter: Adapter) -> None:
    policy = '{"intervals":[5.0,60.0],"jitter":0.1}'
    own, plain = adapter.enqueue_many([new(1, max_runtime=2.5, retry=policy), new(2)])
    got = {j.id: (j.max_runtime, j.retry) for j in adapter.claim(W1, None, 2)}
    assert got == {own: (2.5, policy), plain: (None, None)}
    row = adapter.require(own)
    assert (row.max_runtime, row.retry) == (2.5, policy)


def _fields(job: ClaimedJob) -> dict[str, object]:
    return {name: getattr(job, name) for name in job.__slots__}  # type: ignore[attr-defined]


def test_a_cancel_between_a_look_and_the_first_wait_is_seen(adapter: Adapter) -> None:
    """The keeper asks storage, then sleeps on the cancel signal: a cancel committed in
    between by another process must wake it, even on the first wait of its thread (found by
    the cancel benchmark: the first job of a worker was stopped only by the 1 s poll)."""
    job_id = adapter.enqueue(new())
    [job] = claim(adapter)
    assert not adapter.cancel_requested(job)
    other = _another_connection(adapter)
    assert other.cancel(job_id) == "running"
    assert adapter.wait_for_cancel(5.0)
    assert adapter.cancel_requested(job)
    other.close()


def _another_connection(adapter: Adapter) -> Adapter:
    """The same database through another adapter object: another process, as far as change
    signals go."""
    from litejobs import SQLiteAdapter

    if isinstance(adapter, SQLiteAdapter):
        return SQLiteAdapter(adapter.path, clock=adapter.clock)
    from litejobs.adapters.postgres import PostgresAdapter

    assert isinstance(adapter, PostgresAdapter)
    return PostgresAdapter(adapter.url, schema=adapter.schema, clock=adapter.clock)
