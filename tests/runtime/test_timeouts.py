"""Hard timeouts: a job past ``max_runtime`` is stopped in-band and recorded "timed out after N
s"; a job that ignores the interruption is abandoned by the watchdog, which exits the worker
process (EXIT_STUCK) for the supervisor to replace."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from litejobs import JobManager, SQLiteAdapter, WorkerConfig
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
