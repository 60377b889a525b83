"""Worker identities for adapter-level tests: fake machines and a fake process table.

Liveness (:mod:`litejobs.liveness`) asks "is that process still there?" only for workers on the
same machine and PID namespace as the observer; these helpers let a test say which processes
live, which machine a worker runs on, and kill or reuse a pid, without real processes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from litejobs.adapters.base import Adapter, ClaimedJob, Registration
from litejobs.liveness import HostIdentity, Observer, WorkerInfo

HERE = HostIdentity("host", "boot-here", "pid:[4026531836]")
#: Another machine (another boot): its workers are judged by their declared deadlines only.
ELSEWHERE = HostIdentity("other", "boot-elsewhere", "pid:[4026531836]")
#: A container on this machine: same boot (monotonic clock), other PID namespace.
CONTAINER = HostIdentity("box", "boot-here", "pid:[4026532999]")


@dataclass
class Processes:
    """A fake process table: pid -> start ticks, for :attr:`Observer.probe`."""

    alive: dict[int, int] = field(default_factory=dict)
    _pids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def spawn(self) -> int:
        pid = next(self._pids)
        self.alive[pid] = pid * 7
        return pid

    def kill(self, pid: int) -> None:
        self.alive.pop(pid, None)

    def reuse(self, pid: int) -> None:
        """``pid`` now belongs to a newer process (a later start)."""
        self.alive[pid] = self.alive.get(pid, 0) + 1_000_000

    def probe(self, pid: int) -> int | None:
        return self.alive.get(pid)

    def observer(self, host: HostIdentity = HERE, **options: object) -> Observer:
        return Observer(host=host, probe=self.probe, **options)  # type: ignore[arg-type]


_tokens = itertools.count(1)


def worker(
    procs: Processes,
    name: str = "host/litejobs-worker.*.1",
    *,
    host: HostIdentity = HERE,
    stale_after: float = 60.0,
    max_attempts: int = 24,
    delete_failed: bool = False,
    pid: int | None = None,
) -> WorkerInfo:
    """A worker identity in a (fake) live process; not registered yet."""
    pid = procs.spawn() if pid is None else pid
    return WorkerInfo(
        token=f"tok{next(_tokens)}",
        host=host,
        pid=pid,
        pid_start=procs.alive.get(pid),
        queues="*",
        stale_after=stale_after,
        max_attempts=max_attempts,
        delete_failed=delete_failed,
        name=name,
    )


def register(adapter: Adapter, procs: Processes, info: WorkerInfo) -> Registration:
    """Register ``info`` under exactly its name, judged by an observer on this machine."""
    return adapter.register_worker(replace(info, name=""), [info.name], procs.observer())


def claim_one(adapter: Adapter, info: WorkerInfo, queues: list[str] | None = None) -> ClaimedJob:
    jobs = adapter.claim(info, queues, 1)
    assert len(jobs) == 1, f"expected one claimable job, got {jobs}"
    return jobs[0]


def delete_row(adapter: Adapter, info: WorkerInfo) -> None:
    """Remove a worker's row behind its back (a person's DELETE, an older litejobs)."""
    from litejobs.adapters.sqlbase import SQLAdapter

    assert isinstance(adapter, SQLAdapter)
    with adapter._write() as conn:
        adapter._count(conn, "worker_delete", {"token": info.token})
