"""Hard timeouts: a job past ``max_runtime`` is stopped in-band and recorded "timed out after N
s"; a job that ignores the interruption is abandoned by the watchdog, which exits the worker
process (EXIT_STUCK) for the supervisor to replace."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from litejobs import JobManager, SQLiteAdapter, WorkerConfig
from litejobs.errors import JobTimeoutError
from litejobs.manager import Scheduler
from litejobs.supervisor import run_workers

from .conftest import marks, wait_for

JOBS = "tests.runtime.jobs"


def test_a_job_sleeping_past_max_runtime_is_stopped_recorded_and_retried(
    db: SQLiteAdapter, later: Scheduler
) -> None:
    job_id = later(f"{JOBS}:sleep", [30])
    config = WorkerConfig(max_runtime=2, sleep_delay=0.1)
    stats = run_workers(
        JobManager({"default": db}), [config], workoff=True, install_signal_handlers=False
    )
    assert (stats.ran, stats.errored) == (1, 1)
    record = db.require(job_id)
    assert record.state == "scheduled"  # retried after the backoff (1 s after attempt 1)
    assert record.attempts == 1
    assert "timed out after 2 s" in (record.last_error or "")


@pytest.mark.parametrize("job", ["ignore_timeout", "block_signals"])
def test_a_job_that_ignores_its_timeout_is_abandoned_and_the_worker_replaced(
    job: str, pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    pool = pools({"max_runtime": 1, "max_attempts": 1})
    (first,) = wait_for(pool.workers, 15, "the worker")
    job_id = later(f"{JOBS}:{job}", [str(trace), 60])

    def failed() -> bool:
        record = db.get(job_id)
        return record is not None and record.state == "failed"

    wait_for(failed, 15, "the watchdog to record the stuck job")
    assert "timed out after 1 s (the job did not stop" in (db.require(job_id).last_error or "")
    replacement = wait_for(lambda: [w for w in pool.workers() if w != first], 10, "a new worker")
    assert first not in pool.workers()
    done = tmp_path / "done"
    later(f"{JOBS}:touch", [str(done)])
    wait_for(lambda: marks(done, "done") == replacement, 10, "the replacement to run jobs")
    assert "replacing it" in pool.log_text()
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


def test_hooks_that_hang_after_a_success_keep_it_a_success(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    """A job's outcome is decided when its call ends. An ``after_success`` hook that hangs
    past ``max_runtime`` (+ grace) gets the success recorded by the watchdog before the worker
    process is replaced; counted as a timeout, the finished job would run again."""
    trace = tmp_path / "trace"
    config = {"max_runtime": 1, "delete_successful_jobs": False}
    pool = pools(config, "--setup", f"{JOBS}:hang_after_success")
    (first,) = wait_for(pool.workers, 15, "the worker")
    job_id = later(f"{JOBS}:ran_then_hooks_hang", [str(trace)])

    def settled() -> bool:
        record = db.get(job_id)
        return record is not None and record.state not in ("ready", "reserved", "running")

    wait_for(settled, 15, "the watchdog to record the job")
    record = db.require(job_id)
    assert (record.state, record.attempts, record.last_error) == ("succeeded", 1, None)
    replacement = wait_for(lambda: [w for w in pool.workers() if w != first], 10, "a new worker")
    done = tmp_path / "done"
    later(f"{JOBS}:touch", [str(done)])
    wait_for(lambda: marks(done, "done") == replacement, 10, "the replacement to run jobs")
    assert marks(trace, "ran") == [first]  # never run again
    assert "hooks after it ran past 1 s; outcome kept" in pool.log_text()
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


# -- only litejobs' own deadline is a timeout ------------------------------------------------------
def _record_failures(jobs: JobManager) -> list[BaseException | None]:
    seen: list[BaseException | None] = []
    jobs.hook("after_failure")(lambda ctx: seen.append(ctx.error))
    return seen


@pytest.mark.parametrize(
    ("job", "message", "where"),
    [
        ("socket_timeout", "TimeoutError: timed out", "left.recv(1)"),
        ("own_wait_for", "TimeoutError", "await asyncio.wait_for(asyncio.sleep(30), 0.05)"),
    ],
)
def test_a_jobs_own_timeout_error_is_its_error_not_a_litejobs_timeout(
    db: SQLiteAdapter, job: str, message: str, where: str
) -> None:
    jobs = JobManager({"default": db}, workers=[WorkerConfig(max_runtime=30, sleep_delay=0)])
    seen = _record_failures(jobs)
    job_id = jobs.create_scheduler()(f"{JOBS}:{job}")
    stats = jobs.workoff()
    assert (stats.ran, stats.errored) == (1, 1)
    error = db.require(job_id).last_error or ""
    assert error.partition("\n")[0] == message  # not "JobTimeoutError: timed out after 30 s"
    assert where in error  # the job's own traceback is kept
    [hooked] = seen
    assert type(hooked) is TimeoutError and not isinstance(hooked, JobTimeoutError)


@pytest.mark.parametrize("job", ["sleep", "own_wait_for"])
def test_litejobs_own_deadline_is_still_a_timeout(db: SQLiteAdapter, job: str) -> None:
    """With max_runtime shorter than the job's own wait, ours fires first: a timeout."""
    jobs = JobManager({"default": db}, workers=[WorkerConfig(max_runtime=0.01, sleep_delay=0)])
    seen = _record_failures(jobs)
    job_id = jobs.create_scheduler()(f"{JOBS}:{job}", [5] if job == "sleep" else [])
    assert jobs.workoff().errored == 1
    assert (db.require(job_id).last_error or "") == "JobTimeoutError: timed out after 0.01 s"
    [hooked] = seen
    assert isinstance(hooked, JobTimeoutError)


# -- a job that returned is a success, whenever its alarm fires ------------------------------------
def test_an_alarm_firing_just_after_the_job_returned_changes_nothing(db: SQLiteAdapter) -> None:
    jobs = JobManager({"default": db}, workers=[WorkerConfig(max_runtime=30, sleep_delay=0)])
    later = jobs.create_scheduler()
    ids = [later(f"{JOBS}:returns_as_its_alarm_fires"), later(f"{JOBS}:touch", [os.devnull])]
    stats = jobs.workoff(replace(jobs.workers[0], delete_successful_jobs=False))
    assert (stats.succeeded, stats.errored) == (2, 0), stats.errors
    assert [db.require(i).state for i in ids] == ["succeeded", "succeeded"]


def test_the_alarm_handler_tells_a_running_job_from_a_returned_one(db: SQLiteAdapter) -> None:
    jobs = JobManager({"default": db}, workers=[WorkerConfig(max_runtime=30, sleep_delay=0)])
    jobs.create_scheduler()(f"{JOBS}:alarm_in_its_own_frame_and_its_callers")
    stats = jobs.workoff()
    assert (stats.succeeded, stats.errored) == (1, 0), stats.errors
