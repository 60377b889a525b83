"""Lifecycle hooks (before_perform, after_perform, after_success, after_failure) and the job
context: called in order, globally then per job, with the job's id, attempt and args -- on
success, on error, on the last failure and on a timeout. A hook that raises changes nothing."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from litejobs import FakeClock, JobContext, JobManager, SQLiteAdapter, WorkerConfig, current_job
from litejobs.errors import ConfigurationError, JobTimeoutError

SEEN: list[tuple[str, JobContext | None]] = []


def greet(name: str, *, punctuation: str = "!") -> str:
    SEEN.append(("perform", current_job()))
    return f"hello {name}{punctuation}"


def explode(message: str) -> None:
    SEEN.append(("perform", current_job()))
    raise RuntimeError(message)


def sleepy(seconds: float) -> None:
    SEEN.append(("perform", current_job()))
    time.sleep(seconds)


async def async_sleepy(seconds: float) -> None:
    SEEN.append(("perform", current_job()))
    await asyncio.sleep(seconds)


def recorder(tag: str):  # type: ignore[no-untyped-def]
    def hook(ctx: JobContext) -> None:
        SEEN.append((tag, ctx))

    return hook


@pytest.fixture
def jobs(sqlite_adapter: SQLiteAdapter) -> JobManager:
    SEEN.clear()
    manager = JobManager(
        adapters={"db": sqlite_adapter},
        workers=[WorkerConfig(sleep_delay=0, max_attempts=2, max_runtime=0.3)],
    )
    for name in ("before_perform", "after_perform", "after_success", "after_failure"):
        manager.hook(name)(recorder(f"global.{name}"))
    return manager


def tags() -> list[str]:
    return [tag for tag, _ in SEEN]


def test_hooks_run_in_order_with_the_job_context_on_success(jobs: JobManager) -> None:
    job = jobs.create_job(
        perform=greet,
        before_perform=recorder("job.before_perform"),
        after_perform=[recorder("job.after_perform")],
        after_success=recorder("job.after_success"),
        after_failure=recorder("job.after_failure"),
    )
    later = jobs.create_scheduler()
    job_id = later(job, ["ada"], kwargs={"punctuation": "?"})
    assert current_job() is None
    stats = jobs.workoff()
    assert stats.succeeded == 1
    assert tags() == [
        "global.before_perform",
        "job.before_perform",
        "perform",
        "global.after_perform",
        "job.after_perform",
        "global.after_success",
        "job.after_success",
    ]
    ctx = SEEN[0][1]
    assert all(seen is ctx for _, seen in SEEN)  # hooks and the job see the same context
    assert ctx is not None
    assert (ctx.id, ctx.name, ctx.path) == (job_id, "greet", "tests.test_hooks:greet")
    assert (ctx.attempts, ctx.max_attempts, ctx.queue, ctx.priority) == (1, 2, "default", 50)
    assert ctx.args == ["ada"] and ctx.kwargs == {"punctuation": "?"}
    assert ctx.error is None and ctx.worker.endswith("litejobs-worker.*.0")
    assert isinstance(ctx.logger, logging.Logger)
    assert current_job() is None  # reset after the job


def test_hooks_on_error_then_failure_carry_the_exception_and_attempt(
    jobs: JobManager, clock: FakeClock
) -> None:
    job = jobs.job(after_failure=recorder("job.after_failure"))(explode)
    job_id = jobs.create_scheduler()(job, ["kaput"])
    stats = jobs.workoff()
    assert stats.errored == 1
    assert tags() == [
        "global.before_perform",
        "perform",
        "global.after_perform",
        "global.after_failure",
        "job.after_failure",
    ]
    first = SEEN[-1][1]
    assert first is not None and first.id == job_id and first.attempts == 1
    assert isinstance(first.error, RuntimeError) and str(first.error) == "kaput"
    SEEN.clear()
    clock.advance(1)  # backoff after attempt 1: 1 s
    stats = jobs.workoff()
    assert stats.failed == 1  # max_attempts=2: this was the last one
    last = SEEN[-1][1]
    assert last is not None and last.attempts == 2 and isinstance(last.error, RuntimeError)
    record = jobs.adapter().require(job_id)
    assert record.state == "failed" and "RuntimeError: kaput" in (record.last_error or "")


@pytest.mark.parametrize("func", [sleepy, async_sleepy], ids=["sync", "async"])
def test_hooks_on_timeout_see_a_timeout_error(jobs: JobManager, func: object) -> None:
    job_id = jobs.create_scheduler()(jobs.create_job(perform=func), [5])  # type: ignore[arg-type]
    stats = jobs.workoff()  # max_runtime=0.3 stops the 5 s sleep
    assert stats.errored == 1
    assert tags() == [
        "global.before_perform",
        "perform",
        "global.after_perform",
        "global.after_failure",
    ]
    ctx = SEEN[-1][1]
    assert ctx is not None and ctx.id == job_id
    assert isinstance(ctx.error, JobTimeoutError) and "timed out after 0.3 s" in str(ctx.error)
    assert "timed out after 0.3 s" in (jobs.adapter().require(job_id).last_error or "")


def test_a_raising_hook_is_logged_and_changes_no_outcome(
    jobs: JobManager, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(ctx: JobContext) -> None:
        raise ValueError("hook bug")

    ok = jobs.create_job(perform=greet, before_perform=broken, after_success=broken)
    bad = jobs.create_job(perform=explode, after_failure=broken)
    later = jobs.create_scheduler()
    ok_id = later(ok, ["x"])
    bad_id = later(bad, ["y"])
    with caplog.at_level(logging.ERROR):
        stats = jobs.workoff()
    assert (stats.succeeded, stats.errored) == (1, 1)
    assert jobs.adapter().get(ok_id) is None  # succeeded and deleted despite both hooks raising
    assert jobs.adapter().require(bad_id).last_error.startswith("RuntimeError: y")  # type: ignore[union-attr]
    failures = [r for r in caplog.records if "hook" in r.getMessage()]
    assert len(failures) == 3
    assert any("before_perform hook" in r.getMessage() for r in failures)


def test_unknown_hook_names_are_configuration_errors(jobs: JobManager) -> None:
    with pytest.raises(ConfigurationError, match="unknown hook 'after_everything'"):
        jobs.hook("after_everything")
    with pytest.raises(ConfigurationError, match="unknown job option"):
        jobs.create_job(perform=greet, before_perfrom=recorder("typo"))
