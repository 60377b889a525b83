"""One logging rule: a worker group without a logger of its own uses the manager's
(``JobManager(logger=...)``), and the app's own loggers, used in jobs and hooks, print under
``work`` / ``workoff`` in the same format as litejobs' lines (they vanished below WARNING)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
from pathlib import Path

from litejobs import JobManager, SQLiteAdapter
from tests.runtime.conftest import wait_for

from .conftest import EXE, clean_env
from .test_where_jobs_live import project, run

#: ``2030-01-01 09:00:00 INFO    litejobs-worker.*.0 shop: hello ann``: litejobs' text format.
LINE = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO    litejobs-worker\.\*\.0 %s: %s$"


def lines_of(err: str, logger: str, message: str) -> list[str]:
    pattern = re.compile(LINE % (re.escape(logger), re.escape(message)))
    return [line for line in err.splitlines() if pattern.match(line)]


def test_app_loggers_in_jobs_and_hooks_print_like_litejobs(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert run(root, "enqueue", "shop.jobs:greet", "--args", '["ann"]').returncode == 0
    worked = run(root, "--app", "shop.jobs:jobs", "workoff")
    assert worked.returncode == 0, worked.stderr
    assert len(lines_of(worked.stderr, "shop", "hello ann")) == 1, worked.stderr
    assert len(lines_of(worked.stderr, "shop.hooks", "after job 1")) == 1, worked.stderr
    assert len(lines_of(worked.stderr, "litejobs.worker", "job 1 greet started (attempt 1, "
                                                          "queue default)")) == 1  # fmt: skip

    assert run(root, "enqueue", "shop.jobs:greet", "--args", '["bob"]').returncode == 0
    as_json = run(root, "--app", "shop.jobs:jobs", "--log-format", "json", "workoff")
    records = [json.loads(line) for line in as_json.stderr.splitlines()]
    assert {"shop", "shop.hooks", "litejobs.worker"} == {r["logger"] for r in records}
    wanted = {"level": "info", "logger": "shop", "message": "hello bob"}
    assert [r for r in records if wanted.items() <= r.items()], records
    quiet = run(root, "-q", "--app", "shop.jobs:jobs", "workoff")  # -q: warnings only, app too
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_the_managers_logger_is_the_workers_without_their_own(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert run(root, "enqueue", "shop.jobs:greet", "--args", '["cy"]').returncode == 0
    worked = run(root, "--app", "shop.jobs:logged", "workoff")
    assert worked.returncode == 0, worked.stderr
    assert re.search(
        LINE % (r"shop\.workers", r"job 1 greet succeeded in [\d.]+ ms"), worked.stderr, re.M
    ), worked.stderr
    assert "litejobs.worker:" not in worked.stderr


def test_python_workoff_logs_to_the_managers_logger(tmp_path: Path) -> None:
    seen: list[logging.LogRecord] = []
    logger = logging.getLogger("test.manager.logger")
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        adapter = SQLiteAdapter(tmp_path / "jobs.db")
        jobs = JobManager(adapters={"sqlite": adapter}, logger=logger)
        jobs.create_scheduler()("tests.cli.app_jobs:boom", ["x"])
        jobs.workoff()
        adapter.close()
    finally:
        logger.removeHandler(handler)
    assert any("job 1 boom raised" in r.getMessage() for r in seen), [r.msg for r in seen]


def work_until(root: Path, seen: str, *options: str) -> str:
    """Run ``litejobs [options] work -n 1`` until ``seen`` is in its stderr; Ctrl-C it; its
    stderr."""
    err = root.parent / "err"
    with open(err, "w") as sink:
        proc = subprocess.Popen(
            [str(EXE), "--app", "shop.jobs:jobs", *options, "work", "-n", "1"],
            cwd=root, env=clean_env(PYTHONPATH=str(root)), stderr=sink,
        )  # fmt: skip
    try:
        wait_for(lambda: seen in err.read_text(), 30, repr(seen))
    finally:
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(30)
    return err.read_text()


def test_app_lines_show_under_work(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert run(root, "enqueue", "shop.jobs:greet", "--args", '["dee"]').returncode == 0
    err = work_until(root, "hello dee")
    assert len(lines_of(err, "shop", "hello dee")) == 1, err


JOB_FIELDS = {"job_id", "job", "queue", "attempt", "worker", "duration_ms", "outcome"}


def test_json_job_lines_and_app_lines_inside_jobs_carry_the_jobs_fields_under_work(
    tmp_path: Path,
) -> None:
    """A log shipper joins every line about a job, the app's own included, on its fields."""
    root = project(tmp_path)
    assert run(root, "enqueue", "shop.jobs:greet", "--args", '["eve"]').returncode == 0
    err = work_until(root, "succeeded in", "--log-format", "json")
    records = [json.loads(line) for line in err.splitlines()]
    about_job = [r for r in records if r.get("job_id") == 1]
    assert {r["logger"] for r in about_job} == {"litejobs.worker", "shop", "shop.hooks"}
    for record in about_job:
        assert record.keys() >= JOB_FIELDS, record
        assert (record["job"], record["queue"], record["attempt"]) == ("greet", "default", 1)
        assert record["worker"].endswith("/litejobs-worker.*.0")
    [done] = [r for r in about_job if r["outcome"] == "succeeded"]
    assert isinstance(done["duration_ms"], float) and done["duration_ms"] >= 0
    [app] = [r for r in about_job if r["logger"] == "shop"]
    assert (app["message"], app["outcome"], app["duration_ms"]) == ("hello eve", None, None)
