"""Job control through a real worker and the public API, on every adapter: a person's cancel stops
the running job (sync or async) and is told apart from a timeout; a job's own ``Discard``,
``Snooze`` and ``Cancel``; a job's own timeout and retry policy (decorator and per call); the
app's queue limits written when a worker starts; the manager's ``cancel``/``pause``/``resume``.

Why: storage decides (``tests/test_control_contract.py``); these check that the worker carries it
out, with the hooks and the numbers a user sees. Cancels are real: the worker runs the job in
this process's main thread (so ``SIGALRM`` can interrupt it) while another thread cancels it once
the job says it started; no test waits on a timer to decide anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from litejobs import FakeClock, JobContext, JobManager, RetryPolicy, WorkerConfig
from litejobs.adapters.base import Adapter
from litejobs.errors import ConfigurationError, JobCancelledError, JobNotFoundError, ValidationError

from . import sample_jobs


@pytest.fixture
def jobs(adapter: Adapter) -> Iterator[JobManager]:
    sample_jobs.CALLS.clear()
    manager = JobManager(adapters={"db": adapter}, workers=[WorkerConfig(sleep_delay=0)])
    yield manager


def hooked(jobs: JobManager) -> list[tuple[str, str]]:
    """Every hook call: (stage, type of ctx.error)."""
    seen: list[tuple[str, str]] = []
    for stage in ("after_perform", "after_success", "after_failure", "after_cancel"):

        def hook(ctx: JobContext, stage: str = stage) -> None:
            seen.append((stage, type(ctx.error).__name__))

        jobs.hook(stage)(hook)
    return seen


def cancel_when_started(adapter: Adapter, job_id: int, marker: Path) -> threading.Thread:
    """Cancel ``job_id`` from another thread as soon as the job created ``marker``."""

    def run() -> None:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.1)  # well inside the job: the keeper watches it by now
        adapter.cancel(job_id)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("func", [sample_jobs.spin, sample_jobs.async_spin])
def test_a_cancel_stops_the_running_job_within_a_second(
    jobs: JobManager, adapter: Adapter, tmp_path: Path, func: object
) -> None:
    seen = hooked(jobs)
    marker = tmp_path / "started"
    job_id = jobs.create_scheduler()(func, [str(marker), 30.0])  # type: ignore[arg-type]
    canceller = cancel_when_started(adapter, job_id, marker)
    started = time.monotonic()
    stats = jobs.workoff(WorkerConfig(max_runtime=60, max_attempts=5))
    took = time.monotonic() - started
    canceller.join(5)
    assert took < 5, f"the cancelled job ran {took:.1f} s"
    # A sync job sees JobCancelledError; an async one, its task's cancellation (as asyncio does).
    inside = "CancelledError" if func is sample_jobs.async_spin else "JobCancelledError"
    stopped: list[object] = [("stopped", inside)]
    assert stopped == sample_jobs.CALLS
    row = adapter.require(job_id)
    assert (row.state, row.attempts) == ("cancelled", 1)
    assert (row.last_error or "").startswith("JobCancelledError: cancelled while running")
    assert (stats.cancelled, stats.errored, stats.failed, stats.any_error) == (1, 0, 0, False)
    assert seen == [("after_perform", "JobCancelledError"), ("after_cancel", "JobCancelledError")]


def test_a_cancel_is_not_a_timeout(jobs: JobManager, adapter: Adapter, tmp_path: Path) -> None:
    """Cancelled while its own short timeout is armed: cancelled, never retried as a timeout."""
    marker = tmp_path / "started"
    job_id = jobs.create_scheduler()(sample_jobs.spin, [str(marker), 30.0], max_runtime=20)
    cancel_when_started(adapter, job_id, marker)
    jobs.workoff(WorkerConfig(max_attempts=5))
    assert adapter.require(job_id).state == "cancelled"
    assert issubclass(JobCancelledError, BaseException)
    assert not issubclass(JobCancelledError, Exception)  # `except Exception` cannot swallow it


def test_a_job_can_cancel_itself(jobs: JobManager, adapter: Adapter) -> None:
    seen = hooked(jobs)
    job_id = jobs.create_scheduler()(sample_jobs.cancel_self, ["not needed"])
    stats = jobs.workoff()
    row = adapter.require(job_id)
    assert (row.state, stats.cancelled, stats.any_error) == ("cancelled", 1, False)
    assert (row.last_error or "").startswith("Cancel: not needed")
    assert seen == [("after_perform", "Cancel"), ("after_cancel", "Cancel")]


def test_discard_fails_at_once_whatever_attempts_are_left(
    jobs: JobManager, adapter: Adapter
) -> None:
    seen = hooked(jobs)
    job_id = jobs.create_scheduler()(sample_jobs.discard, ["bad input"], max_attempts=5)
    stats = jobs.workoff()
    row = adapter.require(job_id)
    assert (row.state, row.attempts, stats.failed, stats.errored) == ("failed", 1, 1, 0)
    assert (row.last_error or "").startswith("Discard: bad input")
    assert seen == [("after_perform", "Discard"), ("after_failure", "Discard")]


def test_snooze_runs_again_later_without_counting_the_attempt(
    jobs: JobManager, adapter: Adapter, clock: FakeClock
) -> None:
    seen = hooked(jobs)
    job_id = jobs.create_scheduler()(sample_jobs.snooze, [600], max_attempts=1)
    for _ in range(3):  # one attempt allowed, three runs: none of them counted
        stats = jobs.workoff()
        assert (stats.ran, stats.snoozed, stats.any_error) == (1, 1, False)
        row = adapter.require(job_id)
        assert (row.state, row.attempts, row.run_at) == ("scheduled", 0, clock.now() + 600)
        assert jobs.workoff().ran == 0  # not a moment early
        clock.advance(600)
    assert sample_jobs.CALLS == ["snoozed"] * 3
    assert seen == [("after_perform", "Snooze")] * 3  # neither a success nor a failure


def test_a_jobs_own_timeout_beats_its_groups(jobs: JobManager, adapter: Adapter) -> None:
    later = jobs.create_scheduler()
    short = jobs.create_job(perform=sample_jobs.nap, max_runtime=0.2)
    by_decorator = later(short, [5.0])
    per_call = later(sample_jobs.swallow_everything, [5.0], max_runtime=0.2)
    started = time.monotonic()
    stats = jobs.workoff(WorkerConfig(max_runtime=100, max_attempts=3))
    assert time.monotonic() - started < 4
    assert stats.errored == 2
    for job_id in (by_decorator, per_call):
        row = adapter.require(job_id)
        assert row.last_error == "JobTimeoutError: timed out after 0.2 s"
        assert row.max_runtime == 0.2


def test_a_jobs_own_retry_policy_beats_its_groups(
    jobs: JobManager, adapter: Adapter, clock: FakeClock
) -> None:
    later = jobs.create_scheduler()
    fixed = jobs.create_job(perform=sample_jobs.boom, retry=lambda attempts: 42.0)
    by_function = later(fixed)
    by_call = later(sample_jobs.boom, retry=[7, 70])  # stored with the job: beats the decorator
    by_policy = later(sample_jobs.exit_with, [3], retry=RetryPolicy(intervals=[9]))
    by_group = later(sample_jobs.async_boom)  # no decorator, nothing stored: the group's
    jobs.workoff(WorkerConfig(retry=[3], max_attempts=5))
    delays = {
        job_id: (adapter.require(job_id).run_at or 0) - clock.now()
        for job_id in (by_function, by_call, by_policy, by_group)
    }
    assert delays == {by_function: 42, by_call: 7, by_policy: 9, by_group: 3}


def _broken_backoff(attempts: int) -> float:
    return 10 / (attempts - 1)  # ZeroDivisionError after the first attempt


def test_a_retry_function_that_raises_falls_back_to_the_default_backoff(
    jobs: JobManager, adapter: Adapter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The app's retry function is the app's bug, not the job's: the worker logs it and retries
    after ``attempts ** 4``. Raised out of the worker, it killed the worker (a crash charged to
    the job, again at each attempt) or, in a script, ended ``workoff()`` with a traceback."""
    job_id = jobs.create_scheduler()(
        jobs.create_job(perform=sample_jobs.boom, retry=_broken_backoff)
    )
    stats = jobs.workoff(WorkerConfig(max_attempts=3))
    assert (stats.errored, stats.failed) == (1, 0)
    record = adapter.require(job_id)
    assert (record.state, record.attempts) == ("scheduled", 1)
    assert (record.run_at or 0) - clock.now() == 1  # 1 ** 4
    assert "its retry policy raised; retrying after the default backoff" in caplog.text
    assert "ZeroDivisionError" in caplog.text


