"""Worker identity with real processes: runners sharing a database never share a worker name,
never take a live worker's job, and judge each other by each one's own deadline.

(The rules one by one are in tests/test_adapter_contract.py; these show them in real pools.)
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from litejobs import SQLiteAdapter
from litejobs.manager import Scheduler

from .conftest import marks, wait_for

JOBS = "tests.runtime.jobs"


def test_two_runners_started_at_the_same_instant_get_distinct_names(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    """Before, both ran litejobs-worker.*.0, and when one twin died its replacement's
    registration released the other twin's running job, which started again."""
    trace = tmp_path / "trace"
    first, second = pools({"stale_after": 60}), pools({"stale_after": 60})
    wait_for(lambda: len(db.workers()) == 2, 15, "both runners' workers to register")
    names = sorted(w.name.rsplit("/", 1)[1] for w in db.workers())
    assert names == ["litejobs-worker.*.0", "litejobs-worker.*.1"]
    later(f"{JOBS}:slow", [str(trace), 3])
    (runner,) = wait_for(lambda: marks(trace, "started"), 15, "the job to start")
    other = first if runner in first.workers() else second
    victim = (second if other is first else first).workers()[0]
    assert victim != runner
    os.kill(victim, signal.SIGKILL)  # a twin dies; its replacement registers...
    wait_for(lambda: marks(trace, "done"), 15, "the job to finish where it started")
    assert marks(trace, "started") == [runner], "the job started again while it ran"
    for pool in (first, second):
        pool.signal(signal.SIGTERM)
        assert pool.wait() == 0


def test_groups_with_different_settings_never_take_each_others_live_jobs(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    """A group that heartbeats every 2 s (12 s deadline) runs a 5 s job next to a group whose
    own deadline is 1 s: before, the fast group judged the slow one by its own 1 s, released
    the job while it ran, and the slow group's other worker started it again."""
    trace = tmp_path / "trace"
    slow = pools({"queue": "slow", "count": 2, "stale_after": 12, "heartbeat_interval": 2})
    fast = pools({"queue": "other", "stale_after": 1, "heartbeat_interval": 0.2})
    wait_for(lambda: len(db.workers()) == 3, 15, "both groups' workers to register")
    later(f"{JOBS}:slow", [str(trace), 5], queue="slow")
    wait_for(lambda: marks(trace, "done"), 20, "the slow group's job to finish")
    assert len(marks(trace, "started")) == 1, "the job started twice while its worker lived"
    assert marks(trace, "started") == marks(trace, "done")
    for pool in (slow, fast):
        pool.signal(signal.SIGTERM)
        assert pool.wait() == 0


def test_jobs_workoff_next_to_a_live_pool_leaves_its_running_job_alone(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    """`jobs.workoff()` in some process (a web app, a script) next to a live `litejobs work`:
    before, it took the live worker's name, released its running job (which started again in
    the workoff) and deregistered the live worker's row when it ended."""
    from litejobs import JobManager

    trace = tmp_path / "trace"
    pool = pools({"stale_after": 60})
    later(f"{JOBS}:slow", [str(trace), 3])
    (runner,) = wait_for(lambda: marks(trace, "started"), 15, "the pool to start the job")
    [live] = db.workers()
    stats = JobManager({"default": db}).workoff()
    assert stats.ran == 0, "the workoff ran the live pool's job"
    assert [w.token for w in db.workers()] == [live.token], "the live worker's row is intact"
    wait_for(lambda: marks(trace, "done"), 15, "the job to finish where it started")
    assert marks(trace, "started") == [runner]
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


def test_a_worker_whose_row_is_deleted_keeps_its_running_job(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    """A person deletes the worker rows while a job runs. Before, the worker never registered
    again and every other worker "recovered" its job while it ran; now its heartbeat brings the
    row back and nobody takes the job meanwhile."""
    import apsw

    trace = tmp_path / "trace"
    pool = pools({"count": 2, "stale_after": 1, "heartbeat_interval": 0.2, "sleep_delay": 0.1})
    wait_for(lambda: len(db.workers()) == 2, 15, "two workers")
    later(f"{JOBS}:slow", [str(trace), 3])
    wait_for(lambda: marks(trace, "started"), 15, "the job to start")
    conn = apsw.Connection(db.path)
    conn.set_busy_timeout(10_000)
    conn.execute("DELETE FROM litejobs_workers")
    conn.close()
    wait_for(lambda: marks(trace, "done"), 15, "the job to finish")
    assert len(marks(trace, "started")) == 1, "the job started again while its worker lived"
    wait_for(lambda: len(db.workers()) == 2, 5, "the heartbeats to bring both rows back")
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0
