"""Detached mode: ``start`` / ``status`` / ``stop`` / ``restart`` leave no process behind, through
the Python functions and through the ``litejobs`` command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from litejobs import daemon
from litejobs.errors import LiteJobsError
from litejobs.manager import Scheduler

from .conftest import ROOT, group_members, marks, wait_for

JOBS = "tests.runtime.jobs"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """A state dir; whatever a failed test left running in it is killed at teardown."""
    state_dir = tmp_path / "state"
    yield state_dir
    for info in daemon.running(state_dir=state_dir):
        os.killpg(info.pid, 9)


def work_argv(tmp_path: Path, *extra: str) -> list[str]:
    return ["--db", str(tmp_path / "jobs.db"), "--path", str(ROOT), "work", *extra]


def test_start_status_stop_restart_round_trip(
    state: Path, tmp_path: Path, later: Scheduler
) -> None:
    log = tmp_path / "workers.log"
    pid = daemon.start(work_argv(tmp_path, "-n", "2"), state_dir=state, log_file=log)
    (info,) = daemon.running(state_dir=state)
    assert info.pid == pid and info.log_file == str(log)
    later(f"{JOBS}:touch", [str(tmp_path / "t")])
    wait_for(lambda: marks(tmp_path / "t", "done"), 15, "a detached worker to run the job")
    wait_for(lambda: len(group_members(pid)) == 3, 10, "supervisor and two workers")

    # restart = stop + start; the new pool runs jobs under the same names.
    assert daemon.stop(state_dir=state, timeout=10) == [pid]
    assert group_members(pid) == []
    second = daemon.start(work_argv(tmp_path), state_dir=state, log_file=log)
    later(f"{JOBS}:touch", [str(tmp_path / "u")])
    wait_for(lambda: marks(tmp_path / "u", "done"), 15, "the restarted workers to run a job")

    assert daemon.stop(state_dir=state, timeout=10) == [second]
    assert group_members(pid) == [] and group_members(second) == []
    assert daemon.running(state_dir=state) == []
    assert daemon.stop(state_dir=state) == []  # nothing running: says so, no error
    assert "stopping" in log.read_text()


def test_stop_escalates_when_a_job_outlives_the_timeout(
    state: Path, tmp_path: Path, later: Scheduler
) -> None:
    pid = daemon.start(work_argv(tmp_path), state_dir=state, log_file=tmp_path / "log")
    later(f"{JOBS}:slow", [str(tmp_path / "t"), 60])
    wait_for(lambda: marks(tmp_path / "t", "started"), 15, "the job to start")
    assert daemon.stop(state_dir=state, timeout=0.5) == [pid]
    assert group_members(pid) == []
    assert marks(tmp_path / "t", "done") == []
    # Stopped now, the worker gave its job back on the way out: ready, its attempt counted.
    (record,) = later.adapter.list_jobs(limit=None)
    assert (record.state, record.attempts) == ("ready", 1)
    assert "stopped: worker" in (record.last_error or "")


def test_stop_past_its_timeout_releases_a_deaf_jobs_lock_at_once(tmp_path: Path) -> None:
    """A job deaf to every stop request: `stop` has to kill its worker, and then releases the
    job itself, at once -- before, it stayed `running` with no worker until one started."""
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg")}
    base = [sys.executable, "-m", "litejobs", "--db", str(tmp_path / "jobs.db")]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, "--path", str(ROOT), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    trace = tmp_path / "t"
    started = cli("start", "-n", "1", "--log-file", str(tmp_path / "log"))
    assert started.returncode == 0, started.stderr
    try:
        job = cli("enqueue", f"{JOBS}:deaf", "--args", json.dumps([str(trace), 120]))
        assert job.returncode == 0, job.stderr
        wait_for(lambda: marks(trace, "started"), 15, "the deaf job to start")
        stopped = cli("stop", "--timeout", "0.5")
        assert stopped.returncode == 0, stopped.stderr
        listed = cli("list", "--json")
        (record,) = json.loads(listed.stdout)
        assert (record["state"], record["attempts"]) == ("ready", 1), record
        assert "lost: worker" in (record["last_error"] or "")
    finally:
        for info in daemon.running(state_dir=tmp_path / "xdg" / "litejobs"):
            os.killpg(info.pid, 9)


def test_start_reports_a_supervisor_that_dies_at_once(state: Path, tmp_path: Path) -> None:
    argv = ["--db", str(tmp_path / "jobs.db"), "--app", "no_such_module:jobs", "work"]
    with pytest.raises(LiteJobsError, match="exited at once"):
        daemon.start(argv, state_dir=state, log_file=tmp_path / "log")
    assert daemon.running(state_dir=state) == []


def test_cli_start_status_stop(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg")}
    base = [sys.executable, "-m", "litejobs", "--db", str(tmp_path / "jobs.db")]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )

    started = cli("start", "-n", "1", "--log-file", str(tmp_path / "log"))
    assert started.returncode == 0, started.stderr
    try:
        status = cli("status", "--json")
        assert status.returncode == 0, status.stderr
        (supervisor,) = json.loads(status.stdout)["supervisors"]
        pid = supervisor["pid"]
        stopped = cli("stop", "--timeout", "10")
        assert stopped.returncode == 0, stopped.stderr
        assert str(pid) in stopped.stdout
        assert group_members(pid) == []
        again = cli("stop")
        assert again.returncode == 0 and "no detached workers" in again.stdout
    finally:
        for info in daemon.running(state_dir=tmp_path / "xdg" / "litejobs"):
            os.killpg(info.pid, 9)


def test_the_supervisor_tells_systemd_when_it_is_ready(pools, tmp_path: Path) -> None:
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(20)
        os.environ["NOTIFY_SOCKET"] = address
        try:
            pool = pools()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        message = sock.recv(1024).decode()
    assert message.splitlines() == ["READY=1", f"MAINPID={pool.pid}"]
    assert len(pool.workers()) == 1  # ready means: workers started
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0
