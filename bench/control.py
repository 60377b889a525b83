"""Job control's costs: how fast a cancel stops a running job, and what paused queues and a
queue limit cost the claim.

* Cancel latency: one idle worker process runs a job that works in 1 ms steps; once it has run
  for a while (0.2-0.4 s: its worker's keeper watches it then), the parent cancels it and times
  the moment the job's own code stops (``bench.jobs:spin`` stamps it, CLOCK_MONOTONIC).
* Drain with controls: the drain of ``bench.sections.lj_drain`` (2 worker processes on every
  queue) while 10 other queues are paused, each holding a backlog of urgent jobs (priority 1:
  a claim that filtered them row by row would read them all), and the drained queue has a limit
  (set above what two workers can hold, so it is enforced on every claim without binding);
  against the same drain with no controls, interleaved run by run (``bench.run``).

SQLite here; the PostgreSQL figures use the same jobs through ``bench.postgres_bench``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import Child, percentile, wait_for

#: Paused queues in the controlled drain, and the limit set on the drained queue.
PAUSED_QUEUES = 10
DRAIN_LIMIT = 10_000


def stamps(path: Path, kind: str) -> dict[int, float]:
    """``{token: time}`` of the ``start`` or ``stop`` lines ``bench.jobs.spin`` wrote."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    found = {}
    for line in lines:
        what, token, at = line.split()
        if what == kind:
            found[int(token)] = float(at)
    return found


def cancel_samples(
    enqueue: Callable[[int], int], cancel: Callable[[int], Any], log: Path, samples: int
) -> dict[str, float]:
    """Cancel → the job's code stops, in ms: ``samples`` times, one job at a time."""
    rng = random.Random(3)
    took: list[float] = []
    for token in range(samples):
        job_id = enqueue(token)
        if not wait_for(lambda t=token: t in stamps(log, "start"), 30, 0.001):
            raise RuntimeError(f"cancel bench: job {token} did not start within 30 s")
        time.sleep(rng.uniform(0.2, 0.4))  # a job that has been running: its keeper watches
        before = time.monotonic()
        cancel(job_id)
        if not wait_for(lambda t=token: t in stamps(log, "stop"), 30, 0.0005):
            raise RuntimeError(f"cancel bench: job {token} was not stopped within 30 s")
        took.append((stamps(log, "stop")[token] - before) * 1000)
    return {
        "cancel_p50_ms": percentile(took, 50),
        "cancel_p99_ms": percentile(took, 99),
        "cancel_max_ms": max(took),
    }


def lj_cancel_latency(db: Path, samples: int) -> dict[str, float]:
    """SQLite: one idle worker process (woken by the change signal), jobs cancelled while they
    run."""
    from litejobs import JobManager, SQLiteAdapter

    from .jobs import noop, spin

    later = JobManager(adapters={"sqlite": SQLiteAdapter(db)}).create_scheduler()
    later(noop)  # the schema, before the worker opens the file
    log = db.with_suffix(".spin")
    child = Child("serve", str(db), "0")
    try:
        child.expect("ready")
        wait_for(lambda: len(later.adapter.workers()) == 1, 30, 0.01)
        return cancel_samples(
            lambda token: later(spin, [str(log), token]), later.adapter.cancel, log, samples
        )
    finally:
        child.stop()
        later.adapter.close()


def lj_drain_controlled(db: Path, count: int, backlog: int) -> float:
    """:func:`bench.sections.lj_drain` with :data:`PAUSED_QUEUES` paused queues of ``backlog``
    urgent jobs each, and a limit on the drained queue."""
    from litejobs import SQLiteAdapter

    from .sections import lj_drain, lj_fill

    for index in range(PAUSED_QUEUES):
        lj_fill(db, backlog, queue=f"paused{index}", priority=1)
    adapter = SQLiteAdapter(db)
    for index in range(PAUSED_QUEUES):
        adapter.pause(f"paused{index}")
    adapter.set_queue_limit("default", DRAIN_LIMIT)
    adapter.close()
    return lj_drain(db, count)


# -- PostgreSQL -----------------------------------------------------------------------------------
def pg_cancel_latency(url: str, samples: int) -> dict[str, float]:
    """PostgreSQL: one idle worker process, its keeper woken by ``NOTIFY`` on the cancel
    channel."""
    import json
    import os
    import tempfile

    from litejobs.adapters.base import NewJob

    from .postgres_bench import _fresh, _spawn, _stop, _wait

    adapter = _fresh(url)
    procs = _spawn(url, adapter.schema, 1)
    fd, name = tempfile.mkstemp(prefix="litejobs-pgcancel-", suffix=".log")
    os.close(fd)
    log = Path(name)

    def enqueue(token: int) -> int:
        handler = json.dumps({"name": "spin", "path": "bench.jobs:spin", "args": [name, token]})
        return adapter.enqueue(NewJob(handler=handler))

    try:
        _wait(lambda: len(adapter.workers()) == 1, 60, "the worker to start")
        return cancel_samples(enqueue, adapter.cancel, log, samples)
    finally:
        _stop(procs)
        log.unlink()
        from tests.pg import drop_schema

        drop_schema(adapter)
        adapter.close()


def pg_drain_controlled(url: str, workers: int, jobs: int, backlog: int) -> float:
    """:func:`bench.postgres_bench.drain_rate` with paused queues and a limit, as
    :func:`lj_drain_controlled`."""
    from litejobs.adapters.base import NewJob

    from .postgres_bench import NOOP, drain_rate

    def controls(adapter: Any) -> None:
        for index in range(PAUSED_QUEUES):
            queue = f"paused{index}"
            adapter.enqueue_many([NewJob(handler=NOOP, queue=queue, priority=1)] * backlog)
            adapter.pause(queue)
        adapter.set_queue_limit("default", DRAIN_LIMIT)

    return drain_rate(url, workers, jobs, prepare=controls)
