"""Finished jobs: retention, pruning, ``jobs.get`` and results, on every adapter.

Why: an operator asks "what happened to job 7?" after it ran, and an application waits for what a
job returned. These tests pin the rules down through the public API (``JobManager``, ``later``,
a real :class:`~litejobs.worker.Worker` via ``workoff``) on a real SQLite file and PostgreSQL,
with a :class:`FakeClock`: a retention of a day is reached by moving the clock, not by waiting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from litejobs import FakeClock, JobManager, WorkerConfig
from litejobs.adapters.base import Adapter, NewJob
from litejobs.errors import (
    ConfigurationError,
    JobDeletedError,
    JobFailedError,
    JobNotFoundError,
    ResultTimeoutError,
    ResultUnavailableError,
)
from litejobs.retention import RESULT_KEEP

from . import sample_jobs

DAY = 86_400.0


@pytest.fixture
def make(adapter: Adapter, clock: FakeClock) -> Iterator[type[JobManager]]:
    """``make(**options)``: a manager on this test's adapter (keep_succeeded=..., ...)."""

    def build(**options: object) -> JobManager:
        return JobManager(adapters={"db": adapter}, clock=clock, **options)  # type: ignore[arg-type]

    yield build  # type: ignore[misc]


# -- retention ----------------------------------------------------------------------------------
def test_a_success_is_deleted_by_default_and_its_id_says_it_is_gone(
    make: type[JobManager], adapter: Adapter
) -> None:
    jobs = make()
    job_id = jobs.create_scheduler()(sample_jobs.double, [2])
    assert jobs.workoff().succeeded == 1
    with pytest.raises(JobDeletedError, match=f"job {job_id} finished and was deleted"):
        jobs.get(job_id)
    with pytest.raises(JobNotFoundError, match="no job with id 99") as typo:
        jobs.get(99)
    assert not isinstance(typo.value, JobDeletedError)  # a typo is not a deleted job
    assert adapter.last_job_id() == job_id


def test_keep_succeeded_keeps_the_row_until_its_time_then_workers_prune_it(
    make: type[JobManager], clock: FakeClock
) -> None:
    jobs = make(keep_succeeded=timedelta(days=1))
    job_id = jobs.create_scheduler()(sample_jobs.double, [2])
    clock.advance(5)
    finished = clock.now()
    jobs.workoff()
    record = jobs.get(job_id)
    assert (record.state, record.attempts, record.last_error) == ("succeeded", 1, None)
    assert (record.finished_at, record.keep_until) == (finished, finished + DAY)
    assert record.result_json is None  # no result asked for
    listed = jobs.adapter().list_jobs(state="succeeded")
    assert [r.id for r in listed] == [job_id]
    clock.advance(DAY - 0.001)
    assert jobs.workoff().ran == 0  # a worker's pass prunes nothing early
    assert jobs.get(job_id).state == "succeeded"
    clock.advance(0.001)
    jobs.workoff()  # its pruning pass runs as it starts
    with pytest.raises(JobDeletedError):
        jobs.get(job_id)


def test_a_jobs_own_retention_beats_the_managers(make: type[JobManager], clock: FakeClock) -> None:
    jobs = make(keep_failed=timedelta(days=30), keep_succeeded=timedelta(hours=1))
    boom = jobs.create_job(perform=sample_jobs.boom, keep_failed=timedelta(hours=2))
    quick = jobs.create_job(perform=sample_jobs.double, keep_succeeded=0)
    later = jobs.create_scheduler()
    failed = later(boom, ["x"], max_attempts=1)
    plain_failure = later(sample_jobs.async_boom, ["y"], max_attempts=1)
    deleted = later(quick, [1])
    kept = later(sample_jobs.record, [3])
    now = clock.now()
    jobs.workoff()
    assert jobs.get(failed).keep_until == now + 2 * 3600
    assert jobs.get(plain_failure).keep_until == now + 30 * DAY
    assert jobs.get(kept).keep_until == now + 3600
    with pytest.raises(JobDeletedError):
        jobs.get(deleted)


@pytest.mark.parametrize(
    ("config", "succeeded_kept", "failed_kept"),
    [
        (WorkerConfig(max_attempts=1), False, True),  # the defaults: as before
        (WorkerConfig(max_attempts=1, delete_successful_jobs=False), True, True),
        (WorkerConfig(max_attempts=1, delete_failed_jobs=True), False, False),
    ],
)
def test_without_a_period_the_worker_groups_delete_settings_decide_and_keep_for_good(
    make: type[JobManager], config: WorkerConfig, succeeded_kept: bool, failed_kept: bool
) -> None:
    jobs = make(workers=[config])
    later = jobs.create_scheduler()
    ok, bad = later(sample_jobs.double, [1]), later(sample_jobs.boom)
    jobs.workoff()
    for job_id, kept, state in ((ok, succeeded_kept, "succeeded"), (bad, failed_kept, "failed")):
        if kept:
            record = jobs.get(job_id)
            assert (record.state, record.keep_until) == (state, None)  # until a person prunes
            assert record.finished_at is not None
        else:
            with pytest.raises(JobDeletedError):
                jobs.get(job_id)


