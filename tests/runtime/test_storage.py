"""Storage unavailable: another process holds the write lock for seconds. Workers log, back
off and carry on; the job a worker holds is recorded once the lock is free, never lost."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import apsw

from litejobs import SQLiteAdapter
from litejobs.manager import Scheduler

from .conftest import marks, wait_for

JOBS = "tests.runtime.jobs"


def test_workers_survive_a_long_write_lock_and_lose_nothing(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    pool = pools({}, "--busy-timeout", "0.1")
    (worker,) = wait_for(pool.workers, 15, "the worker")
    slow_id = later(f"{JOBS}:slow", [str(trace), 0.3])
    later(f"{JOBS}:touch", [str(tmp_path / "after")], wait=1)  # due while the lock is held
    wait_for(lambda: marks(trace, "started"), 10, "the job to start")
    blocker = apsw.Connection(os.fspath(tmp_path / "jobs.db"))
    blocker.execute("BEGIN IMMEDIATE")
    try:
        wait_for(lambda: marks(trace, "done"), 10, "the job to finish under the lock")
        time.sleep(2.0)  # the lock is the point of this test: hold it for a while
        assert db.get(slow_id) is not None  # not recorded yet: the outcome is pending
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    wait_for(lambda: db.get(slow_id) is None, 10, "the held outcome to be recorded")
    wait_for(lambda: marks(tmp_path / "after", "done"), 10, "the next job to run")
    assert pool.workers() == [worker]  # it never died
    assert "retrying" in pool.log_text()
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0
