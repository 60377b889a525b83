"""The raw apsw ceiling: the same workloads with hand-written SQL and no library around it.

Schema and settings are the best ones measured (docs/performance.md, "What SQLite itself can
do"): WAL, ``synchronous=NORMAL``, a partial claim index, ``BEGIN IMMEDIATE`` claims. litejobs
cannot beat this per transaction; it can only do less per job (batching) on top of it.
"""

from __future__ import annotations

import os
import time

import apsw

HANDLER = '{"name":"noop","path":"bench.jobs:noop","args":[0]}'

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY, queue TEXT NOT NULL, priority INTEGER NOT NULL, run_at REAL NOT NULL,
    locked_at REAL, locked_by TEXT, attempts INTEGER NOT NULL DEFAULT 0, handler TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (queue, priority, run_at) WHERE locked_at IS NULL;
"""

INSERT = "INSERT INTO jobs (queue, priority, run_at, handler) VALUES ('default', 50, ?, ?)"
CLAIM = (
    "UPDATE jobs SET locked_at = ?, locked_by = ?, attempts = attempts + 1 WHERE id IN "
    "(SELECT id FROM jobs WHERE locked_at IS NULL AND queue = 'default' AND run_at <= ? "
    "ORDER BY priority, run_at LIMIT ?) RETURNING id, handler"
)


def connect(path: str) -> apsw.Connection:
    conn = apsw.Connection(path)
    conn.set_busy_timeout(30_000)
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "cache_size=-65536",
        "mmap_size=268435456",
        "wal_autocheckpoint=10000",
    ):
        # One statement per call and results drained: apsw runs the statements of a
        # multi-statement string lazily and stops at the first one that returns a row.
        list(conn.execute(f"PRAGMA {pragma}"))
    list(conn.execute(SCHEMA))
    return conn


def insert_commits(path: str, count: int) -> float:
    """Single-row INSERT commits per second (autocommit: one transaction per job)."""
    conn = connect(path)
    execute = conn.execute
    now = time.time()
    start = time.perf_counter()
    for _ in range(count):
        execute(INSERT, (now, HANDLER))
    elapsed = time.perf_counter() - start
    conn.close()
    return count / elapsed


def insert_batches(path: str, count: int, batch: int = 1000) -> float:
    """Rows per second inserted ``batch`` rows per transaction."""
    conn = connect(path)
    now = time.time()
    rows = [(now, HANDLER)] * batch
    start = time.perf_counter()
    for _ in range(count // batch):
        with conn:
            conn.executemany(INSERT, rows)
    elapsed = time.perf_counter() - start
    conn.close()
    return (count // batch) * batch / elapsed


def fill(path: str, count: int) -> None:
    conn = connect(path)
    with conn:
        conn.executemany(INSERT, [(time.time(), HANDLER)] * count)
    conn.close()


def claim_complete_loop(conn: apsw.Connection, batch: int) -> int:
    """Claim ``batch`` jobs in one transaction, then delete them in another, until none is left."""
    me = f"raw-{os.getpid()}"
    done = 0
    execute = conn.execute
    while True:
        execute("BEGIN IMMEDIATE")
        rows = list(execute(CLAIM, (time.time(), me, time.time(), batch)))
        execute("COMMIT")
        if not rows:
            return done
        if batch == 1:
            execute("DELETE FROM jobs WHERE id = ?", (rows[0][0],))
        else:
            with conn:
                conn.executemany("DELETE FROM jobs WHERE id = ?", [(r[0],) for r in rows])
        done += len(rows)