def test_keep_failed_zero_deletes_a_failure_at_once(make: type[JobManager]) -> None:
    jobs = make(keep_failed=0)
    job_id = jobs.create_scheduler()(sample_jobs.boom, max_attempts=1)
    assert jobs.workoff().failed == 1
    with pytest.raises(JobDeletedError):
        jobs.get(job_id)


def test_a_retried_job_is_no_longer_finished_and_pruning_leaves_it(
    make: type[JobManager], adapter: Adapter, clock: FakeClock
) -> None:
    jobs = make(keep_failed=timedelta(minutes=1))
    job_id = jobs.create_scheduler()(sample_jobs.boom, max_attempts=1)
    jobs.workoff()
    assert jobs.get(job_id).keep_until is not None
    assert adapter.retry(job_id)
    record = jobs.get(job_id)
    assert (record.state, record.finished_at, record.keep_until) == ("ready", None, None)
    clock.advance(3600)
    assert adapter.prune_expired() == 0
    assert adapter.prune(clock.now() + DAY) == 0
    assert jobs.get(job_id).state == "ready"


def test_manual_prune_by_age_and_state_never_touches_jobs_still_to_run(
    make: type[JobManager], adapter: Adapter, clock: FakeClock
) -> None:
    jobs = make(workers=[WorkerConfig(max_attempts=1, delete_successful_jobs=False)])
    later = jobs.create_scheduler()
    old_ok, old_bad = later(sample_jobs.double, [1]), later(sample_jobs.boom)
    jobs.workoff()
    clock.advance(10 * DAY)
    new_ok = later(sample_jobs.double, [2])
    jobs.workoff()
    pending = [later(sample_jobs.double, [3]), later(sample_jobs.double, [4], wait=60)]
    assert adapter.prune(clock.now() - DAY, ["failed"]) == 1  # the old failure only
    assert {r.id for r in adapter.list_jobs(limit=None)} == {old_ok, new_ok, *pending}
    assert adapter.prune(clock.now() - DAY) == 1  # the old success
    assert adapter.prune(clock.now() + DAY) == 1  # every finished job: the new success
    assert sorted(r.id for r in adapter.list_jobs(limit=None)) == pending
    assert old_bad not in {r.id for r in adapter.list_jobs(limit=None)}


def test_expired_jobs_are_pruned_in_batches(
    make: type[JobManager], adapter: Adapter, clock: FakeClock
) -> None:
    jobs = make(keep_succeeded=60)
    jobs.create_scheduler().many([(sample_jobs.double, [i]) for i in range(7)])
    jobs.workoff()
    clock.advance(61)
    assert [adapter.prune_expired(limit=3) for _ in range(4)] == [3, 3, 1, 0]
    assert adapter.list_jobs(limit=None) == []


# -- results ------------------------------------------------------------------------------------
def test_a_kept_result_round_trips(make: type[JobManager], clock: FakeClock) -> None:
    jobs = make()
    describe = jobs.create_job(perform=sample_jobs.describe, keep_result=True)
    later = jobs.create_scheduler()
    own = later(describe, kwargs={"b": 1, "a": [1.5, None, "é"]})
    per_call = later(sample_jobs.double, [21], keep_result=True)
    now = clock.now()
    jobs.workoff()
    assert jobs.result(own, timeout=0) == {"fields": ["a", "b"], "count": 2}
    assert jobs.result(per_call, timeout=0) == 42
    record = jobs.get(per_call)
    assert (record.keep_result, record.result, record.keep_until) == (True, 42, now + RESULT_KEEP)


def test_a_result_nested_too_deep_for_json_is_no_failure(make: type[JobManager]) -> None:
    """JSON cannot encode lists nested past the recursion limit (``RecursionError``): the
    job succeeded, so it stays a success without a result; raised, it killed the worker."""
    jobs = make()
    job_id = jobs.create_scheduler()(sample_jobs.nested, [5000], keep_result=True)
    stats = jobs.workoff()
    assert (stats.succeeded, stats.failed) == (1, 0)
    assert jobs.get(job_id).state == "succeeded"
    with pytest.raises(ResultUnavailableError, match="was not JSON"):
        jobs.result(job_id, timeout=0)


