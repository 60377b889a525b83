"""Lifecycle hooks (before_perform, after_perform, after_success, after_failure) and the job
context: called in order, globally then per job, with the job's id, attempt and args -- on
success, on error, on the last failure and on a timeout. A hook that raises changes nothing."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from litejobs import FakeClock, JobContext, JobManager, SQLiteAdapter, WorkerConfig, current_job
from litejobs.errors import ConfigurationError, JobTimeoutError, StopNow
from tests.conftest import ROOT

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


# -- async hooks ----------------------------------------------------------------------------------
LOOPS: list[tuple[str, asyncio.AbstractEventLoop]] = []


async def async_greet(name: str) -> None:
    LOOPS.append(("perform", asyncio.get_running_loop()))


def async_recorder(tag: str):  # type: ignore[no-untyped-def]
    async def hook(ctx: JobContext) -> None:
        await asyncio.sleep(0)  # really awaited: a coroutine that never ran would not get here
        LOOPS.append((tag, asyncio.get_running_loop()))
        SEEN.append((tag, ctx))

    return hook


@pytest.mark.parametrize("func", [greet, async_greet], ids=["sync-job", "async-job"])
def test_async_hooks_are_awaited_on_the_workers_loop(jobs: JobManager, func: object) -> None:
    LOOPS.clear()
    jobs.hook("after_success")(async_recorder("global.async_after_success"))
    job = jobs.create_job(
        perform=func,  # type: ignore[arg-type]
        before_perform=async_recorder("job.async_before_perform"),
        after_perform=[async_recorder("job.async_after_perform")],
    )
    later = jobs.create_scheduler()
    later(job, ["ada"])
    later(job, ["bob"])
    assert jobs.workoff().succeeded == 2
    async_tags = [tag for tag in tags() if "async" in tag]
    assert async_tags == 2 * [
        "job.async_before_perform",
        "job.async_after_perform",
        "global.async_after_success",
    ]
    assert len({id(loop) for _, loop in LOOPS}) == 1  # one loop, kept for the worker's life


def test_an_async_hook_that_hangs_is_cut_at_max_runtime_and_changes_nothing(
    jobs: JobManager, caplog: pytest.LogCaptureFixture
) -> None:
    async def hangs(ctx: JobContext) -> None:
        await asyncio.sleep(60)

    job = jobs.create_job(perform=greet, after_success=hangs)
    job_id = jobs.create_scheduler()(job, ["x"])
    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        stats = jobs.workoff()  # max_runtime=0.3
    assert time.monotonic() - started < 30  # bounded, not the hook's 60 s
    assert stats.succeeded == 1 and jobs.adapter().get(job_id) is None
    [logged] = [r for r in caplog.records if "after_success hook" in r.getMessage()]
    assert logged.exc_info is not None and logged.exc_info[0] is JobTimeoutError


# -- a hook's BaseException never undoes a decided outcome ----------------------------------------
class HookAbort(BaseException):
    """Some library's own BaseException."""


def raising(exc: BaseException):  # type: ignore[no-untyped-def]
    def hook(ctx: JobContext) -> None:
        SEEN.append(("raising", ctx))
        raise exc

    return hook


@pytest.mark.parametrize(
    "exc",
    [SystemExit(0), SystemExit(3), KeyboardInterrupt(), HookAbort()],
    ids=["exit-0", "exit-3", "keyboard-interrupt", "own-base-exception"],
)
@pytest.mark.parametrize("stage", ["before_perform", "after_perform", "after_success"])
def test_a_hooks_base_exception_is_logged_and_the_worker_goes_on(
    jobs: JobManager, caplog: pytest.LogCaptureFixture, exc: BaseException, stage: str
) -> None:
    job = jobs.create_job(perform=greet, **{stage: raising(exc)})
    later = jobs.create_scheduler()
    ids = [later(job, ["first"]), later(job, ["second"])]
    with caplog.at_level(logging.ERROR):
        stats = jobs.workoff(replace(jobs.workers[0], delete_successful_jobs=False))
    assert (stats.succeeded, stats.errored) == (2, 0)
    assert [jobs.adapter().require(i).state for i in ids] == ["succeeded", "succeeded"]
    assert tags().count("perform") == 2 and tags().count("raising") == 2
    assert sum(f"{stage} hook" in r.getMessage() for r in caplog.records) == 2


