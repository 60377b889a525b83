"""Real processes for the runtime tests: a pool runner in its own session, helpers to find its
workers, wait for events with a bound, and make sure no process outlives its test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from litejobs import JobManager, SQLiteAdapter
from litejobs.manager import Scheduler

ROOT = Path(__file__).resolve().parents[2]
#: Fast heartbeats so recovery happens in a second, not a minute.
FAST: dict[str, Any] = {
    "sleep_delay": 0.2,
    "heartbeat_interval": 0.2,
    "stale_after": 1.0,
    "max_attempts": 3,
}


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until truthy; fail the test (saying what we waited for) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def marks(path: Path, word: str) -> list[int]:
    """Pids that wrote ``word`` into a job's trace file."""
    if not path.exists():
        return []
    return [
        int(p) for w, p in (line.split() for line in path.read_text().splitlines()) if w == word
    ]


class Pool:
    """``python -m tests.runtime.runner`` in its own session (so signals reach only it)."""

    def __init__(self, db: Path, log: Path, config: dict[str, Any], *args: str) -> None:
        self.log = log
        env = {**os.environ, "PYTHONPATH": _path()}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.runtime.runner", str(db), json.dumps(config), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=open(log, "ab"),  # noqa: SIM115 - the child owns it
            start_new_session=True,
        )
        self.pid = self.process.pid

    def workers(self) -> list[int]:
        """Live worker processes (children of the supervisor)."""
        return [
            p
            for p in group_members(self.pid)
            if p != self.pid and (f := stat_fields(p)) and int(f[1]) == self.pid
        ]

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def kill_all(self) -> None:
        """``kill -9`` the supervisor and every worker at once."""
        os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(10)

    def wait(self, timeout: float = 15) -> int:
        return self.process.wait(timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def pools(tmp_path: Path) -> Iterator[Callable[..., Pool]]:
    """Start pools; at teardown kill whatever is left of them (and fail if anything was)."""
    started: list[Pool] = []

    def start(config: dict[str, Any] | None = None, *args: str) -> Pool:
        log = tmp_path / f"pool{len(started)}.log"
        pool = Pool(tmp_path / "jobs.db", log, {**FAST, **(config or {})}, *args)
        started.append(pool)
        return pool

    yield start
    for pool in started:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(pool.pid, signal.SIGKILL)
        if pool.process.poll() is None:
            pool.process.wait(10)
        if pool.process.stdout is not None:
            pool.process.stdout.close()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SQLiteAdapter]:
    adapter = SQLiteAdapter(tmp_path / "jobs.db")
    yield adapter
    adapter.close()


@pytest.fixture
def later(db: SQLiteAdapter) -> Scheduler:
    return JobManager({"default": db}).create_scheduler()


def _path() -> str:
    """ROOT first, keeping what the caller had (``python -m tests.mutants`` puts its hook there)."""
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