def test_result_says_why_there_is_none(
    make: type[JobManager], caplog: pytest.LogCaptureFixture
) -> None:
    jobs = make()
    later = jobs.create_scheduler()
    not_kept = later(sample_jobs.double, [1])
    with pytest.raises(ResultUnavailableError, match="does not keep its result"):
        jobs.result(not_kept, timeout=0)  # at once: waiting would not help
    odd = later(sample_jobs.unstorable, keep_result=True)
    with caplog.at_level(logging.WARNING, logger="litejobs.worker"):
        assert jobs.workoff().succeeded == 2  # a value JSON cannot hold is no failure
    assert "cannot be stored as JSON" in caplog.text
    assert jobs.get(odd).state == "succeeded"
    with pytest.raises(ResultUnavailableError, match="was not JSON"):
        jobs.result(odd, timeout=0)
    with pytest.raises(ResultUnavailableError, match="is gone"):
        jobs.result(not_kept, timeout=0)
    with pytest.raises(JobNotFoundError, match="no job with id 999"):
        jobs.result(999, timeout=0)


def test_result_raises_the_jobs_error_when_it_failed_for_good(make: type[JobManager]) -> None:
    jobs = make()
    job_id = jobs.create_scheduler()(sample_jobs.boom, ["card declined"], max_attempts=1)
    jobs.workoff()
    with pytest.raises(
        JobFailedError, match="failed after 1 attempt: ValueError: card declined"
    ) as e:
        jobs.result(job_id, timeout=0)
    assert e.value.state == "failed" and e.value.job_id == job_id
    assert e.value.error is not None and "Traceback" in e.value.error


def test_result_times_out_while_the_job_waits(make: type[JobManager]) -> None:
    jobs = make()
    job_id = jobs.create_scheduler()(sample_jobs.double, [1], keep_result=True, wait=3600)
    with pytest.raises(ResultTimeoutError, match=f"job {job_id} has not finished after 0 s"):
        jobs.result(job_id, timeout=0)
    with pytest.raises(TimeoutError):  # a TimeoutError too, for code that catches those
        jobs.result(job_id, timeout=0.01)


def test_result_waits_on_the_change_signal_for_another_thread_to_finish_the_job(
    make: type[JobManager], adapter: Adapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The waiter blocks in ``wait_for_outcome`` (SQLite: data_version + inotify; PostgreSQL:
    LISTEN) until a worker in another thread, on its own connection, records the success. Its
    safety re-check is pushed past the timeout: only the signal can wake it in time."""
    monkeypatch.setattr("litejobs.results.RECHECK", 60.0)
    jobs = make()
    job_id = jobs.create_scheduler()(sample_jobs.double, [8], keep_result=True)
    waiting = threading.Event()
    signal = adapter.wait_for_outcome

    woken: list[bool] = []

    def watched(timeout: float) -> bool:
        if timeout > 0:
            waiting.set()
        seen = signal(timeout)
        woken.append(seen)
        return seen

    adapter.wait_for_outcome = watched  # type: ignore[method-assign]
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(jobs.result(job_id, timeout=20)))
    waiter.start()
    assert waiting.wait(10), "result() never waited"
    assert got == []
    worker = threading.Thread(target=jobs.workoff)
    worker.start()
    worker.join(30)
    waiter.join(30)
    assert not waiter.is_alive() and got == [16]
    assert woken[-1], "the waiter was not woken by the change signal"


def test_keep_result_with_keep_succeeded_zero_is_refused(make: type[JobManager]) -> None:
    jobs = make()
    with pytest.raises(ConfigurationError, match="keep_result=True needs its success kept"):
        jobs.create_job(perform=sample_jobs.double, keep_result=True, keep_succeeded=0)
    with pytest.raises(ConfigurationError, match="keep_failed must be"):
        make(keep_failed=-1)
    with pytest.raises(ConfigurationError, match="keep_succeeded must be a timedelta"):
        make(keep_succeeded="1d")


def test_a_batch_keeps_its_results(make: type[JobManager]) -> None:
    jobs = make()
    ids = jobs.create_scheduler().many(
        [(sample_jobs.double, [i]) for i in range(3)], keep_result=True
    )
    jobs.workoff()
    assert [jobs.result(i, timeout=0) for i in ids] == [0, 2, 4]


def test_a_direct_adapter_enqueue_stores_keep_result(adapter: Adapter) -> None:
    job_id = adapter.enqueue(NewJob('{"name":"x","path":"m:x","args":[]}', keep_result=True))
    assert adapter.require(job_id).keep_result is True