def test_a_failure_hooks_base_exception_keeps_the_jobs_error(jobs: JobManager) -> None:
    job = jobs.create_job(perform=explode, after_failure=raising(KeyboardInterrupt()))
    job_id = jobs.create_scheduler()(job, ["kaput"])
    assert jobs.workoff().errored == 1
    assert (jobs.adapter().require(job_id).last_error or "").startswith("RuntimeError: kaput")


def test_the_workers_own_stop_now_still_stops_it(jobs: JobManager) -> None:
    job = jobs.create_job(perform=greet, after_success=raising(StopNow()))
    later = jobs.create_scheduler()
    later(job, ["first"])
    later(job, ["second"])
    with pytest.raises(StopNow):
        jobs.workoff()
    assert tags().count("perform") == 1  # stopped at the first job's hook


def test_a_stop_now_during_the_hooks_after_a_success_records_the_success_first(
    jobs: JobManager,
) -> None:
    """The job had finished when the stop-now came: released instead, it would run again."""
    job = jobs.create_job(perform=greet, after_success=raising(StopNow()))
    later = jobs.create_scheduler()
    later(job, ["first"])
    second = later(job, ["second"])
    with pytest.raises(StopNow):
        jobs.workoff()
    assert [j.id for j in jobs.adapter().list_jobs()] == [second]  # the first is done
    assert [(j.state, j.attempts) for j in jobs.adapter().list_jobs()] == [("ready", 0)]


def test_hooks_that_hang_after_a_success_do_not_turn_it_into_a_timeout(
    jobs: JobManager,
) -> None:
    """The outcome is decided when the job's call ends. A hook after it that hangs past
    ``max_runtime`` + grace gets the success recorded by the worker's watchdog (the hook then
    holds until it sees that, 20 s at most); judged a timeout, the job would run again.
    Real time: a 0.3 s limit and the watchdog's 4 s grace."""
    adapter = jobs.adapter()

    def hangs(ctx: JobContext) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            record = adapter.get(ctx.id)
            if record is None or record.state != "running":
                return
            time.sleep(0.05)

    job = jobs.create_job(perform=greet, after_success=hangs)
    job_id = jobs.create_scheduler()(job, ["x"])
    stats = jobs.workoff()
    assert tags().count("perform") == 1
    assert (stats.succeeded, stats.errored, stats.lost) == (1, 0, 0)
    assert adapter.get(job_id) is None  # succeeded (and deleted, as successes are by default)


EMBEDDED = """
import sys, time
from litejobs import JobManager, SQLiteAdapter, WorkerConfig

def hook(ctx):
    with open(sys.argv[2], "a") as marks:
        marks.write("hook\\n")
    if sys.argv[3] == "raise":
        raise KeyboardInterrupt  # the hook's own: logged, the run goes on
    time.sleep(60)  # Ctrl-C arrives here

jobs = JobManager({"db": SQLiteAdapter(sys.argv[1])}, workers=[WorkerConfig(sleep_delay=0)])
jobs.hook("after_success")(hook)
later = jobs.create_scheduler()
later("tests.sample_jobs:record", [1])
later("tests.sample_jobs:record", [2])
print(jobs.workoff().succeeded, flush=True)
"""


@pytest.mark.parametrize("mode", ["raise", "sleep"])
def test_in_a_script_a_hooks_keyboard_interrupt_is_contained_but_ctrl_c_still_stops(
    tmp_path: Path, mode: str
) -> None:
    """A script that runs ``jobs.workoff()`` itself, with Python's own Ctrl-C handler."""
    marks = tmp_path / "marks"
    process = subprocess.Popen(
        [sys.executable, "-c", EMBEDDED, str(tmp_path / "jobs.db"), str(marks), mode],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if mode == "sleep":
            deadline = time.monotonic() + 15
            while not (marks.exists() and marks.read_text()):
                assert time.monotonic() < deadline, "the hook never started"
                time.sleep(0.02)
            process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        out, err = process.communicate(timeout=15)
    finally:
        process.kill()
    if mode == "raise":
        assert (process.returncode, out.strip()) == (0, "2"), err
        assert marks.read_text() == "hook\nhook\n"
    else:
        assert process.returncode != 0 and "StopNow" in err
        assert marks.read_text() == "hook\n"
