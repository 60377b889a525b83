"""Helpers shared by the multi-process PostgreSQL tests: spawn workers "on other hosts",
enqueue logged jobs, read the run log back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from litejobs.adapters.base import NewJob
from litejobs.adapters.postgres import PostgresAdapter

ROOT = Path(__file__).resolve().parents[2]


def spawn_worker(
    url: str,
    schema: str,
    host: str,
    index: int,
    sleep_delay: float = 5.0,
    path: tuple[Path, ...] = (),
) -> subprocess.Popen[bytes]:
    """A worker process on (simulated) ``host``; idle, it polls every ``sleep_delay`` s, and
    wakes at once on a NOTIFY. ``path``: directories imported from before the repository (a
    ``sitecustomize`` there changes the process before it starts)."""
    env = {**os.environ, "PYTHONPATH": _path(*path)}
    argv = [url, schema, host, str(index), str(sleep_delay)]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.postgres.worker", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (graceful), then SIGKILL whatever is still there after 20 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def logged_jobs(tokens: list[str], log: Path, work_ms: float) -> list[NewJob]:
    return [
        NewJob(
            handler=json.dumps(
                {"name": "work", "path": "tests.postgres.jobs:work", "args": [t, str(log), work_ms]}
            )
        )
        for t in tokens
    ]


def runs(log: Path) -> list[tuple[str, str, int]]:
    """``(token, host, pid)`` per run, in the order they were logged."""
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        token, host, pid = line.split()
        out.append((token, host, int(pid)))
    return out


def active(adapter: PostgresAdapter) -> int:
    return sum(
        n
        for per_state in adapter.counts().values()
        for state, n in per_state.items()
        if state in ("scheduled", "ready", "running")
    )


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def runs_by_pid(order: list[tuple[str, str, int]]) -> dict[int, list[str]]:
    by_pid: dict[int, list[str]] = defaultdict(list)
    for token, _host, pid in order:
        by_pid[pid].append(token)
    return by_pid


def _path(*before: Path) -> str:
    """``before``, then ROOT, keeping what the caller had (``python -m tests.mutants`` puts its
    hook there)."""
    parts = (*map(str, before), str(ROOT), os.environ.get("PYTHONPATH"))
    return os.pathsep.join(p for p in parts if p)
