"""Worker identity and liveness: who holds a job, and when that holder is provably gone.

The promise this module carries: while the process running a job is alive and its heartbeat
thread beats, no other process starts that job -- whatever mix of runners, worker groups and
settings shares the database. How:

* **A lock names a process, not a name.** Every worker holds a random *token*, unique to that
  worker in that process; a claimed job stores the token (``lock_token``) beside the readable
  name (``locked_by``, ``host/litejobs-worker.email.0``, for people). Names are unique among
  live workers, but correctness never depends on it: only tokens are compared.
* **A worker declares its own deadline.** Each heartbeat stores ``heartbeat_at`` and
  ``expires_at = heartbeat_at + stale_after`` of *that* worker's group, so groups with different
  settings judge each other by the deadline the other declared, never their own ``stale_after``.
* **Silence is measured on a clock that cannot jump.** A worker on the same machine (same boot)
  as the observer is judged by ``CLOCK_MONOTONIC`` (stored with each heartbeat), so setting the
  wall clock forward by days does not make it look silent. A worker on another machine is judged
  by wall time -- on PostgreSQL, the server's clock, which every host shares.
* **Death is proved where it can be.** On the same machine and in the same PID namespace, a
  worker whose process is gone (or whose PID now belongs to a newer process) is gone at once.
  Nothing else (a newcomer wanting the name, an observer's impatience) ever releases a lock.
* **A missing row is not a death certificate.** A job whose token has no worker row (deleted by
  hand, or left by an older litejobs) is *adopted*: the first observer to see it writes a stand-in
  row for the token, declaring a deadline of :attr:`Observer.orphan_grace` on its own machine's
  monotonic clock. A live worker's next heartbeat (well within that) overwrites the stand-in with
  its own identity; otherwise the stand-in expires like any silent worker and the jobs are
  rescued. The count survives the observer: a cron ``workoff`` finishes what another started.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

#: Seconds a job whose lock names no worker row waits before any observer releases it.
ORPHAN_GRACE = 600.0


@dataclass(frozen=True, slots=True)
class HostIdentity:
    """Where a process runs: enough to tell "the same machine" and "the same PID namespace".

    ``boot_id`` is the kernel's random id of this boot (``/proc/sys/kernel/random/boot_id``):
    machines sharing a host name, or a machine that rebooted, never compare equal. ``pid_ns`` is
    the PID namespace (a container has its own): PIDs are only comparable inside one.
    """

    hostname: str
    boot_id: str
    pid_ns: str

    def same_machine(self, boot_id: str) -> bool:
        return bool(self.boot_id) and self.boot_id == boot_id

    def same_pids(self, boot_id: str, pid_ns: str) -> bool:
        return self.same_machine(boot_id) and bool(self.pid_ns) and self.pid_ns == pid_ns


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


@cache
def this_host() -> HostIdentity:
    """The identity of the machine and PID namespace this process runs in (cached)."""
    try:
        pid_ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_ns = ""
    return HostIdentity(socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"), pid_ns)


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or ``None`` if there is no such
    running process. A PID reused by a newer process has a later start: never mistaken for the
    worker that held it. Without ``/proc`` a live PID reports 0 (alive, start unknown)."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    except (OSError, IndexError):
        return _signal_probe(pid)
    if fields[0] in ("Z", "X"):  # a zombie has finished: its jobs are not running
        return None
    return int(fields[19])


def _signal_probe(pid: int) -> int | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return 0
    return 0


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker declares about itself when it registers and with every heartbeat.

    The settings travel with the worker so that whoever finds it dead treats its jobs by *its*
    group's rules: ``stale_after`` (its deadline), ``max_attempts`` and ``delete_failed`` (for
    a job that was on its last attempt when the worker died).
    """

    token: str
    host: HostIdentity
    pid: int
    pid_start: int | None
    queues: str
    stale_after: float
    max_attempts: int
    delete_failed: bool
    name: str = ""  # host-qualified readable name, chosen at registration

    @classmethod
    def for_this_process(
        cls,
        *,
        queues: str,
        stale_after: float,
        max_attempts: int,
        delete_failed: bool,
        host: HostIdentity | None = None,
        pid: int | None = None,
    ) -> WorkerInfo:
        pid = os.getpid() if pid is None else pid
        return cls(
            token=secrets.token_hex(8),
            host=host or this_host(),
            pid=pid,
            pid_start=process_start(pid),
            queues=queues,
            stale_after=stale_after,
            max_attempts=max_attempts,
            delete_failed=delete_failed,
        )


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A worker row as stored: its identity, its declared settings and its last heartbeat."""

    token: str
    name: str
    host: str
    boot_id: str
    pid_ns: str
    pid: int
    pid_start: int | None
    queues: str
    started_at: float
    heartbeat_at: float
    beat_mono: float  # the worker's monotonic clock at its last heartbeat
    expires_at: float  # heartbeat_at + its own stale_after
    stale_after: float
    max_attempts: int
    delete_failed: bool


Probe = Callable[[int], "int | None"]


@dataclass(frozen=True)
class Observer:
    """A process judging other workers: where it runs, how it probes PIDs, and the rules it
    declares for orphaned locks it adopts (no row says whose rules apply to those)."""

    host: HostIdentity = field(default_factory=this_host)
    probe: Probe = process_start
    max_attempts: int = 24
    delete_failed: bool = False
    orphan_grace: float = ORPHAN_GRACE

    def adopt(self, token: str, name: str) -> WorkerInfo:
        """The stand-in row for an orphaned lock: this machine's boot (so the grace runs on
        its monotonic clock), no PID namespace (nothing to probe), the grace as deadline."""
        host = HostIdentity(self.host.hostname, self.host.boot_id, "")
        return WorkerInfo(
            token=token,
            host=host,
            pid=0,
            pid_start=None,
            queues="?",
            stale_after=self.orphan_grace,
            max_attempts=self.max_attempts,
            delete_failed=self.delete_failed,
            name=name or "?",
        )

    def gone(self, worker: WorkerRecord, now: float, mono: float) -> str | None:
        """Why ``worker`` is provably gone, or ``None`` while it may be alive."""
        host = self.host
        if host.same_pids(worker.boot_id, worker.pid_ns):
            started = self.probe(worker.pid)
            if started is None:
                return f"process {worker.pid} is gone"
            if worker.pid_start is not None and started and started != worker.pid_start:
                return f"process {worker.pid} is gone (its pid now belongs to another process)"
        if host.same_machine(worker.boot_id):
            silent = mono - worker.beat_mono
            if silent > worker.stale_after:
                return f"silent for {silent:.0f} s (its limit: {worker.stale_after:g} s)"
            return None
        if now > worker.expires_at:
            return f"silent past its deadline ({now - worker.expires_at:.0f} s ago)"
        return None
