"""The measurements. Each function runs one workload for one contender and returns numbers;
``bench.run`` repeats them, takes medians and prints the comparison."""

from __future__ import annotations

import importlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import raw
from .common import ROOT, Child, child_env, cpu_seconds, file_size, percentile, wait_for

HANDLER_SQL = '\'{"name":"noop","path":"bench.jobs:noop","args":[0]}\''


# -- litejobs ---------------------------------------------------------------------------------
def _later(db: Path):  # type: ignore[no-untyped-def]
    from litejobs import JobManager, SQLiteAdapter

    return JobManager(adapters={"sqlite": SQLiteAdapter(db)}).create_scheduler()


def lj_enqueue(db: Path, count: int) -> float:
    """``later(noop, [i])`` one call (one transaction) per job, validation included."""
    from .jobs import noop

    later = _later(db)
    later(noop, [0])  # open the connection, create the schema
    start = time.perf_counter()
    for i in range(count):
        later(noop, [i])
    elapsed = time.perf_counter() - start
    later.adapter.close()
    return count / elapsed


def lj_enqueue_batch(db: Path, count: int, batch: int = 1000) -> float:
    """``later.many`` with ``batch`` jobs per call (one transaction each)."""
    from .jobs import noop

    later = _later(db)
    later(noop, [0])
    start = time.perf_counter()
    for base in range(0, count, batch):
        later.many([(noop, [i]) for i in range(base, base + batch)])
    elapsed = time.perf_counter() - start
    later.adapter.close()
    return count / elapsed


def lj_fill(
    db: Path, count: int, *, scheduled_every: int = 0, queue: str = "default", priority: int = 50
) -> None:
    """Insert ``count`` ready no-op jobs with plain SQL (fast set-up, not a measurement), in
    ``queue`` at ``priority``.

    With ``scheduled_every=k``, every k-th job is instead due in a day at priority 1: the
    not-yet-due jobs that make a naive claim query walk past them.
    """
    from litejobs.adapters.sqlite import ts

    later = _later(db)
    conn = later.adapter.connection
    now = time.time()
    now_s, future_s = ts(now - 1), ts(now + 86_400)
    k = scheduled_every or count + 1
    with conn:
        conn.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
            "INSERT INTO background_jobs (state, handler, queue, priority, run_at, created_at, "
            "updated_at) SELECT CASE WHEN x % ? = 0 THEN 'scheduled' ELSE 'ready' END, "
            f"{HANDLER_SQL}, ?, CASE WHEN x % ? = 0 THEN 1 ELSE ? END, "
            "CASE WHEN x % ? = 0 THEN ? ELSE ? END, ?, ? FROM c",
            (count, k, queue, k, priority, k, future_s, now_s, now_s, now_s),
        )
    later.adapter.close()


def _go_and_wait(children: list[Child], timeout: float) -> tuple[float, list[dict[str, Any]]]:
    for child in children:
        child.expect("ready")
    start = time.monotonic()
    for child in children:
        child.send("go")
    results = [json.loads(child.expect("done", timeout)) for child in children]
    for child in children:
        child.stop()
    return start, results


def lj_drain(db: Path, count: int, workers: int = 2) -> float:
    """``count`` pre-filled no-op jobs drained by ``workers`` processes (``workoff``)."""
    lj_fill(db, count)
    children = [Child("drain", str(db), str(i)) for i in range(workers)]
    start, results = _go_and_wait(children, timeout=600)
    ran = sum(r["ran"] for r in results)
    if ran != count:
        raise RuntimeError(f"litejobs drain ran {ran} of {count} jobs")
    return count / (max(r["end"] for r in results) - start)


def lj_drain_pool(db: Path, count: int, workers: int = 2) -> float:
    """The same drain through ``litejobs.supervisor.run_workers`` (process start included)."""
    lj_fill(db, count)
    start, results = _go_and_wait([Child("pool", str(db), str(workers))], timeout=600)
    if results[0]["ran"] != count:
        raise RuntimeError(f"litejobs run_workers ran {results[0]['ran']} of {count} jobs")
    return count / (results[0]["end"] - start)


def _stamps(path: Path) -> dict[int, float]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    out: dict[int, float] = {}
    for line in text.splitlines():
        token, _, when = line.partition(" ")
        out[int(token)] = float(when)
    return out


def _latency_samples(
    enqueue: Any, out: Path, short: int, long: int, long_gap: float, token0: int = 0
) -> tuple[list[float], list[float]]:
    """Enqueue a stamping job, wait until it started, repeat after a short or a long gap."""
    rng = random.Random(7)
    results: tuple[list[float], list[float]] = ([], [])
    token = token0
    for kind, n in ((0, short), (1, long)):
        for _ in range(n):
            time.sleep(long_gap if kind else rng.uniform(0.01, 0.05))
            token += 1
            before = time.monotonic()
            enqueue(str(out), token)
            if not wait_for(lambda t=token: t in _stamps(out), 30, 0.001):
                raise RuntimeError(f"job {token} did not start within 30 s")
            results[kind].append((_stamps(out)[token] - before) * 1000)
    return results


