"""Detached workers: ``litejobs start`` / ``stop`` / ``restart``, and what ``status`` lists.

``start`` runs ``litejobs ... work`` in a new session (no terminal, its own process group) with
its output appended to a log file, and records it in a pid file. ``stop`` signals only what a pid
file names -- never processes found by name, which could belong to someone else -- waits for
running jobs to finish, and escalates (a second SIGTERM: "stop now"; then SIGKILL for the whole
process group) if they do not within the timeout. A pid file also records the process's start
time, so a recycled pid is never mistaken for our supervisor.

A pid file records whose workers they are (:class:`Identity`: the databases and the app), so
that one state directory can serve several projects: ``stop``, ``restart`` and ``status`` act on
the supervisors of one database and app, and a second ``start`` for the same ones is refused
(under a lock, so two at once cannot both start). The supervisor runs in the directory ``start``
ran in, so the app's relative paths (``SQLiteAdapter("var/jobs.db")``) mean the same file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigurationError, LiteJobsError
from .supervisor import READY_FILE_ENV

if TYPE_CHECKING:
    from .adapters.base import Adapter
    from .liveness import WorkerRecord

#: How long ``start`` waits for the new supervisor to say its workers are started.
STARTUP_TIMEOUT = 60.0
#: After escalating to "stop now", how long ``stop`` waits before SIGKILL.
STOP_NOW_GRACE = 5.0
PID_SUFFIX = ".pid"


@dataclass(frozen=True)
class Identity:
    """Whose workers a supervisor runs: where its jobs are stored and which app it loads."""

    databases: tuple[str, ...]  # where each of the app's adapters stores jobs (no passwords)
    app: str | None  # the app's "module:attr", None for the default manager


@dataclass(frozen=True)
class DaemonInfo:
    """One detached supervisor, as its pid file describes it."""

    pid: int
    argv: list[str]
    started_at: float  # epoch seconds
    log_file: str
    pid_file: str
    databases: list[str] = field(default_factory=list)
    app: str | None = None
    cwd: str | None = None

    def runs(self, identity: Identity) -> bool:
        return tuple(self.databases) == identity.databases and self.app == identity.app


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
    work_argv: list[str],
    *,
    state_dir: Path | None = None,
    log_file: Path | None = None,
    identity: Identity | None = None,
) -> int:
    """Start a detached supervisor running ``work_argv`` in this directory; return its pid.

    With ``identity``, refuses (:class:`~litejobs.errors.ConfigurationError`) while a supervisor
    for the same databases and app runs from ``state_dir``.
    """
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
    with out, _start_lock(state):
        if identity is not None:
            _refuse_twice(identity, state)
        process = subprocess.Popen(
            command(work_argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        pid_file = _write_pid_file(state, process.pid, work_argv, log, identity)
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


@contextlib.contextmanager
def _start_lock(state: Path) -> Iterator[None]:
    """Held from "is one running already?" until the new pid file is written."""
    import fcntl

    with open(state / "start.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _refuse_twice(identity: Identity, state: Path) -> None:
    for info in running(state_dir=state, identity=identity):
        raise ConfigurationError(
            f"detached workers for this database and app are already running (supervisor pid "
            f"{info.pid}); use `litejobs restart` to restart them"
        )


def _write_pid_file(
    state: Path, pid: int, work_argv: list[str], log: Path, identity: Identity | None
) -> Path:
    info = {
        "pid": pid,
        "argv": work_argv,
        "started_at": time.time(),
        "start_ticks": _start_ticks(pid),
        "log_file": str(log),
        "cwd": os.getcwd(),
    }
    if identity is not None:
        info.update(databases=list(identity.databases), app=identity.app)
    pid_file = state / f"supervisor-{pid}{PID_SUFFIX}"
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(pid_file)
    return pid_file


def running(*, state_dir: Path | None = None, identity: Identity | None = None) -> list[DaemonInfo]:
    """Detached supervisors that are alive (only ``identity``'s, if given); pid files of dead
    ones are removed."""
    state = Path(state_dir) if state_dir is not None else default_state_dir()
    found: list[DaemonInfo] = []
    if not state.is_dir():
        return found
    for pid_file in sorted(state.glob(f"supervisor-*{PID_SUFFIX}")):
        info = _read_pid_file(pid_file)
        if info is not None and (identity is None or info.runs(identity)):
            found.append(info)
    return found


def _read_pid_file(pid_file: Path) -> DaemonInfo | None:
    try:
        data = json.loads(pid_file.read_text())
        pid = int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _ours_and_alive(pid, data.get("start_ticks")):
        pid_file.unlink(missing_ok=True)
        return None
    return DaemonInfo(
        pid=pid,
        argv=list(data.get("argv", [])),
        started_at=float(data.get("started_at", 0.0)),
        log_file=str(data.get("log_file", "")),
        pid_file=str(pid_file),
        databases=[str(d) for d in data.get("databases", [])],
        app=data.get("app"),
        cwd=data.get("cwd"),
    )


def stop(
    *, state_dir: Path | None = None, timeout: float = 30.0, identity: Identity | None = None
) -> list[int]:
    """Stop the detached supervisors (``identity``'s, or every one): graceful, then "now",
    then SIGKILL. Returns their pids."""
    daemons = running(state_dir=state_dir, identity=identity)
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


def supervisor_of(host: str, pid: int, daemons: list[DaemonInfo]) -> int | None:
    """Which of ``daemons`` runs the worker process ``pid`` on ``host``, if one does: a
    detached supervisor leads the process group of its workers."""
    import socket

    if host != socket.gethostname():
        return None
    try:
        group = os.getpgid(pid)
    except OSError:
        return None
    return next((d.pid for d in daemons if d.pid == group), None)


def live_workers(adapters: Iterable[Adapter]) -> list[WorkerRecord]:
    """The workers of these databases that may be alive (none provably gone: see
    :mod:`litejobs.liveness`). A database that does not exist is skipped, never created."""
    from .liveness import Observer

    observer = Observer()
    found: list[WorkerRecord] = []
    for adapter in {id(a): a for a in adapters}.values():
        if not adapter.exists():
            continue
        now, mono = adapter.clock.now(), adapter.clock.monotonic()
        found += [w for w in adapter.workers() if observer.gone(w, now, mono) is None]
    return found


def rescue_gone(adapters: Iterable[Adapter]) -> int:
    """Rescue the jobs of workers that are provably gone -- those a stop had to kill -- so
    they run again at once instead of after a restart. Returns how many jobs were rescued."""
    from .liveness import Observer

    count = 0
    for adapter in {id(a): a for a in adapters}.values():
        if adapter.exists():
            rescued = adapter.rescue(Observer())
            count += rescued.released + rescued.failed + rescued.returned
    return count


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
