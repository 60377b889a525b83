"""Crash recovery with real processes and real ``kill -9``: a dead worker is replaced and its job
runs again at once; a dead pool's jobs are picked up by the next one without waiting
``max_runtime``; a job that kills its worker every time ends failed after ``max_attempts``."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from litejobs import SQLiteAdapter
from litejobs.manager import Scheduler

from .conftest import alive, marks, wait_for

JOBS = "tests.runtime.jobs"


def test_kill9_worker_mid_job_is_replaced_and_the_job_runs_again(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    pool = pools({"stale_after": 60})  # only same-name reclaim can make this fast
    job_id = later(f"{JOBS}:slow_once", [str(trace), 60])
    (first,) = wait_for(lambda: marks(trace, "started"), 15, "the job to start")
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: marks(trace, "done"), 10, "the job to run again and finish")
    (second,) = marks(trace, "done")
    assert second != first and alive(second)  # a new worker process did it
    assert pool.workers() == [second]
    wait_for(lambda: db.get(job_id) is None, 5, "the job to be recorded (deleted)")
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


def test_kill9_whole_pool_then_a_new_pool_with_the_same_names_reclaims_at_once(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    old = pools({"stale_after": 60})
    job_id = later(f"{JOBS}:slow_once", [str(trace), 60])
    wait_for(lambda: marks(trace, "started"), 15, "the job to start")
    old.kill_all()
    record = db.get(job_id)
    assert record is not None and record.state == "running"
    new = pools({"stale_after": 60})
    wait_for(lambda: marks(trace, "done"), 10, "the new pool to run the orphaned job")
    wait_for(lambda: db.get(job_id) is None, 5, "the job to be recorded")
    new.signal(signal.SIGINT)
    assert new.wait() == 0


def test_kill9_whole_pool_then_other_names_recover_after_stale_after(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    old = pools({"stale_after": 1.0})
    later(f"{JOBS}:slow_once", [str(trace), 60])
    wait_for(lambda: marks(trace, "started"), 15, "the job to start")
    old.kill_all()
    new = pools({"stale_after": 1.0}, "--ids", "7")
    wait_for(lambda: marks(trace, "done"), 10, "a worker with another name to recover the job")
    assert marks(trace, "done") == new.workers()  # done by the new pool's worker
    assert {w.name.rsplit(".", 1)[1] for w in db.workers() if w.pid in new.workers()} == {"7"}
    new.signal(signal.SIGTERM)
    assert new.wait() == 0


def test_a_job_that_kills_its_worker_every_time_ends_failed(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    pool = pools({"max_attempts": 3, "stale_after": 60})
    job_id = later(f"{JOBS}:crash", [str(trace)])

    def failed() -> bool:
        record = db.get(job_id)
        return record is not None and record.state == "failed"

    wait_for(failed, 20, "the crashing job to fail for good")
    record = db.require(job_id)
    assert record.attempts == 3
    assert "stopped during attempt 3" in (record.last_error or "")
    assert len(marks(trace, "started")) == 3  # never run again after failing
    # The pool is still whole and still works.
    done = tmp_path / "done"
    later(f"{JOBS}:touch", [str(done)])
    wait_for(lambda: marks(done, "done"), 10, "a normal job after the crash loop")
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


def test_a_worker_stopped_on_its_own_is_started_again(pools, db: SQLiteAdapter) -> None:
    pool = pools({"count": 2})
    first = wait_for(lambda: len(pool.workers()) == 2 and pool.workers(), 15, "two workers")
    os.kill(first[0], signal.SIGTERM)  # graceful stop of one worker, not of the pool
    wait_for(
        lambda: len(pool.workers()) == 2 and first[0] not in pool.workers(), 10, "a replacement"
    )
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


def test_status_and_list_flag_a_running_job_whose_worker_is_gone(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    """The whole pool is killed mid-job: until some worker looks, the job is `running` with no
    worker -- `status` and `list` say so instead of showing a healthy running job."""
    import json
    import subprocess
    import sys

    trace = tmp_path / "trace"
    pool = pools({"stale_after": 60})
    job_id = later(f"{JOBS}:slow_once", [str(trace), 60])
    wait_for(lambda: marks(trace, "started"), 15, "the job to start")
    pool.kill_all()

    def cli(*args: str) -> object:
        done = subprocess.run(
            [sys.executable, "-m", "litejobs", "--db", db.path, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    status = cli("status", "--json")
    assert status["held_by_gone_workers"] == [job_id]  # type: ignore[index]
    assert [w["alive"] for w in status["workers"]] == [False]  # type: ignore[index]
    assert "is gone" in status["workers"][0]["gone"]  # type: ignore[index]
    (listed,) = cli("list", "--json")  # type: ignore[misc]
    assert (listed["state"], listed["worker_gone"]) == ("running", True)