def lj_latency(
    db: Path, short: int, long: int, long_gap: float, idle_window: float
) -> dict[str, float]:
    """Enqueue→start on 2 idle workers; also their CPU use while idle."""
    from .jobs import stamp

    later = _later(db)
    later(stamp, [os.devnull, 0])
    children = [Child("serve", str(db), str(i)) for i in range(2)]
    try:
        for child in children:
            child.expect("ready")
        out = db.with_suffix(".stamps")
        wait_for(lambda: len(later.adapter.workers()) == 2, 30, 0.01)
        time.sleep(0.5)
        cpu0 = [cpu_seconds(c.pid) for c in children]
        time.sleep(idle_window)
        cpu1 = [cpu_seconds(c.pid) for c in children]
        short_ms, long_ms = _latency_samples(
            lambda path, token: later(stamp, [path, token]), out, short, long, long_gap
        )
    finally:
        for child in children:
            child.stop()
    idle = max(b - a for a, b in zip(cpu0, cpu1, strict=True)) / idle_window * 100
    return {
        "p50_ms": percentile(short_ms, 50),
        "p99_ms": percentile(short_ms, 99),
        "long_p50_ms": percentile(long_ms, 50),
        "long_max_ms": max(long_ms),
        "idle_cpu_pct": idle,
    }


