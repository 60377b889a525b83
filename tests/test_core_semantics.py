"""Execution semantics through the public API: ``JobManager``, ``later`` and a real
:class:`~litejobs.worker.Worker` running jobs from a real SQLite file.

Why: these are the promises users build on -- the exact backoff, when a job fails for good, what
is kept, that a broken handler is a job error and not a dead worker, and what ``last_error``
holds. Time is a :class:`~litejobs.clock.FakeClock`: a retry 81 s away is reached by moving the
clock, not by waiting. Only the hard-timeout tests sleep for real (a fraction of a second),
because interrupting a running job is what they test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import litejobs
from litejobs import FakeClock, JobManager, SQLiteAdapter, WorkerConfig, current_job
from litejobs.adapters.base import Adapter, JobRecord

from . import sample_jobs


@pytest.fixture
def jobs(db_path: Path, clock: FakeClock) -> Iterator[JobManager]:
    manager = JobManager(adapters={"sqlite": SQLiteAdapter(db_path)}, clock=clock)
    sample_jobs.CALLS.clear()
    sample_jobs.CONTEXTS.clear()
    yield manager
    manager.adapter().close()


def row(jobs: JobManager, job_id: int) -> JobRecord:
    record = jobs.adapter().get(job_id)
    assert record is not None, f"job {job_id} is gone"
    return record


def test_backoff_is_attempts_to_the_fourth(jobs: JobManager, clock: FakeClock) -> None:
    job_id = jobs.create_scheduler()(sample_jobs.boom, ["kaboom"])
    config = WorkerConfig(max_attempts=5)
    for attempt, delay in [(1, 1), (2, 16), (3, 81), (4, 256)]:
        stats = jobs.workoff(config)
        assert (stats.ran, stats.errored, stats.failed) == (1, 1, 0)
        record = row(jobs, job_id)
        assert record.attempts == attempt
        assert record.run_at is not None and record.run_at - clock.now() == delay
        assert (record.state, record.locked_by, record.locked_at) == ("scheduled", None, None)
        clock.advance(delay - 0.001)
        assert jobs.workoff(config).ran == 0  # never early
        clock.advance(0.001)
    stats = jobs.workoff(config)
    assert (stats.ran, stats.failed) == (1, 1)
    assert row(jobs, job_id).state == "failed"


def test_failure_at_the_workers_max_attempts(jobs: JobManager, clock: FakeClock) -> None:
    job_id = jobs.create_scheduler()(sample_jobs.boom)
    config = WorkerConfig(max_attempts=2)
    assert jobs.workoff(config).errored == 1
    clock.advance(1)
    stats = jobs.workoff(config)
    assert (stats.errored, stats.failed) == (0, 1)
    record = row(jobs, job_id)
    assert (record.state, record.attempts, record.run_at) == ("failed", 2, None)
    assert record.failed_at == clock.now()
    assert record.last_error is not None and record.last_error.startswith("ValueError: boom")
    clock.advance(10**6)
    assert jobs.workoff(config).ran == 0  # failed jobs are never picked again


def test_a_jobs_own_max_attempts_beats_the_workers(jobs: JobManager, clock: FakeClock) -> None:
    patient = jobs.create_job(perform=sample_jobs.boom, max_attempts=3)
    later = jobs.create_scheduler()
    generous = later(patient, ["patient"])
    strict = later(sample_jobs.boom, ["strict"], max_attempts=1)  # per call
    plain = later(sample_jobs.boom, ["plain"])
    config = WorkerConfig(max_attempts=2)
    runs = []
    for delay in (1, 16, 81):
        runs.append(jobs.workoff(config).ran)
        clock.advance(delay)
    assert runs == [3, 2, 1]
    assert (row(jobs, strict).state, row(jobs, strict).attempts) == ("failed", 1)
    assert (row(jobs, plain).state, row(jobs, plain).attempts) == ("failed", 2)
    assert (row(jobs, generous).state, row(jobs, generous).attempts) == ("failed", 3)
    assert row(jobs, generous).max_attempts == 3


def test_successful_jobs_are_deleted_by_default_or_kept(jobs: JobManager, clock: FakeClock) -> None:
    later = jobs.create_scheduler()
    gone = later(sample_jobs.record, [1])
    assert jobs.workoff().succeeded == 1
    assert jobs.adapter().get(gone) is None
    kept = later(sample_jobs.record, [2])
    clock.advance(7)
    assert jobs.workoff(WorkerConfig(delete_successful_jobs=False)).succeeded == 1
    record = row(jobs, kept)
    assert (record.state, record.attempts, record.updated_at) == ("succeeded", 1, clock.now())
    assert (record.run_at, record.locked_at, record.locked_by, record.last_error) == (None,) * 4
    assert sample_jobs.CALLS == [1, 2]


def test_failed_jobs_are_kept_by_default_or_deleted(jobs: JobManager) -> None:
    later = jobs.create_scheduler()
    kept = later(sample_jobs.boom, max_attempts=1)
    assert jobs.workoff().failed == 1
    assert row(jobs, kept).state == "failed"
    gone = later(sample_jobs.boom, max_attempts=1)
    assert jobs.workoff(WorkerConfig(delete_failed_jobs=True)).failed == 1
    assert jobs.adapter().get(gone) is None
    assert row(jobs, kept).state == "failed"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nosuch.module:f", "HandlerNotFoundError: cannot import module 'nosuch.module'"),
        ("tests.sample_jobs:removed_long_ago", "HandlerNotFoundError: module 'tests.sample_jobs'"),
    ],
)
def test_unimportable_handler_is_retried_then_failed(
    jobs: JobManager, clock: FakeClock, path: str, message: str
) -> None:
    job_id = litejobs.enqueue(path, [1], db=jobs.adapter(), check=False)
    config = WorkerConfig(max_attempts=2)
    stats = jobs.workoff(config)  # the worker survives and records an error
    assert (stats.ran, stats.errored) == (1, 1)
    record = row(jobs, job_id)
    assert record.last_error is not None and record.last_error.startswith(message)
    assert record.run_at == clock.now() + 1
    clock.advance(1)
    assert jobs.workoff(config).failed == 1
    assert row(jobs, job_id).state == "failed"


def test_wrong_arguments_stored_unchecked_are_a_job_error(jobs: JobManager) -> None:
    # later() refuses them; a producer without the job's code (check=False) cannot know.
    job_id = litejobs.enqueue("tests.sample_jobs:record", [1, 2, 3], db=jobs.adapter(), check=False)
    assert jobs.workoff().errored == 1
    assert (row(jobs, job_id).last_error or "").startswith("TypeError: ")


def test_last_error_keeps_type_message_and_traceback(jobs: JobManager) -> None:
    job_id = jobs.create_scheduler()(sample_jobs.boom, ["the disk is on fire"])
    stats = jobs.workoff()
    error = row(jobs, job_id).last_error
    assert error is not None
    head, _, rest = error.partition("\n\n")
    assert head == "ValueError: the disk is on fire"
    assert rest.startswith("Traceback (most recent call last):")
    assert "sample_jobs.py" in rest and "in boom" in rest
    assert rest.rstrip().endswith("ValueError: the disk is on fire")
    assert stats.errors == [f"job {job_id} boom: ValueError: the disk is on fire"]


def test_async_jobs_run_to_completion(jobs: JobManager) -> None:
    later = jobs.create_scheduler()
    later(sample_jobs.async_record, ["async"])
    failing = later(sample_jobs.async_boom, ["async failure"])
    stats = jobs.workoff()
    assert (stats.succeeded, stats.errored) == (1, 1)
    assert sample_jobs.CALLS == ["async"]
    error = row(jobs, failing).last_error or ""
    assert error.startswith("RuntimeError: async failure\n\nTraceback")


def test_perform_runs_inline_sync_and_async(jobs: JobManager) -> None:
    job = jobs.create_job(perform=sample_jobs.record)
    async_job = jobs.create_job(perform=sample_jobs.async_record)
    job.perform("inline")
    async_job.perform("inline async")
    job("called")
    assert sample_jobs.CALLS == ["inline", "inline async", "called"]
    assert jobs.adapter().counts() == {}  # nothing was stored


def test_current_job_inside_a_job(jobs: JobManager, clock: FakeClock) -> None:
    later = jobs.create_scheduler()
    job_id = later(sample_jobs.remember_context, queue="ctx", priority=7)
    worker = jobs.worker(WorkerConfig(queue="ctx", max_attempts=9), worker_id=3)
    assert worker.run(workoff=True).succeeded == 1
    (ctx,) = sample_jobs.CONTEXTS
    assert ctx is not None
    assert (ctx.id, ctx.name, ctx.path, ctx.queue, ctx.priority) == (
        job_id,
        "remember_context",
        "tests.sample_jobs:remember_context",
        "ctx",
        7,
    )
    assert (ctx.attempts, ctx.max_attempts, ctx.args) == (1, 9, [])
    assert ctx.worker == worker.name and ctx.worker.endswith("/litejobs-worker.ctx.3")
    assert current_job() is None  # outside a job
    sample_jobs.remember_context()  # called directly, not by a worker
    assert sample_jobs.CONTEXTS[-1] is None


def test_current_job_inside_an_async_job(jobs: JobManager) -> None:
    job_id = jobs.create_scheduler()(sample_jobs.async_remember_context)
    assert jobs.workoff().succeeded == 1
    (ctx,) = sample_jobs.CONTEXTS
    assert ctx is not None and (ctx.id, ctx.name) == (job_id, "async_remember_context")


@pytest.mark.parametrize("func", [sample_jobs.nap, sample_jobs.async_nap])
def test_hard_timeout_in_process(jobs: JobManager, clock: FakeClock, func: object) -> None:
    job_id = jobs.create_scheduler()(func, [30])  # would sleep 30 s
    stats = jobs.workoff(WorkerConfig(max_runtime=0.2))
    assert (stats.ran, stats.errored) == (1, 1)
    record = row(jobs, job_id)
    assert record.last_error is not None
    assert record.last_error.startswith("JobTimeoutError: timed out after 0.2 s")
    assert record.run_at == clock.now() + 1  # retried per the backoff
    assert record.state == "scheduled"


def test_a_job_cannot_swallow_its_timeout(jobs: JobManager) -> None:
    """``except Exception:`` in a job does not catch the timeout: it is still an error."""
    job_id = jobs.create_scheduler()(sample_jobs.swallow_everything, [30])
    stats = jobs.workoff(WorkerConfig(max_runtime=0.2))
    assert (stats.succeeded, stats.errored) == (0, 1)
    assert sample_jobs.CALLS == []
    error = row(jobs, job_id).last_error or ""
    assert error.startswith("JobTimeoutError: timed out after 0.2 s")


def test_a_jobs_sys_exit_is_its_outcome_not_the_workers(jobs: JobManager) -> None:
    """A job that calls ``sys.exit`` (a CLI's ``main()`` reused as a job) neither stops the
    worker nor is lost: status 0/None is a success, anything else a job error, as for a process."""
    later = jobs.create_scheduler()
    ok = [later(sample_jobs.exit_with, [code]) for code in (0, None)]
    bad = [later(sample_jobs.exit_with, [code]) for code in (3, "usage: x")]
    stats = jobs.workoff(WorkerConfig(delete_successful_jobs=False))
    assert (stats.succeeded, stats.errored) == (2, 2)
    assert sample_jobs.CALLS == [0, None, 3, "usage: x"]
    assert [row(jobs, job_id).state for job_id in ok] == ["succeeded", "succeeded"]
    errors = [(row(jobs, job_id).last_error or "").partition("\n")[0] for job_id in bad]
    assert errors == ["SystemExit: 3", "SystemExit: usage: x"]


def test_workoff_stops_when_nothing_is_eligible_now(jobs: JobManager, clock: FakeClock) -> None:
    later = jobs.create_scheduler()
    assert jobs.workoff().ran == 0  # empty: returns at once
    now_id = later(sample_jobs.record, ["now"])
    future = later(sample_jobs.record, ["later"], wait=60)
    elsewhere = later(sample_jobs.record, ["elsewhere"], queue="other")
    stats = jobs.workoff(WorkerConfig(queue="default"))
    assert (stats.ran, stats.succeeded) == (1, 1)
    assert sample_jobs.CALLS == ["now"]
    assert jobs.adapter().get(now_id) is None
    assert row(jobs, future).state == "scheduled"
    assert row(jobs, elsewhere).state == "ready"
    clock.advance(60)
    assert jobs.workoff().ran == 2
    assert sorted(map(str, sample_jobs.CALLS)) == ["elsewhere", "later", "now"]


def test_workoff_runs_in_priority_order(jobs: JobManager) -> None:
    later = jobs.create_scheduler()
    for value, priority in [("c", 90), ("a", 1), ("b", 50), ("a2", 1)]:
        later(sample_jobs.record, [value], priority=priority)
    assert jobs.workoff().succeeded == 4
    assert sample_jobs.CALLS == ["a", "a2", "b", "c"]


def test_repeated_workoff_never_runs_a_retry_early(jobs: JobManager) -> None:
    """A retry waits for its backoff, however many times ``workoff`` is called meanwhile."""
    job_id = jobs.create_scheduler()(sample_jobs.boom)
    for _ in range(3):
        jobs.workoff()
    assert row(jobs, job_id).attempts == 1


def test_a_huge_attempt_number_never_overflows_the_retry_time(
    jobs: JobManager, clock: FakeClock
) -> None:
    """`attempts ** 4` past ~710 attempts went past year 9999 inside the worker's record and
    killed the worker in a loop; the delay is capped (a year) and the job simply waits."""
    later = jobs.create_scheduler()
    job_id = later(sample_jobs.boom, ["again"], max_attempts=1_000_000)
    adapter = jobs.adapter()
    conn = adapter.connection  # type: ignore[attr-defined]
    conn.execute("UPDATE background_jobs SET attempts = 800 WHERE id = ?", (job_id,))
    stats = jobs.workoff(WorkerConfig(max_attempts=1_000_000))
    assert (stats.errored, stats.ran) == (1, 1)
    record = row(jobs, job_id)
    assert record.state == "scheduled" and record.attempts == 801
    assert record.run_at == clock.now() + 365 * 86_400


def test_an_in_process_worker_abandons_a_job_that_ignores_its_timeout(
    jobs: JobManager, tmp_path: Path
) -> None:
    """The `max_runtime` + grace fallback: a job stuck past its limit (it swallows every
    interruption) is recorded as timed out by its own worker's watchdog, even while the worker
    heartbeats -- so another worker may run it again. Before, an in-process worker (no process
    to restart) never gave it up. Real time: a 0.2 s limit and the watchdog's 4 s grace."""
    import threading
    import time

    from litejobs.worker import Worker

    later = jobs.create_scheduler()
    job_id = later("tests.runtime.jobs:ignore_timeout", [str(tmp_path / "t"), 5])
    config = WorkerConfig(max_runtime=0.2, max_attempts=3, heartbeat_interval=0.5, stale_after=5)
    worker = Worker(jobs.adapter(), config)
    thread = threading.Thread(target=worker.run, kwargs={"workoff": True}, daemon=True)
    thread.start()

    def state() -> str:
        return row(jobs, job_id).state

    end = time.monotonic() + 30
    while state() != "running" and time.monotonic() < end:
        time.sleep(0.02)
    while state() == "running" and time.monotonic() < end:
        time.sleep(0.05)
    record = row(jobs, job_id)
    assert "timed out after 0.2 s (the job did not stop; abandoned)" in (record.last_error or "")
    assert (record.state, record.attempts) in (("scheduled", 1), ("ready", 1)), record
    thread.join(15)
    assert not thread.is_alive()
    assert worker.stats.lost == 1  # its own late outcome, fenced off


def test_an_exception_that_cannot_be_printed_is_still_recorded(jobs: JobManager) -> None:
    """A job's exception whose ``str()`` raises (a broken type in the app) fails the job like
    any error, with the traceback module's placeholder; it used to kill the worker."""
    job_id = jobs.create_scheduler()(sample_jobs.raise_unprintable)
    stats = jobs.workoff(WorkerConfig(max_attempts=1))
    assert (stats.failed, stats.ran) == (1, 1)
    record = row(jobs, job_id)
    assert record.state == "failed"
    assert (record.last_error or "").startswith("Unprintable: <exception str() failed>\n")


def test_an_error_message_storage_cannot_hold_is_recorded_escaped(adapter: Adapter) -> None:
    """A lone surrogate (a file name decoded with surrogateescape) is not UTF-8, and PostgreSQL
    text cannot hold NUL: recording such an error used to fail, killing the worker, which then
    ran the job again and again. Both are stored as their escapes."""
    jobs = JobManager({"db": adapter})
    job_id = jobs.create_scheduler()(sample_jobs.raise_unstorable_text)
    stats = jobs.workoff(WorkerConfig(max_attempts=1))
    assert (stats.failed, stats.ran) == (1, 1)
    record = adapter.require(job_id)
    assert record.state == "failed"
    assert (record.last_error or "").startswith(
        "ValueError: cannot read /data/caf\\udce9\\x00.csv\n"
    )


def test_a_job_module_that_exits_at_import_is_a_job_error(jobs: JobManager) -> None:
    """A module that calls ``sys.exit()`` when imported (a script used as a job module) fails
    the job as an unknown function does; its ``SystemExit`` used to stop the worker (in a pool,
    its process died and the job was rescued as a crash, at every attempt)."""
    from litejobs.adapters.base import NewJob
    from litejobs.handler import encode_handler

    adapter = jobs.adapter()
    handler = encode_handler("record", "tests.cli.app_exits:record", [1], None)
    job_id = adapter.enqueue(NewJob(handler=handler))  # stored as another version would
    stats = jobs.workoff(WorkerConfig(max_attempts=1))
    assert (stats.failed, stats.ran) == (1, 1)
    error = row(jobs, job_id).last_error or ""
    assert "importing module 'tests.cli.app_exits' raised SystemExit: 3" in error
