"""Detached workers: ``litejobs start`` / ``stop`` / ``restart``, and what ``status`` lists.

``start`` runs ``litejobs ... work`` in a new session (no terminal, its own process group) with
its output appended to a log file, and records it in a pid file. ``stop`` signals only what a pid
file names -- never processes found by name, which could belong to someone else -- waits for
running jobs to finish, and escalates (a second SIGTERM: "stop now"; then SIGKILL for the whole
process group) if they do not within the timeout. A pid file also records the process's start
time, so a recycled pid is never mistaken for our supervisor.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigurationError, LiteJobsError
from .supervisor import READY_FILE_ENV

#: How long ``start`` waits for the new supervisor to say its workers are started.
STARTUP_TIMEOUT = 60.0
#: After escalating to "stop now", how long ``stop`` waits before SIGKILL.
STOP_NOW_GRACE = 5.0
PID_SUFFIX = ".pid"


@dataclass(frozen=True)
class DaemonInfo:
    """One detached supervisor, as its pid file describes it."""

    pid: int
    argv: list[str]
    started_at: float  # epoch seconds
    log_file: str
    pid_file: str


def default_state_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_state_dir("litejobs"))


def default_log_file() -> Path:
    import platformdirs

    return Path(platformdirs.user_log_dir("litejobs")) / "litejobs.log"


def command(work_argv: list[str]) -> list[str]:
    """How to run ``litejobs <work_argv>``: this interpreter, or this binary when frozen."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *work_argv]
    return [sys.executable, "-m", "litejobs", *work_argv]


def start(
    work_argv: list[str], *, state_dir: Path | None = None, log_file: Path | None = None
) -> int:
    """Start a detached supervisor running ``work_argv``; return its pid."""
    state = Path(state_dir) if state_dir is not None else default_state_dir()
    log = Path(log_file) if log_file is not None else default_log_file()
    try:
        state.mkdir(parents=True, exist_ok=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")  # noqa: SIM115 - handed to the child, closed below
    except OSError as exc:
        raise ConfigurationError(f"cannot prepare {exc.filename}: {exc.strerror}") from exc
    ready = state / f".starting-{os.getpid()}-{time.monotonic_ns()}"
    ready.unlink(missing_ok=True)
    env = {**os.environ, READY_FILE_ENV: str(ready)}
    env.pop("NOTIFY_SOCKET", None)  # systemd's readiness is for the supervisor it started
    with out:
        process = subprocess.Popen(
            command(work_argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    info = {
        "pid": process.pid,
        "argv": work_argv,
        "started_at": time.time(),
        "start_ticks": _start_ticks(process.pid),
        "log_file": str(log),
    }
    pid_file = state / f"supervisor-{process.pid}{PID_SUFFIX}"
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(pid_file)
    # Wait until the workers are started, or the supervisor died trying (bad --app, ...).
    deadline = time.monotonic() + STARTUP_TIMEOUT
    code = process.poll()
    while code is None and not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
        code = process.poll()
    ready.unlink(missing_ok=True)
    if code is None:
        return process.pid
    pid_file.unlink(missing_ok=True)
    raise LiteJobsError(
        f"the detached workers exited at once (status {code}): {_last_line(log)} (log: {log})"
    )


def running(*, state_dir: Path | None = None) -> list[DaemonInfo]:
    """Detached supervisors that are alive; pid files of dead ones are removed."""
    state = Path(state_dir) if state_dir is not None else default_state_dir()
    found: list[DaemonInfo] = []
    if not state.is_dir():
        return found
    for pid_file in sorted(state.glob(f"supervisor-*{PID_SUFFIX}")):
        try:
            data = json.loads(pid_file.read_text())
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _ours_and_alive(pid, data.get("start_ticks")):
            pid_file.unlink(missing_ok=True)
            continue
        found.append(
            DaemonInfo(
                pid=pid,
                argv=list(data.get("argv", [])),
                started_at=float(data.get("started_at", 0.0)),
                log_file=str(data.get("log_file", "")),
                pid_file=str(pid_file),
            )
        )
    return found


def stop(*, state_dir: Path | None = None, timeout: float = 30.0) -> list[int]:
    """Stop every detached supervisor: graceful, then "now", then SIGKILL. Returns their pids."""
    daemons = running(state_dir=state_dir)
    for info in daemons:
        _signal(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    _wait_gone(daemons, deadline)
    late = [d for d in daemons if _group_alive(d.pid)]
    if late:
        for info in late:
            _signal(info.pid, signal.SIGTERM)  # the second signal: stop now
        _wait_gone(late, time.monotonic() + STOP_NOW_GRACE)
        for info in late:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(info.pid, signal.SIGKILL)
        _wait_gone(late, time.monotonic() + STOP_NOW_GRACE)
    for info in daemons:
        Path(info.pid_file).unlink(missing_ok=True)
    return [d.pid for d in daemons]


# -- helpers ----------------------------------------------------------------------------------
def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _wait_gone(daemons: list[DaemonInfo], deadline: float) -> None:
    """Until the supervisor *and its workers* (its process group) are gone, or ``deadline``."""
    while any(_group_alive(d.pid) for d in daemons) and time.monotonic() < deadline:
        time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group the supervisor leads is still running."""
    _reap(pgid)
    from .supervisor import pid_alive

    if pid_alive(pgid):
        return True
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # The group exists; are its members only zombies waiting for init? Look them up.
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat_fields(int(entry.name))
        if stat and int(stat[2]) == pgid and stat[0] not in ("Z", "X"):
            return True
    return False


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our own child (when ``start`` ran in-process)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name: state, ppid, pgrp, ... (Linux only)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def _ours_and_alive(pid: int, start_ticks: int | None) -> bool:
    from .supervisor import pid_alive

    _reap(pid)
    if not pid_alive(pid):
        return False
    return start_ticks is None or _start_ticks(pid) in (None, start_ticks)


def _last_line(log: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()
    return "no output"
