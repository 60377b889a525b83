"""The shortest end-to-end path: schedule with ``later`` and run with ``workoff``."""

from __future__ import annotations

from litejobs import FakeClock, JobManager, SQLiteAdapter

from . import sample_jobs


def test_later_then_workoff_runs_the_job(db_path, clock: FakeClock) -> None:
    jobs = JobManager(adapters={"sqlite": SQLiteAdapter(db_path)}, clock=clock)
    later = jobs.create_scheduler()
    sample_jobs.CALLS.clear()
    job_id = later(sample_jobs.record, ["hello"])
    stats = jobs.workoff()
    assert stats.succeeded == 1
    assert sample_jobs.CALLS == ["hello"]
    assert jobs.adapter().get(job_id) is None  # deleted on success by default