def test_a_retry_function_cannot_be_stored_with_a_job(jobs: JobManager, adapter: Adapter) -> None:
    with pytest.raises(ValidationError, match="cannot be stored with a job; give it on the"):
        jobs.create_scheduler()(sample_jobs.boom, retry=lambda attempts: 1.0)
    assert adapter.list_jobs() == []


def test_an_unknown_job_option_lists_the_valid_ones(jobs: JobManager) -> None:
    with pytest.raises(ConfigurationError) as caught:
        jobs.job(max_retries=3)(sample_jobs.record)
    message = str(caught.value)
    for word in ("max_retries", "max_runtime", "retry", "unique_for", "queue", "after_cancel"):
        assert word in message


def test_the_apps_queue_limits_are_stored_when_a_worker_starts(adapter: Adapter) -> None:
    jobs = JobManager(
        adapters={"db": adapter},
        queues=["default", "email"],
        queue_limits={"email": 2},
        workers=[WorkerConfig(sleep_delay=0)],
    )
    assert adapter.queue_controls() == {}
    jobs.workoff()
    assert adapter.queue_controls()["email"].limit == 2
    with pytest.raises(ConfigurationError, match=r"queue_limits\['email'\] must be"):
        JobManager(adapters={"db": adapter}, queue_limits={"email": 0})


