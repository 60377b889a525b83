"""The operator's flows, end to end through the real executable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from litejobs import SQLiteAdapter, enqueue

from .conftest import APP, EXE, ROOT, clean_env, ran

JOB_FIELDS = {
    "id", "state", "worker_gone", "queue", "priority", "attempts", "max_attempts", "name",
    "path", "args", "kwargs", "run_at", "locked_at", "locked_by", "last_error", "failed_at",
    "unique_key", "created_at", "updated_at", "max_runtime", "retry", "cancelled_at",
    "finished_at", "keep_until", "keep_result", "result",
}  # fmt: skip


def iso_epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_enqueue_list_workoff_list_honours_wait_and_wait_until(cli, job_log: Path) -> None:
    soon = cli("enqueue", "tests.cli.app_jobs:record", "--args", '["now"]')
    assert soon.code == 0, soon.err
    now_id = int(soon.out)
    waiting = cli("enqueue", "tests.cli.app_jobs:record", "--args", '["wait"]', "--wait", "3600")
    later = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = cli("enqueue", "tests.cli.app_jobs:record", "--wait-until", later, "--args", "[1]")
    # A naive time is local time; one in the past means "now".
    past_local = (datetime.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    past = cli(
        "enqueue", "tests.cli.app_jobs:record", "--kwargs", '{"value": "past"}',
        "--wait-until", past_local, "--json",
    )  # fmt: skip
    assert {waiting.code, until.code, past.code} == {0}, (waiting.err, until.err, past.err)
    row = past.json()
    assert set(row) == JOB_FIELDS
    assert row["kwargs"] == {"value": "past"} and row["state"] == "ready"

    listed = {j["id"]: j for j in cli("list", "--json").json()}
    assert listed[now_id]["state"] == "ready"
    wait_job = listed[int(waiting.out)]
    assert wait_job["state"] == "scheduled"
    delay = iso_epoch(wait_job["run_at"]) - iso_epoch(wait_job["created_at"])
    assert 3599 <= delay <= 3601
    until_job = listed[int(until.out)]
    assert until_job["state"] == "scheduled"
    assert until_job["run_at"].startswith(later[:19])
    assert iso_epoch(listed[row["id"]]["run_at"]) == pytest.approx(
        (datetime.now() - timedelta(minutes=5)).timestamp(), abs=120
    )

    table = cli("list")
    assert table.code == 0 and "scheduled" in table.out and "record" in table.out

    worked = cli("workoff", app=True)
    assert worked.code == 0, worked.err
    assert worked.out.strip() == "ran 2: 2 succeeded, 0 errored (will retry), 0 failed"
    assert sorted(entry["value"] for entry in ran(job_log)) == ["now", "past"]
    assert "succeeded" in worked.err  # per-job log lines on stderr

    left = cli("list", "--json").json()
    assert sorted(j["id"] for j in left) == sorted([int(waiting.out), int(until.out)])
    assert {j["state"] for j in left} == {"scheduled"}


def test_priorities_are_honoured_across_queues(cli, job_log: Path) -> None:
    for value, queue, priority in [
        ("low", "default", "90"),
        ("mid-email", "email", "50"),
        ("first", "email", "1"),
        ("mid-default", "default", "50"),
        ("second", "default", "2"),
    ]:
        res = cli(
            "enqueue", "tests.cli.app_jobs:record", "--args", json.dumps([value]),
            "--queue", queue, "--priority", priority, app=True,
        )  # fmt: skip
        assert res.code == 0, res.err
    assert cli("workoff", app=True).code == 0
    # Priority first, then run_at/id: mid-email was enqueued before mid-default.
    order = [e["value"] for e in ran(job_log)]
    assert order == ["first", "second", "mid-email", "mid-default", "low"]


def test_failed_job_is_shown_and_retried(cli, job_log: Path) -> None:
    job_id = int(cli("enqueue", "tests.cli.app_jobs:boom", "--args", '["bad news"]', app=True).out)
    worked = cli("workoff", app=True)  # the app's workers allow 1 attempt
    assert worked.code == 1
    assert worked.out.strip() == "ran 1: 0 succeeded, 0 errored (will retry), 1 failed"
    failed = cli("list", "--state", "failed", "--json").json()
    assert [j["id"] for j in failed] == [job_id]
    shown = cli("show", str(job_id), "--json").json()
    assert shown["state"] == "failed" and shown["failed_at"] and shown["run_at"] is None
    assert shown["last_error"].startswith("ValueError: bad news")
    human = cli("show", str(job_id))
    assert "last_error" in human.out and "ValueError: bad news" in human.out

    retried = cli("retry", str(job_id))
    assert retried.code == 0 and retried.out.strip() == f"job {job_id} is ready (was failed)"
    again = cli("show", str(job_id), "--json").json()
    assert again["state"] == "ready" and again["attempts"] == 0 and again["failed_at"] is None

    assert cli("workoff", app=True).code == 1  # fails again: boom always raises
    bulk = cli("retry", "--failed")
    assert bulk.code == 0 and bulk.out.strip() == "retried 1 failed job"
    assert cli("show", str(job_id), "--json").json()["state"] == "ready"


def seed(db_path: Path, *queues: str, **options: Any) -> list[int]:
    """Enqueue through the library where enqueueing is not what a test is about (quicker)."""
    adapter = SQLiteAdapter(db_path)
    try:
        return [enqueue("tests.cli.app_jobs:record", [q], queue=q, db=adapter, **options)
                for q in queues]  # fmt: skip
    finally:
        adapter.close()


def test_clear_is_scoped_by_queue_and_state(cli, db_path: Path) -> None:
    seed(db_path, "default", "default", "email")
    refused = cli("clear", "--queue", "email")  # not a TTY: nobody to ask, so --yes it is
    assert refused.code == 2 and "add --yes" in refused.err
    assert len(cli("list", "--json").json()) == 3
    cleared = cli("clear", "--queue", "email", "--yes")
    assert cleared.code == 0 and cleared.out.strip() == "deleted 1 job in queue 'email'"
    assert [j["queue"] for j in cli("list", "--json").json()] == ["default", "default"]
    assert cli("clear", "--failed", "--yes").out.strip() == "deleted 0 failed jobs"
    assert len(cli("list", "--json").json()) == 2
    assert cli("clear", "--yes").out.strip() == "deleted 2 jobs"
    assert cli("list").out.strip() == "no jobs"


def test_delete_and_status(cli, db_path: Path) -> None:
    ids = seed(db_path, "default", "email", "email")
    seed(db_path, "default", wait=600)
    assert cli("delete", str(ids[0])).out.strip() == f"deleted job {ids[0]}"
    status = cli("status", "--json")
    assert status.code == 0, status.err
    data = status.json()
    assert data["queues"]["email"]["ready"] == 2
    assert data["queues"]["default"] == {
        "scheduled": 1, "ready": 0, "reserved": 0, "running": 0, "failed": 0, "succeeded": 0,
        "cancelled": 0,
    }  # fmt: skip
    assert data["totals"]["ready"] == 2 and data["oldest_ready_age_seconds"] >= 0
    assert data["workers"] == [] and isinstance(data["supervisors"], list)
    human = cli("status")
    assert "email" in human.out and "oldest ready job" in human.out


def test_json_logs_for_log_shippers(cli) -> None:
    cli("enqueue", "tests.cli.app_jobs:boom")
    res = cli("--log-format", "json", "workoff")
    assert res.code == 1
    lines = [json.loads(line) for line in res.err.splitlines()]
    assert {line["logger"] for line in lines} == {"litejobs.worker", "litejobs.cli"}
    [said] = [line for line in lines if line["logger"] == "litejobs.cli"]  # run without an app
    assert said["level"] == "warning" and said["message"].startswith("no app found")
    assert any(line["level"] == "warning" and "ValueError" in line["message"] for line in lines)
    assert all(line["ts"].endswith("Z") for line in lines)
    quiet = cli("-q", "enqueue", "tests.cli.app_jobs:record", "--args", "[1]")
    assert quiet.err == ""


def test_app_from_pyproject_and_python_dash_m(tmp_path: Path, db_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(f'[tool.litejobs]\napp = "{APP}"\n')
    env = clean_env()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EXE), "--db", str(db_path), "--path", str(ROOT), *args],
            cwd=project, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    # The app declares queues default and email: anything else is refused.
    refused = run("enqueue", "tests.cli.app_jobs:record", "--queue", "nope")
    assert refused.returncode == 2 and "unknown queue 'nope'" in refused.stderr
    assert (
        run("enqueue", "tests.cli.app_jobs:record", "--args", "[1]", "--queue", "email").returncode
        == 0
    )

    python = str(EXE.with_name("python"))
    module = subprocess.run(
        [python, "-m", "litejobs", "--db", str(db_path), "--path", str(ROOT), "list", "--json"],
        cwd=project, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert module.returncode == 0 and json.loads(module.stdout)[0]["queue"] == "email"
    version = subprocess.run([str(EXE), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("litejobs ")


def alive(pid: int) -> bool:
    """Running (a zombie waiting for an init that does not reap is not running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_work_starts_the_workers_the_spec_asks_for(db_path: Path, job_log: Path) -> None:
    proc = subprocess.Popen(
        [str(EXE), "--db", str(db_path), "--app", APP, "work", "-n", "default:2,email:1"],
        cwd=ROOT,
        env=clean_env(LITEJOBS_TEST_LOG=str(job_log)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    status_argv = [str(EXE), "--db", str(db_path), "status", "--json"]
    names: set[str] = set()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            out = subprocess.run(status_argv, capture_output=True, text=True, timeout=30)
            if out.returncode == 0:
                names = {w["name"].split("/", 1)[1] for w in json.loads(out.stdout)["workers"]}
                if len(names) >= 3:
                    break
            time.sleep(0.2)
        assert names == {
            "litejobs-worker.default.0",
            "litejobs-worker.default.1",
            "litejobs-worker.email.0",
        }, (names, proc.poll())
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err


def test_start_status_stop_round_trip(cli, tmp_path: Path, db_path: Path) -> None:
    state = str(tmp_path / "state")
    started = cli("start", "-n", "email:1", "--state-dir", state,
                  "--log-file", str(tmp_path / "w.log"), app=True)  # fmt: skip
    assert started.code == 0, started.err
    pid = int(started.out.rsplit(" ", 1)[1].rstrip(")\n"))
    try:
        status = cli("status", "--json", "--state-dir", state, app=True).json()
        (supervisor,) = status["supervisors"]
        assert supervisor["pid"] == pid and supervisor["started_at"].endswith("Z")
        assert supervisor["argv"][-3:] == ["work", "-n", "email:1"]
        assert supervisor["app"] == APP and supervisor["databases"] == [str(db_path)]
    finally:
        stopped = cli("stop", "--state-dir", state, app=True)
    assert stopped.code == 0 and stopped.out.strip() == f"stopped supervisor pid {pid}"
    assert not alive(pid)
    again = cli("stop", "--state-dir", state, app=True).out.strip()
    assert again == "no detached workers running for this database and app"


def test_an_apps_own_worker_logger_is_shown(cli, db_path: Path) -> None:
    seed(db_path, "email")
    res = cli("--app", "tests.cli.app_jobs:logged", "workoff")
    assert res.code == 0, res.err
    assert "cliapp.jobs: job 1 record succeeded" in res.err
