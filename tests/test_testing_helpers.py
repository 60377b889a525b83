"""``litejobs.testing`` used the way an application's own test suite would use it.

The top half of this file plays the application (normally ``myapp/jobs.py``): a manager built at
import time pointing at a production path, jobs defined with the decorator, and a ``later``
made once. The tests never touch that path: the helpers swap in a temporary database.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from litejobs import JobManager, SQLiteAdapter, WorkerConfig, current_job
from litejobs.testing import DrainError, JobsHarness, inline, jobs_fixture, temp_jobs

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


# --- the application's tests ------------------------------------------------------------------
litejobs = jobs_fixture(jobs)  # a pytest fixture named `litejobs`


@pytest.fixture(autouse=True)
def _reset() -> None:
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