def test_the_managers_cancel_pause_and_resume(jobs: JobManager, adapter: Adapter) -> None:
    later = jobs.create_scheduler()
    waiting = later(sample_jobs.record, [1])
    mail = later(sample_jobs.record, [2], queue="email")
    assert jobs.cancel(waiting) == "ready"
    assert jobs.cancel(waiting) == "cancelled"
    with pytest.raises(JobNotFoundError, match="no job with id 999"):
        jobs.cancel(999)
    assert jobs.pause("email") and not jobs.pause("email")
    assert jobs.workoff().ran == 0
    assert jobs.resume("email")
    assert jobs.workoff().ran == 1
    assert adapter.get(mail) is None and sample_jobs.CALLS == [2]


def test_the_test_harness_follows_a_jobs_own_retry_policy_and_snoozes(tmp_path: Path) -> None:
    """``litejobs.testing`` runs jobs through the worker: its clock jumps by the job's own
    retry intervals, and a snooze is not an attempt."""
    from litejobs.testing import temp_jobs

    manager = JobManager(workers=[WorkerConfig(max_attempts=3)])
    sample_jobs.CALLS.clear()
    with temp_jobs(manager, tmp_path) as harness:
        started = harness.clock.now()
        job_id = harness.later(sample_jobs.boom, retry=[7, 70])
        stats = harness.drain()
        assert (stats.errored, stats.failed) == (2, 1)
        assert harness.adapter.require(job_id).failed_at == started + 7 + 70
        harness.later(sample_jobs.snooze, [30], max_attempts=1)
        stats = harness.drain(within=100)
        assert (stats.snoozed, stats.failed) == (4, 0)  # every 30 s, within 100 s
        assert sample_jobs.CALLS == ["snoozed"] * 4
