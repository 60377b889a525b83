"""``litejobs.testing`` used the way an application's own test suite would use it.

The top half of this file plays the application (normally ``myapp/jobs.py``): a manager built at
import time pointing at a production path, jobs defined with the decorator, and a ``later``
made once. The tests never touch that path: the helpers swap in a temporary database.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest

from litejobs import JobManager, SQLiteAdapter, WorkerConfig, current_job
from litejobs.errors import ConfigurationError, JobTimeoutError
from litejobs.testing import (
    DrainError,
    JobsHarness,
    inline,
    jobs_fixture,
    serving_group,
    temp_jobs,
)

# --- the application -------------------------------------------------------------------------
PRODUCTION_DB = Path("/nonexistent/myapp/var/jobs.db")  # opening it would fail loudly
jobs = JobManager(
    adapters={"sqlite": SQLiteAdapter(PRODUCTION_DB)},
    queues=["default", "email"],
    workers=[WorkerConfig(max_attempts=3)],
)
later = jobs.create_scheduler()
SENT: list[str] = []
REPORTS: list[int] = []
FLAKY_CALLS: list[int] = []


@jobs.job(queue="email", priority=1)
def send_welcome_email(user_id: int, *, lang: str = "en") -> None:
    SENT.append(f"{user_id}:{lang}")


@jobs.job
def flaky(user_id: int) -> None:
    """Fails twice, then works: the retries' backoff (1 s, 16 s) is jumped over by drain()."""
    FLAKY_CALLS.append(user_id)
    if len(FLAKY_CALLS) < 3:
        raise ConnectionError("mail server unavailable")


@jobs.job
def chain(n: int) -> None:
    later(chain, [n + 1], wait=60)  # schedules itself forever


@jobs.job(cron="0 * * * *")
def hourly_report() -> None:
    ctx = current_job()
    REPORTS.append(ctx.attempts if ctx else -1)


def signup(user_id: int) -> None:
    """Application code under test."""
    later(send_welcome_email, [user_id], kwargs={"lang": "fr"})


# A second application whose worker groups differ per queue: card charges get one attempt and
# 0.2 s (retrying a charge could bill twice), the default queue five attempts and a minute.
billing = JobManager(
    adapters={"sqlite": SQLiteAdapter(PRODUCTION_DB)},
    queues=["default", "charges", "audit"],
    workers=[
        WorkerConfig(queue="default", max_attempts=5, max_runtime=60),
        WorkerConfig(queue="charges", max_attempts=1, max_runtime=0.2, delete_failed_jobs=True),
    ],
)
bill = billing.create_scheduler()
CHARGES: list[tuple[int, int]] = []


@billing.job(queue="charges")
def charge_card(order: int) -> None:
    ctx = current_job()
    CHARGES.append((order, ctx.max_attempts if ctx else -1))
    raise RuntimeError(f"card declined for order {order}")


@billing.job(queue="charges")
def slow_charge(order: int) -> None:
    time.sleep(5)  # past the charges group's 0.2 s
    CHARGES.append((order, 0))


@billing.job(queue="audit")
def audit(order: int) -> None:  # no worker group serves "audit"
    CHARGES.append((order, -2))


@billing.job
async def refund(order: int) -> None:
    await asyncio.sleep(0)
    ctx = current_job()
    CHARGES.append((order, ctx.max_attempts if ctx else -1))


@billing.job
def sync_account(account: int, depth: int) -> None:
    """Asks for another sync of the same account while it runs: one is already running."""
    CHARGES.append((account, depth))
    if depth < 3:
        again = bill(sync_account, [account, depth + 1], unique_key=f"sync:{account}")
        CHARGES.append((account, again))


# --- the application's tests ------------------------------------------------------------------
litejobs = jobs_fixture(jobs)  # a pytest fixture named `litejobs`


@pytest.fixture(autouse=True)
def _reset() -> None:
    CHARGES.clear()
    SENT.clear()
    REPORTS.clear()
    FLAKY_CALLS.clear()


def test_signup_enqueues_then_drain_sends(litejobs: JobsHarness) -> None:
    signup(42)
    [record] = litejobs.assert_enqueued(send_welcome_email, args=[42], kwargs={"lang": "fr"})
    assert (record.queue, record.priority) == ("email", 1)
    litejobs.assert_not_enqueued(send_welcome_email, args=[43])
    assert SENT == []
    stats = litejobs.drain()
    assert (stats.succeeded, stats.errored) == (1, 0)
    assert SENT == ["42:fr"]
    assert litejobs.enqueued() == []


def test_assert_enqueued_explains_what_is_there(litejobs: JobsHarness) -> None:
    signup(7)
    with pytest.raises(AssertionError) as info:
        litejobs.assert_enqueued(send_welcome_email, args=[8])
    message = str(info.value)
    assert "send_welcome_email(8) to be enqueued at least once, found 0" in message
    assert "send_welcome_email(7, lang='fr')" in message
    with pytest.raises(AssertionError, match="2 time"):
        litejobs.assert_enqueued(send_welcome_email, count=2)


def test_drain_jumps_over_waits_and_retry_backoff(litejobs: JobsHarness) -> None:
    start = litejobs.clock.now()
    later(flaky, [1])
    later(send_welcome_email, [5], wait=timedelta(minutes=10))
    stats = litejobs.drain()
    assert (stats.succeeded, stats.errored, stats.failed) == (2, 2, 0)
    assert FLAKY_CALLS == [1, 1, 1] and SENT == ["5:en"]
    assert litejobs.clock.now() - start == 600  # the latest wait; backoffs 1 s + 16 s were inside


