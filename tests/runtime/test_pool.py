"""The pool itself: every worker is a process with its own title, stats come back to the parent,
names already live are refused, housekeeping runs, and the single-worker entry point."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

import pytest

from litejobs import JobManager, SQLiteAdapter, WorkerConfig
from litejobs.errors import ConfigurationError
from litejobs.manager import Scheduler
from litejobs.supervisor import run_single_worker, run_workers

from .conftest import FAST, marks, wait_for

JOBS = "tests.runtime.jobs"


def test_workoff_runs_every_job_in_worker_processes_and_merges_their_stats(
    db: SQLiteAdapter, later: Scheduler, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    for _ in range(30):
        later(f"{JOBS}:slow", [str(trace), 0.01])
    later("tests.sample_jobs:boom", max_attempts=1)
    events: list[str] = []
    groups = [WorkerConfig(count=2, sleep_delay=0.1), WorkerConfig(queue="email")]
    stats = run_workers(
        JobManager({"default": db}),
        groups,
        workoff=True,
        install_signal_handlers=False,
        on_event=lambda kind, data: events.append(kind),
    )
    assert (stats.ran, stats.succeeded, stats.failed) == (31, 30, 1)
    assert stats.errors and "boom" in stats.errors[0]
    assert len(marks(trace, "done")) == 30
    assert events.count("worker_started") == 3 and events.count("worker_exited") == 3
    assert "maintenance" in events
    assert [(j.state, j.name) for j in db.list_jobs()] == [("failed", "boom")]


def test_worker_processes_carry_their_names_as_titles(pools) -> None:
    pool = pools({"count": 2})

    def titles() -> list[bytes]:
        found = []
        for pid in pool.workers():
            with contextlib.suppress(OSError):
                found.append(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0])
        return sorted(found)

    # A title is set first thing after the fork: wait for it rather than race it.
    expected = [b"litejobs-worker.*.0", b"litejobs-worker.*.1"]
    wait_for(lambda: titles() == expected, 15, f"titles {expected}")
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


def test_a_second_runner_works_under_free_names_next_to_a_live_one(
    pools, db: SQLiteAdapter, later: Scheduler, tmp_path: Path
) -> None:
    """Next to a live pool (litejobs-worker.*.0), a second runner -- here a workoff -- takes
    the first free name and runs, touching nothing of the live worker's: two runners never
    run two live processes under one name."""
    pool = pools()
    wait_for(lambda: db.workers(), 15, "the first pool's worker to register")
    [live] = db.workers()
    names: list[str] = []
    job_id = later(f"{JOBS}:touch", [str(tmp_path / "t")])
    manager = JobManager({"default": db})
    worker = manager.worker(WorkerConfig(**FAST), worker_id=0, pick_free=True)
    stats = worker.run(workoff=True)
    names.append(worker.name)
    assert not stats.any_error
    assert names[0].endswith("litejobs-worker.*.1"), names
    wait_for(lambda: db.get(job_id) is None, 15, "the job to run (in either runner)")
    assert [w.token for w in db.workers()] == [live.token], "the live worker was left alone"
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


def test_two_groups_that_would_share_a_name_are_refused(db: SQLiteAdapter) -> None:
    groups = [WorkerConfig(queue="email"), WorkerConfig(queue="email", count=2)]
    with pytest.raises(ConfigurationError, match=r"share the name litejobs-worker\.email\.0"):
        run_workers(JobManager({"default": db}), groups, workoff=True)


def test_single_worker_workoff_and_clear(
    db: SQLiteAdapter, later: Scheduler, tmp_path: Path
) -> None:
    manager = JobManager({"default": db})
    later(f"{JOBS}:touch", [str(tmp_path / "t")])
    stats = run_single_worker(manager, WorkerConfig(), 3, workoff=True)
    assert (stats.ran, stats.succeeded) == (1, 1)
    assert marks(tmp_path / "t", "done")
    later(f"{JOBS}:touch", [str(tmp_path / "t")], wait=60)
    assert run_single_worker(manager, WorkerConfig(), 3, clear=True).ran == 0
    assert db.counts() == {}


def test_workoff_does_not_replace_a_dead_worker_but_releases_its_job(
    db: SQLiteAdapter, later: Scheduler, tmp_path: Path
) -> None:
    job_id = later(f"{JOBS}:crash", [str(tmp_path / "t")])
    stats = run_workers(
        JobManager({"default": db}), [WorkerConfig()], workoff=True, install_signal_handlers=False
    )
    assert stats.any_error and "killed by signal 9" in stats.errors[0]
    record = db.require(job_id)
    assert (record.state, record.attempts, record.locked_by) == ("ready", 1, None)
    assert "stopped during attempt 1" in (record.last_error or "")
    assert db.workers() == []


def test_a_crash_on_the_last_attempt_counts_as_failed_and_honours_delete_failed_jobs(
    db: SQLiteAdapter, later: Scheduler, tmp_path: Path
) -> None:
    """Before, workoff's summary said "0 failed, 1 errored (will retry)" for a job that failed
    for good by crashing its worker, and the crash path kept its row even when the group
    deletes failed jobs."""
    job_id = later(f"{JOBS}:crash", [str(tmp_path / "t")], max_attempts=1)
    stats = run_workers(
        JobManager({"default": db}),
        [WorkerConfig(delete_failed_jobs=True)],
        workoff=True,
        install_signal_handlers=False,
    )
    assert (stats.failed, stats.errored, stats.crashed) == (1, 0, 1)
    assert f"job(s): {job_id}" in stats.errors[0]
    assert db.get(job_id) is None, "deleted, as its group deletes failed jobs"
