"""Detached workers through the real executable: they run the app's own adapters (every
option), and ``start`` / ``stop`` / ``restart`` / ``status`` act on one database and app."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from litejobs import daemon
from tests.runtime.conftest import alive, group_members, wait_for

from .conftest import EXE, clean_env
from .test_where_jobs_live import project


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """One state dir shared by every project of a test; nothing outlives the test."""
    state_dir = tmp_path / "state"
    yield state_dir
    for info in daemon.running(state_dir=state_dir):
        os.killpg(info.pid, signal.SIGKILL)


def litejobs(root: Path, state: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``litejobs --app shop.jobs:jobs ...`` in ``root``, pid files in ``state``."""
    return subprocess.run(
        [str(EXE), "--app", "shop.jobs:jobs", *argv],
        cwd=root,
        env=clean_env(XDG_STATE_HOME=str(state), PYTHONPATH=str(root), **env),
        capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def started_pid(result: subprocess.CompletedProcess[str]) -> int:
    assert result.returncode == 0, result.stderr
    return int(result.stdout.rsplit(" ", 1)[1].rstrip(")\n"))


def test_detached_workers_keep_the_apps_adapter_options(tmp_path: Path, state: Path) -> None:
    """``SQLiteAdapter("var/jobs.db", durability="full", busy_timeout=120)``: the detached
    worker's connection says synchronous=2 (FULL) and 120 s, as the app's (a rebuilt default
    adapter said 1 and 30 s)."""
    root = project(tmp_path)
    log = tmp_path / "pragmas"
    pid = started_pid(litejobs(root, state, "start", "-n", "1", PRAGMA_LOG=str(log)))
    assert litejobs(root, state, "enqueue", "shop.jobs:pragmas").returncode == 0
    wait_for(log.exists, 30, "the detached worker to run the job")
    assert log.read_text().split() == ["2", "120000"]
    assert litejobs(root, state, "stop").returncode == 0
    assert group_members(pid) == []
    assert (root / "var" / "jobs.db").exists()  # relative to the directory start ran in


def test_stop_restart_status_act_on_one_database_and_app(tmp_path: Path, state: Path) -> None:
    a, b = project(tmp_path / "a"), project(tmp_path / "b")
    pid_a = started_pid(litejobs(a, state, "start", "-n", "1", "--log-file", str(a / "log")))
    pid_b = started_pid(litejobs(b, state, "start", "-n", "1", "--log-file", str(b / "log")))

    again = litejobs(a, state, "start", "-n", "1")  # a second start for the same ones
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr == (
        f"litejobs: error: detached workers for this database and app are already running "
        f"(supervisor pid {pid_a}); use `litejobs restart` to restart them\n"
    )

    status = json.loads(litejobs(a, state, "status", "--json").stdout)
    assert [s["pid"] for s in status["supervisors"]] == [pid_a]
    assert status["supervisors"][0]["databases"] == [f"{a.resolve()}/var/jobs.db"]
    every = json.loads(litejobs(a, state, "status", "--json", "--all").stdout)
    assert sorted(s["pid"] for s in every["supervisors"]) == sorted([pid_a, pid_b])

    restarted = litejobs(a, state, "restart", "-n", "1", "--log-file", str(a / "log"))
    assert restarted.returncode == 0, restarted.stderr
    assert not alive(pid_a) and alive(pid_b)  # B's workers were not touched
    new_a = started_pid(restarted)

    stopped = litejobs(b, state, "stop")
    assert stopped.stdout == f"stopped supervisor pid {pid_b}\n"
    assert stopped.stderr.startswith("litejobs: note: 1 other detached supervisor(s)")
    assert alive(new_a) and group_members(pid_b) == []
    assert litejobs(a, state, "stop", "--all").stdout == f"stopped supervisor pid {new_a}\n"


def test_stop_elsewhere_says_which_workers_still_run(tmp_path: Path, state: Path) -> None:
    root = project(tmp_path)
    pid = started_pid(litejobs(root, state, "start", "-n", "1"))
    db = root / "var" / "jobs.db"
    wait_for(db.exists, 30, "the worker to create the database")
    wait_for(
        lambda: json.loads(litejobs(root, state, "status", "--json").stdout)["workers"],
        30,
        "the worker to register",
    )
    worker = json.loads(litejobs(root, state, "status", "--json").stdout)["workers"][0]
    assert worker["supervisor"] == pid

    other = litejobs(root, tmp_path / "other-state", "stop")
    assert other.returncode == 0
    assert other.stdout == "no detached workers running for this database and app\n"
    (note,) = other.stderr.splitlines()
    assert note.startswith("litejobs: note: 1 live worker(s) of this database are not run from ")
    assert f"{worker['name']} (pid {worker['pid']})" in note
    assert alive(pid)
    assert litejobs(root, state, "stop").stderr == ""  # its own state dir: nothing left over
