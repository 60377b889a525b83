"""Job control meets history: a cancelled job is a finished one.

Why: cancel and retention were built side by side. A cancelled job must be findable, kept like a
failed one, pruned by the same rules, counted by the statistics, and ``result()`` must say it
ended without a result instead of waiting forever. On every adapter, with a fake clock.
"""

from __future__ import annotations

import pytest

from litejobs import FakeClock, JobManager, WorkerConfig
from litejobs.adapters.base import Adapter, NewJob
from litejobs.errors import JobFailedError
from litejobs.metrics import summarize

from . import sample_jobs

DAY = 86_400.0


def manager(adapter: Adapter, clock: FakeClock, **options: object) -> JobManager:
    return JobManager(
        adapters={"db": adapter},
        clock=clock,
        workers=[WorkerConfig(sleep_delay=0)],
        **options,  # type: ignore[arg-type]
    )


def test_a_job_cancelled_before_it_ran_is_finished_and_pruned_like_the_others(
    adapter: Adapter, clock: FakeClock
) -> None:
    [waiting, other] = adapter.enqueue_many([NewJob("{}"), NewJob("{}")])
    assert adapter.cancel(waiting) == "ready"
    row = adapter.require(waiting)
    assert (row.state, row.finished_at, row.keep_until) == ("cancelled", clock.now(), None)
    clock.advance(60)
    assert adapter.prune(clock.now() - 30, ["failed"]) == 0  # another finished state
    assert adapter.prune(clock.now() - 30, ["cancelled"]) == 1
    assert [j.id for j in adapter.list_jobs()] == [other]  # the job still to run stays


def test_a_cancel_carried_out_by_its_worker_is_kept_as_long_as_failures(
    adapter: Adapter, clock: FakeClock
) -> None:
    jobs = manager(adapter, clock, keep_failed=2 * DAY)
    job_id = jobs.create_scheduler()(sample_jobs.cancel_self, ["no longer wanted"])
    assert jobs.workoff().cancelled == 1
    row = jobs.get(job_id)
    assert (row.state, row.finished_at) == ("cancelled", clock.now())
    assert row.keep_until == clock.now() + 2 * DAY
    clock.advance(2 * DAY + 1)
    assert adapter.prune_expired() == 1


def test_a_cancel_is_kept_even_when_failures_are_deleted_at_once(
    adapter: Adapter, clock: FakeClock
) -> None:
    """``keep_failed=0`` deletes failures; a cancel a person asked for stays until the next
    pruning pass, so `litejobs show` can say it was cancelled."""
    jobs = manager(adapter, clock, keep_failed=0)
    job_id = jobs.create_scheduler()(sample_jobs.cancel_self, ["stop"])
    jobs.workoff()
    assert jobs.get(job_id).state == "cancelled"
    assert adapter.prune_expired() == 1


def test_cancelled_runs_are_counted_by_the_statistics(adapter: Adapter, clock: FakeClock) -> None:
    jobs = manager(adapter, clock)
    start = clock.now()
    jobs.create_scheduler()(sample_jobs.cancel_self, ["counted"])
    jobs.workoff()
    got = summarize(r[1:] for r in adapter.stats_rows(start))
    assert got["default"].as_dict()["cancelled"] == 1


def test_the_result_of_a_cancelled_job_is_its_end_not_a_wait(
    adapter: Adapter, clock: FakeClock
) -> None:
    jobs = manager(adapter, clock)
    job_id = jobs.create_scheduler()(sample_jobs.double, [21], keep_result=True)
    jobs.cancel(job_id)
    with pytest.raises(JobFailedError, match=f"job {job_id} cancelled") as ended:
        jobs.result(job_id, timeout=0)
    assert ended.value.state == "cancelled"


def test_a_person_retrying_a_cancelled_job_makes_it_unfinished(
    adapter: Adapter, clock: FakeClock
) -> None:
    [job_id] = adapter.enqueue_many([NewJob("{}")])
    adapter.cancel(job_id)
    assert adapter.retry(job_id)
    row = adapter.require(job_id)
    assert (row.state, row.finished_at, row.keep_until, row.cancelled_at) == (
        "ready",
        None,
        None,
        None,
    )
