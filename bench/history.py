"""What keeping finished jobs costs: drain and enqueue with retention on against off (and with
the outcome statistics off, to price them per outcome), and how long pruning holds the write
lock while it deletes a million finished rows."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .common import Child, median, percentile
from .sections import _go_and_wait, _later, lj_enqueue, lj_fill

DAY = 86_400


def drain(
    db: Path, count: int, keep: float, stats: bool = True, workers: int = 2
) -> tuple[float, float]:
    """``count`` no-op jobs drained by ``workers`` processes: jobs/s, and the workers' CPU time
    per job in µs (steadier than wall time on a shared machine). ``keep`` > 0 keeps every
    success that long (the retention on), 0 deletes it (the default); ``stats=False`` skips the
    outcome statistics (to price them)."""
    lj_fill(db, count)
    children = [
        Child("drain", str(db), str(i), str(keep), "1" if stats else "0") for i in range(workers)
    ]
    start, results = _go_and_wait(children, timeout=600)
    if sum(r["ran"] for r in results) != count:
        raise RuntimeError(f"drain ran {sum(r['ran'] for r in results)} of {count} jobs")
    cpu = sum(r["cpu"] for r in results)
    return count / (max(r["end"] for r in results) - start), cpu * 1e6 / count


def enqueue(db: Path, count: int, kept: int) -> float:
    """``later(noop, [i])`` one per call, into a database already holding ``kept`` finished
    jobs under retention (0: an empty one, as with the retention off)."""
    if kept:
        fill_finished(db, kept, keep_until=time.time() + DAY)
    return lj_enqueue(db, count)


def fill_finished(db: Path, count: int, keep_until: float) -> None:
    """``count`` succeeded jobs kept until ``keep_until``, inserted with plain SQL (set-up)."""
    from litejobs.adapters.sqlite import ts

    later = _later(db)
    conn = later.adapter.connection
    done, until = ts(time.time() - DAY), ts(keep_until)
    with conn:
        conn.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
            "INSERT INTO background_jobs (state, handler, queue, priority, attempts, created_at, "
            "updated_at, finished_at, keep_until) SELECT 'succeeded', "
            '\'{"name":"noop","path":"bench.jobs:noop","args":[0]}\', \'default\', 50, 1, ?, ?, '
            "?, ? FROM c",
            (count, done, done, done, until),
        )
    later.adapter.close()


@contextmanager
def _timed_writes(adapter: Any, spans: list[float]) -> Any:
    """Record how long each write transaction of ``adapter`` holds the write lock (from its
    ``BEGIN IMMEDIATE`` to its ``COMMIT``): what every other writer waits for at most."""
    original = adapter._write

    @contextmanager
    def timed(**options: Any) -> Any:
        start = time.perf_counter()
        with original(**options) as conn:
            yield conn
        spans.append(time.perf_counter() - start)

    adapter._write = timed
    try:
        yield
    finally:
        del adapter._write


def prune(db: Path, count: int) -> dict[str, float]:
    """Prune ``count`` expired finished jobs as a worker does (``prune_expired`` batches until
    none is left), then as ``litejobs prune --older-than`` does; the longest transaction of each."""
    from litejobs import SQLiteAdapter

    fill_finished(db, count, keep_until=time.time() - 1)
    adapter = SQLiteAdapter(db)
    spans: list[float] = []
    start = time.perf_counter()
    with _timed_writes(adapter, spans):
        while adapter.prune_expired() > 0:
            pass
    expired_s = time.perf_counter() - start
    fill_finished(db, count, keep_until=time.time() + DAY)
    by_age: list[float] = []
    start = time.perf_counter()
    with _timed_writes(adapter, by_age):
        pruned = adapter.prune(time.time())
    age_s = time.perf_counter() - start
    adapter.close()
    if pruned != count:
        raise RuntimeError(f"prune --older-than deleted {pruned} of {count}")
    return {
        "rows": count,
        "expired_txn_max_ms": max(spans) * 1000,
        "expired_txn_p50_ms": median(spans) * 1000,
        "expired_txn_p99_ms": percentile(spans, 99) * 1000,
        "expired_rows_per_s": count / expired_s,
        "by_age_txn_max_ms": max(by_age) * 1000,
        "by_age_rows_per_s": count / age_s,
    }
