"""The PostgreSQL column of ``scripts/bench``: enqueue rate, drain throughput with 2 and 8 worker
processes, and enqueue→start latency of an idle worker woken by ``LISTEN/NOTIFY``.

``run(url, quick=...)`` returns flat figures under the keys the report table uses
(``enqueue_per_s``, ``enqueue_batch_per_s``, ``drain_per_s`` = 2 processes, ``drain_8_per_s``,
``latency_p50_ms``, ``latency_p99_ms``). Workers are real ``litejobs`` worker processes (this
module is their entry point: ``python -m bench.postgres_bench worker URL SCHEMA INDEX``), each
in its own schema-scoped run, so nothing is shared with the test suite or other benchmarks.
Standalone: ``python -m bench.postgres_bench URL [--quick]`` prints the figures as JSON.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from litejobs.adapters.base import NewJob
from litejobs.adapters.postgres import PostgresAdapter
from tests.pg import drop_schema, reset_schema

ROOT = Path(__file__).resolve().parent.parent
NOOP = json.dumps({"name": "noop", "path": "bench.postgres_bench:noop", "args": []})


# -- job functions (imported by the workers) ----------------------------------------------------
def noop(*args: object) -> None:
    """The no-op job: measures the queue, not the work."""


def stamp(path: str, token: int) -> None:
    """Append ``token start-time`` (CLOCK_MONOTONIC, shared by every process on Linux)."""
    line = f"{token} {time.monotonic():.6f}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


# -- worker processes ---------------------------------------------------------------------------
def _worker_main(url: str, schema: str, index: int) -> int:
    from litejobs import JobManager, WorkerConfig

    manager = JobManager(
        adapters={"pg": PostgresAdapter(url, schema=schema)},
        workers=[WorkerConfig(queue="*", sleep_delay=5)],
    )
    worker = manager.worker(worker_id=index)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
    worker.run()
    return 0


def _spawn(url: str, schema: str, count: int) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return [
        subprocess.Popen(
            [sys.executable, "-m", "bench.postgres_bench", "worker", url, schema, str(i)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(count)
    ]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"postgres bench: timed out after {timeout:.0f} s waiting for {what}"
            )
        time.sleep(poll)


# -- measurements -------------------------------------------------------------------------------
def _fresh(url: str) -> PostgresAdapter:
    adapter = PostgresAdapter(url, schema=f"bench_{uuid.uuid4().hex[:10]}")
    reset_schema(adapter)
    return adapter


def _pending(adapter: PostgresAdapter) -> bool:
    """Whether jobs the workers may run are left (paused queues' jobs wait, by design)."""
    row = adapter.connection.execute(
        f'SELECT EXISTS(SELECT 1 FROM "{adapter.schema}".background_jobs '
        "WHERE state IN ('scheduled', 'ready', 'reserved', 'running') "
        "AND queue NOT LIKE 'paused%')"
    ).fetchone()
    return bool(row and row[0])


def enqueue_rates(url: str, single: int, batches: int) -> dict[str, float]:
    """Jobs/s through the public API, as the SQLite column measures them: ``later(noop, [i])``
    one per call (one transaction each), and ``later.many`` in batches of 1000."""
    from litejobs import JobManager

    adapter = _fresh(url)
    try:
        later = JobManager(adapters={"pg": adapter}).create_scheduler()
        started = time.perf_counter()
        for i in range(single):
            later(noop, [i])
        one = single / (time.perf_counter() - started)
        started = time.perf_counter()
        for b in range(batches):
            later.many([(noop, [b * 1000 + i]) for i in range(1000)])
        many = batches * 1000 / (time.perf_counter() - started)
        return {"enqueue_per_s": one, "enqueue_batch_per_s": many}
    finally:
        drop_schema(adapter)
        adapter.close()


def drain_rate(
    url: str, workers: int, jobs: int, prepare: Callable[[PostgresAdapter], None] | None = None
) -> float:
    """Jobs/s for ``workers`` idle worker processes to drain ``jobs`` no-op jobs enqueued in one
    transaction (from the commit, which wakes them, to the last success). ``prepare`` sets the
    database up first (paused queues, limits: ``bench.control``)."""
    adapter = _fresh(url)
    if prepare is not None:
        prepare(adapter)
    procs = _spawn(url, adapter.schema, workers)
    try:
        _wait(lambda: len(adapter.workers()) == workers, 60, f"{workers} workers to start")
        time.sleep(0.3)  # let them go idle (LISTENing)
        batch = [NewJob(handler=NOOP)] * jobs
        started = time.perf_counter()
        adapter.enqueue_many(batch)
        _wait(lambda: not _pending(adapter), 600, "the drain")
        return jobs / (time.perf_counter() - started)
    finally:
        _stop(procs)
        drop_schema(adapter)
        adapter.close()


def latencies(url: str, samples: int) -> list[float]:
    """Enqueue→start (ms) of single jobs sent to one idle worker at random 20-120 ms gaps."""
    adapter = _fresh(url)
    procs = _spawn(url, adapter.schema, 1)
    fd, log = tempfile.mkstemp(prefix="litejobs-pgbench-", suffix=".log")
    os.close(fd)
    rng = random.Random(1)
    try:
        _wait(lambda: len(adapter.workers()) == 1, 60, "the worker to start")
        time.sleep(0.3)
        sent: dict[int, float] = {}
        for token in range(samples):
            time.sleep(rng.uniform(0.02, 0.12))
            handler = json.dumps(
                {"name": "stamp", "path": "bench.postgres_bench:stamp", "args": [log, token]}
            )
            sent[token] = time.monotonic()
            adapter.enqueue(NewJob(handler=handler))
            _wait(lambda: not _pending(adapter), 30, "a job to run", poll=0.002)
        started = {}
        for line in Path(log).read_text().splitlines():
            token, at = line.split()
            started[int(token)] = float(at)
        return [(started[t] - sent[t]) * 1000 for t in sent if t in started]
    finally:
        _stop(procs)
        os.unlink(log)
        drop_schema(adapter)
        adapter.close()


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def run(url: str, *, quick: bool) -> dict[str, float]:
    """Every PostgreSQL figure, medians over ``runs`` repetitions (1 when ``quick``)."""
    runs = 1 if quick else 3
    drain_jobs = 3000 if quick else 20_000
    out: dict[str, float] = {}
    rates = [enqueue_rates(url, 500 if quick else 3000, 3 if quick else 20) for _ in range(runs)]
    for key in ("enqueue_per_s", "enqueue_batch_per_s"):
        out[key] = statistics.median(r[key] for r in rates)
    out["drain_per_s"] = statistics.median(drain_rate(url, 2, drain_jobs) for _ in range(runs))
    out["drain_8_per_s"] = statistics.median(drain_rate(url, 8, drain_jobs) for _ in range(runs))
    lat = latencies(url, 60 if quick else 300)
    out["latency_p50_ms"] = _percentile(lat, 50)
    out["latency_p99_ms"] = _percentile(lat, 99)
    out.update(control(url, runs, drain_jobs, 20 if quick else 50, 1000))
    return out


def control(url: str, runs: int, jobs: int, samples: int, backlog: int) -> dict[str, float]:
    """Job control on PostgreSQL: the drain of 2 workers with 10 paused queues and a limit
    against without (interleaved run by run), and cancel latency (``bench.control``)."""
    from .control import pg_cancel_latency, pg_drain_controlled

    plain: list[float] = []
    controlled: list[float] = []
    for _ in range(runs):
        plain.append(drain_rate(url, 2, jobs))
        controlled.append(pg_drain_controlled(url, 2, jobs, backlog))
    out = {
        "control_plain_drain_per_s": statistics.median(plain),
        "control_drain_per_s": statistics.median(controlled),
    }
    out["control_drain_ratio"] = out["control_drain_per_s"] / out["control_plain_drain_per_s"]
    out.update(pg_cancel_latency(url, samples))
    return out


def main(argv: list[str]) -> int:
    if argv and argv[0] == "worker":
        return _worker_main(argv[1], argv[2], int(argv[3]))
    if not argv or argv[0].startswith("-"):
        print("usage: python -m bench.postgres_bench URL [--quick]", file=sys.stderr)
        return 2
    result = run(argv[0], quick="--quick" in argv)
    print(json.dumps({k: round(v, 2) for k, v in result.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
