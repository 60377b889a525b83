"""What inspection (``list``, ``status``, the API) says about held jobs and workers: whether each
worker is alive, and which held jobs have lost theirs (they run again once a worker rescues them).

The judgement is :mod:`litejobs.liveness`'s, seen from this process: the same rule every worker
applies before it rescues anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from .adapters.base import HELD_STATES, Adapter, JobRecord
from .liveness import Observer, WorkerRecord


def gone_workers(adapter: Adapter, workers: Iterable[WorkerRecord]) -> dict[str, str]:
    """``{token: why}`` for the workers (of ``adapter``) that are provably gone."""
    observer = Observer()
    now, mono = adapter.clock.now(), adapter.clock.monotonic()
    found: dict[str, str] = {}
    for worker in workers:
        reason = observer.gone(worker, now, mono)
        if reason is not None:
            found[worker.token] = reason
    return found


def orphaned(
    records: Iterable[JobRecord], workers: Iterable[WorkerRecord], gone: dict[str, str]
) -> set[int]:
    """Ids of held jobs whose worker is gone or has no row at all."""
    known = {w.token for w in workers}
    return {
        r.id
        for r in records
        if r.state in HELD_STATES and (r.lock_token not in known or r.lock_token in gone)
    }


def held_without_worker(adapter: Adapter) -> set[int]:
    """Ids of held jobs of ``adapter`` whose worker is gone (for ``status``)."""
    workers = adapter.workers()
    held = adapter.list_jobs(state=list(HELD_STATES), limit=None)
    return orphaned(held, workers, gone_workers(adapter, workers))