def test_drain_with_within_follows_recurring_ticks(litejobs: JobsHarness) -> None:
    start = litejobs.clock.now()
    stats = litejobs.drain(within=timedelta(hours=3, minutes=30))
    assert REPORTS == [1, 1, 1]  # 01:00, 02:00, 03:00 -- each a first attempt
    assert stats.succeeded == 3
    assert litejobs.clock.now() == start + 3.5 * 3600


def test_drain_refuses_to_run_forever(litejobs: JobsHarness) -> None:
    later(chain, [0])
    with pytest.raises(DrainError, match="keep scheduling itself"):
        litejobs.drain(max_rounds=20)
    litejobs.drain(within=600)  # bounded in time instead: 10 more links, then it stops
    assert len(litejobs.assert_enqueued(chain)) == 1


def test_inline_runs_jobs_at_once_and_raises_their_errors(litejobs: JobsHarness) -> None:
    with inline(jobs) as runs:
        job_id = later(send_welcome_email, [9], wait=3600)
        assert SENT == ["9:en"]
        with pytest.raises(ConnectionError, match="mail server unavailable"):
            later(flaky, [2])
        assert later.many([(send_welcome_email, [11]), (send_welcome_email, [12])]) == [3, 4]
        assert SENT == ["9:en", "11:en", "12:en"]
    assert [(r.id, r.name, r.args) for r in runs] == [
        (job_id, "send_welcome_email", [9]),
        (2, "flaky", [2]),
        (3, "send_welcome_email", [11]),
        (4, "send_welcome_email", [12]),
    ]
    assert litejobs.enqueued() == []  # nothing was stored
    later(send_welcome_email, [10])  # outside the block: stored again
    litejobs.assert_enqueued(send_welcome_email, args=[10])


def test_temp_jobs_as_a_context_manager_restores_the_manager(tmp_path: Path) -> None:
    original = jobs.adapter()
    with temp_jobs(jobs, tmp_path) as tj:
        assert jobs.adapter() is tj.adapter is not original
        tj.later(send_welcome_email, [1])
        tj.advance(5)
        assert tj.drain().succeeded == 1
    assert jobs.adapter() is original
    assert not PRODUCTION_DB.exists()


# -- the worker groups production would use ----------------------------------------------------
billing_jobs = jobs_fixture(billing, name="billing_jobs")


def test_drain_runs_each_job_with_its_queues_worker_group(billing_jobs: JobsHarness) -> None:
    declined = bill(charge_card, [7])
    slow = bill(slow_charge, [8])
    stats = billing_jobs.drain()
    assert (stats.succeeded, stats.errored, stats.failed) == (0, 0, 2)  # no retry of a charge
    assert CHARGES == [(7, 1)]  # one attempt, with max_attempts 1; the slow one was cut
    assert billing_jobs.adapter.get(declined) is None  # the group deletes failed jobs
    assert billing_jobs.adapter.get(slow) is None
    assert any("JobTimeoutError: timed out after 0.2 s" in e for e in stats.errors)


def test_drain_refuses_a_due_job_no_worker_group_would_run(billing_jobs: JobsHarness) -> None:
    due = bill(audit, [9])
    with pytest.raises(DrainError, match="queue 'audit', which no worker group"):
        billing_jobs.drain()
    assert CHARGES == []
    billing_jobs.adapter.delete(due)
    waiting = bill(audit, [10], wait=60)
    start = billing_jobs.clock.now()
    billing_jobs.drain()  # not due yet, and no worker would ever run it: no jump to its time
    assert billing_jobs.clock.now() == start
    assert billing_jobs.adapter.require(waiting).state == "scheduled"
    billing_jobs.advance(60)
    with pytest.raises(DrainError, match="queue 'audit'"):
        billing_jobs.drain()


def test_inline_runs_each_job_with_its_queues_worker_group() -> None:
    with inline(billing) as runs:
        with pytest.raises(RuntimeError, match="card declined for order 7"):
            bill(charge_card, [7])
        with pytest.raises(JobTimeoutError, match=r"timed out after 0\.2 s"):
            bill(slow_charge, [8])
        with pytest.raises(ConfigurationError, match="no worker group serves queue 'audit'"):
            bill(audit, [9])
        assert bill(refund, [10]) == 3
    assert CHARGES == [(7, 1), (10, 5)]
    assert [run.name for run in runs] == ["charge_card", "slow_charge", "refund"]


def test_inline_runs_async_jobs_scheduled_from_async_code() -> None:
    async def handler() -> int:  # application code: an async web handler, say
        return bill(refund, [11])

    with inline(billing):
        assert asyncio.run(handler()) == 1
    assert CHARGES == [(11, 5)]  # it ran, with its context, before later() returned


def test_inline_honours_unique_keys_while_a_job_runs() -> None:
    with inline(billing) as runs:
        first = bill(sync_account, [1, 1], unique_key="sync:1")
        second = bill(sync_account, [1, 1], unique_key="sync:1")  # the first has returned
    assert (first, second) == (1, 2) and len(runs) == 2
    # Each run's own request for a second sync got its own id back, and ran nothing.
    assert CHARGES == [(1, 1), (1, 1), (1, 1), (1, 2)]


def test_the_group_that_names_a_queue_runs_it_before_a_catch_all() -> None:
    catch_all = WorkerConfig(queue="*", max_attempts=5)
    charges = WorkerConfig(queue=["charges", "refunds"], max_attempts=1)
    other_db = WorkerConfig(queue="charges", adapter="archive")
    groups = [catch_all, other_db, charges]
    assert serving_group(groups, "charges") is other_db  # no adapter given: any group
    assert serving_group(groups, "charges", "main") is charges
    assert serving_group(groups, "refunds", "main") is charges
    assert serving_group(groups, "default", "main") is catch_all
    assert serving_group([charges], "default") is None