def lj_claim_cost(db: Path, pending: int, claims: int) -> float:
    """Median microseconds for one ``claim`` (limit 1) with ``pending`` jobs waiting, a tenth of
    them not yet due at a better priority (the scheduled-jobs trap)."""
    from dataclasses import replace

    from litejobs import SQLiteAdapter
    from litejobs.liveness import WorkerInfo

    lj_fill(db, pending, scheduled_every=10)
    adapter = SQLiteAdapter(db)
    me = WorkerInfo.for_this_process(
        queues="*", stale_after=60, max_attempts=24, delete_failed=False
    )
    claimer = replace(me, name="bench/claimer")
    times: list[float] = []
    for _ in range(min(claims, pending // 2)):  # leave most of the pending jobs in place
        start = time.perf_counter()
        got = adapter.claim(claimer, None, 1)
        times.append(time.perf_counter() - start)
        if not got:
            raise RuntimeError("claim found no job")
    adapter.close()
    times.sort()
    return times[len(times) // 2] * 1e6


def lj_wal(db: Path, seconds: float, hold: float, every: float = 1.0) -> dict[str, float]:
    """WAL size under sustained enqueue (one producer) + drain (two workers) with a reader
    holding ``hold``-second read transactions back to back; ``adapter.maintenance()`` every
    ``every`` seconds, as the supervisor runs it. ``enqueue_max_ms``: the producer's longest
    single enqueue (writers wait for the reader when the WAL must start over)."""
    from litejobs import SQLiteAdapter

    _later(db).adapter.close()
    adapter = SQLiteAdapter(db)
    wal = Path(str(db) + "-wal")
    workers = [Child("serve", str(db), str(i), "1") for i in range(2)]
    producer = Child("produce", str(db), str(seconds))
    reader = Child("reader", str(db), str(seconds), str(hold))
    peak = 0
    slowest = 0.0
    try:
        for child in (*workers, producer, reader):
            child.expect("ready")
        producer.send("go")
        reader.send("go")
        deadline = time.monotonic() + seconds
        next_maintenance = time.monotonic() + every
        while time.monotonic() < deadline:
            peak = max(peak, file_size(wal))
            if time.monotonic() >= next_maintenance:
                started = time.monotonic()
                adapter.maintenance()
                slowest = max(slowest, time.monotonic() - started)
                next_maintenance = time.monotonic() + every
            time.sleep(0.02)
        produced = json.loads(producer.expect("done", 60))
        reader.expect("done", 60)
    finally:
        for child in (producer, reader, *workers):
            child.stop()
    adapter.close()
    return {
        "wal_max_mib": peak / 2**20,
        "enqueued": produced["enqueued"],
        "enqueue_max_ms": produced["enqueue_max_s"] * 1000,
        "maintenance_max_ms": slowest * 1000,
    }


def lj_rss(db: Path, count: int) -> dict[str, float]:
    """One worker's memory after its first 1000 jobs and after ``count``."""
    lj_fill(db, count)
    child = Child("rss", str(db), str(count))
    _, results = _go_and_wait([child], timeout=1800)
    samples = results[0]["samples"]
    first = samples[0][1]
    last = samples[-1][1]
    return {
        "jobs": results[0]["ran"],
        "rss_first_kib": first["VmRSS"],
        "rss_last_kib": last["VmRSS"],
        "rss_growth_pct": (last["VmRSS"] - first["VmRSS"]) / first["VmRSS"] * 100,
        "anon_growth_pct": (last["RssAnon"] - first["RssAnon"]) / first["RssAnon"] * 100,
        "rss_peak_kib": max(s[1]["VmRSS"] for s in samples),
    }


# -- raw apsw ---------------------------------------------------------------------------------
def schema_insert(db: Path, count: int, batch: int = 1) -> float:
    """Hand-written INSERTs into litejobs' own table (its indexes, AUTOINCREMENT, text times):
    the floor any enqueue through litejobs pays, separating schema cost from library cost."""
    from litejobs import SQLiteAdapter
    from litejobs.adapters.sqlite import Q, ts

    adapter = SQLiteAdapter(db)
    conn = adapter.connection
    now = ts(time.time())
    row = {
        "state": "ready",
        "handler": raw.HANDLER,
        "queue": "default",
        "priority": 50,
        "run_at": now,
        "max_attempts": None,
        "unique_key": None,
        "max_runtime": None,
        "retry": None,
        "keep_result": 0,
        "now": now,
    }
    sql = Q["insert_job"]
    start = time.perf_counter()
    if batch == 1:
        for _ in range(count):
            conn.execute(sql, row)
    else:
        rows = [row] * batch
        for _ in range(count // batch):
            with conn:
                conn.executemany(sql, rows)
    elapsed = time.perf_counter() - start
    adapter.close()
    return (count // batch) * batch / elapsed


def raw_insert(db: Path, count: int) -> float:
    return raw.insert_commits(str(db), count)


def raw_insert_batch(db: Path, count: int) -> float:
    return raw.insert_batches(str(db), count)


def raw_cycles(db: Path, count: int, batch: int = 1, workers: int = 2) -> float:
    raw.fill(str(db), count)
    children = [Child("rawcycle", str(db), str(batch)) for _ in range(workers)]
    start, results = _go_and_wait(children, timeout=600)
    ran = sum(r["ran"] for r in results)
    if ran != count:
        raise RuntimeError(f"raw drain ran {ran} of {count} jobs")
    return count / (max(r["end"] for r in results) - start)


# -- huey -------------------------------------------------------------------------------------
def _huey(db: Path, tuned: bool):  # type: ignore[no-untyped-def]
    os.environ["BENCH_HUEY_DB"] = str(db)
    os.environ["BENCH_HUEY_TUNED"] = "1" if tuned else "0"
    from . import huey_app

    return importlib.reload(huey_app)


def huey_enqueue(db: Path, count: int, tuned: bool) -> float:
    app = _huey(db, tuned)
    app.noop(0)
    start = time.perf_counter()
    for i in range(count):
        app.noop(i)
    elapsed = time.perf_counter() - start
    app.huey.storage.close()
    return count / elapsed


def _consumer(db: Path, tuned: bool) -> subprocess.Popen[bytes]:
    env = child_env()
    env["BENCH_HUEY_DB"] = str(db)
    env["BENCH_HUEY_TUNED"] = "1" if tuned else "0"
    consumer = Path(sys.executable).parent / "huey_consumer"
    args = [str(consumer), "bench.huey_app.huey", "-k", "process", "-w", "2"]
    if tuned:
        args.append("-q")
    log = open(str(db) + ".log", "wb")  # noqa: SIM115  (closed with the process)
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=log)


def _stop_consumer(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def huey_drain(db: Path, count: int, tuned: bool) -> float:
    """Pre-fill ``count`` no-op tasks between two stamping tasks; the consumer (2 processes)
    drains them; the rate is measured between the two stamps (consumer start-up excluded)."""
    app = _huey(db, tuned)
    out = Path(str(db) + ".stamps")
    app.stamp(str(out), 0)
    for i in range(count):
        app.noop(i)
    app.stamp(str(out), 1)
    app.huey.storage.close()
    proc = _consumer(db, tuned)
    try:
        if not wait_for(lambda: 1 in _stamps(out), 600, 0.005):
            raise RuntimeError("huey did not drain its queue within 600 s")
    finally:
        _stop_consumer(proc)
    stamps = _stamps(out)
    return count / (stamps[1] - stamps[0])


def huey_latency(db: Path, short: int, long: int, long_gap: float) -> dict[str, float]:
    app = _huey(db, False)
    proc = _consumer(db, False)
    out = Path(str(db) + ".stamps")
    try:
        app.stamp(str(out), 0)
        if not wait_for(lambda: 0 in _stamps(out), 30, 0.005):
            raise RuntimeError("huey consumer did not start")
        short_ms, long_ms = _latency_samples(
            lambda path, token: app.stamp(path, token), out, short, long, long_gap
        )
    finally:
        _stop_consumer(proc)
        app.huey.storage.close()
    return {
        "p50_ms": percentile(short_ms, 50),
        "p99_ms": percentile(short_ms, 99),
        "long_p50_ms": percentile(long_ms, 50),
        "long_max_ms": max(long_ms),
    }
