"""Stopping: the first SIGINT/SIGTERM lets running jobs finish, the second stops now; workers
whose supervisor died finish their job and exit, so nothing is orphaned."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from litejobs import SQLiteAdapter
from litejobs.manager import Scheduler

from .conftest import ROOT, alive, group_members, marks, wait_for

JOBS = "tests.runtime.jobs"


def test_sigint_during_a_job_lets_it_finish_then_everything_exits(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    pool = pools({"count": 2})
    wait_for(lambda: len(pool.workers()) == 2, 15, "two workers")
    job_id = later(f"{JOBS}:slow", [str(trace), 1.0])
    wait_for(lambda: marks(trace, "started"), 15, "the job to start")
    pool.signal(signal.SIGINT)
    assert pool.wait() == 0
    assert marks(trace, "done") == marks(trace, "started")  # finished, in the same process
    assert db.get(job_id) is None
    assert group_members(pool.pid) == []
    assert db.workers() == []  # deregistered cleanly


def test_second_sigint_stops_now_and_the_job_is_picked_up_again(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    pool = pools({"stale_after": 60})
    job_id = later(f"{JOBS}:slow_once", [str(trace), 60])
    wait_for(lambda: marks(trace, "started"), 15, "the job to start")
    pool.signal(signal.SIGINT)
    # Signals do not queue: send the second once the first has been acted on.
    wait_for(lambda: "stopping:" in pool.log_text(), 10, "the first SIGINT to be handled")
    pool.signal(signal.SIGINT)
    pool.wait(10)
    assert marks(trace, "done") == []
    assert group_members(pool.pid) == []
    # A stop that cannot wait gives the job back at once, its attempt counted: nothing waits
    # for a heartbeat to go stale or for a worker of the same name to start.
    record = db.require(job_id)
    assert (record.state, record.attempts, record.lock_token) == ("ready", 1, None)
    assert "stopped: worker" in (record.last_error or "")
    assert db.workers() == []
    again = pools({"stale_after": 60}, "--workoff")
    assert again.wait() == 0
    assert len(marks(trace, "done")) == 1
    assert db.get(job_id) is None


def test_workers_finish_their_job_and_exit_when_the_supervisor_is_killed(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    pool = pools({"count": 2})
    wait_for(lambda: len(pool.workers()) == 2, 15, "two workers")
    workers = pool.workers()
    job_id = later(f"{JOBS}:slow", [str(trace), 1.0])
    wait_for(lambda: marks(trace, "started"), 15, "the job to start")
    pool.signal(signal.SIGKILL)
    pool.wait()
    wait_for(lambda: not any(alive(w) for w in workers), 10, "orphaned workers to exit")
    assert marks(trace, "done") == marks(trace, "started")
    assert db.get(job_id) is None
    assert db.workers() == []


def test_sigterm_to_the_whole_group_is_still_graceful(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    """systemd's default KillMode signals every process of the unit, not just the supervisor."""
    trace = tmp_path / "trace"
    pool = pools()
    job_id = later(f"{JOBS}:slow", [str(trace), 1.0])
    wait_for(lambda: marks(trace, "started"), 15, "the job to start")
    os.killpg(pool.pid, signal.SIGTERM)
    assert pool.wait() == 0
    assert marks(trace, "done") == marks(trace, "started")
    assert db.get(job_id) is None


def test_litejobs_work_ctrl_c_lets_the_job_finish(
    later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    """The same through the command line: ``litejobs work`` relays Ctrl-C to its workers."""
    trace = tmp_path / "trace"
    job_id = later(f"{JOBS}:slow", [str(trace), 1.0])
    argv = ["--db", str(tmp_path / "jobs.db"), "--path", str(ROOT), "work", "-n", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "litejobs", *argv],
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
    )
    try:
        wait_for(lambda: marks(trace, "started"), 20, "the job to start")
        os.killpg(process.pid, signal.SIGINT)  # what a terminal does: the whole group
        _, err = process.communicate(timeout=15)
        assert process.returncode == 0, err
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    assert marks(trace, "done") == marks(trace, "started")
    assert db.get(job_id) is None
    assert group_members(process.pid) == []
