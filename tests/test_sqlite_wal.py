"""The SQLite adapter's wal hook: every writer bounds the WAL right after the commit that
takes it past ``wal_wait_size``, and below that keeps SQLite's own PASSIVE autocheckpoint
(which registering a hook turns off).

Why: the WAL is only bounded if someone waits for long readers; with ``maintenance()`` alone
it grew by everything written between two calls (103 MiB in ``scripts/bench``). Sizes here are
WAL frames, not times: a tiny ``wal_wait_size`` makes the limit reachable in a few commits.
"""

from __future__ import annotations

import os
from pathlib import Path

import apsw
import pytest

from litejobs import JobManager, SQLiteAdapter
from litejobs.adapters.sqlite import AUTOCHECKPOINT_PAGES, _WalHook
from tests import sample_jobs

LIMIT = 64 * 1024


def wal_size(adapter: SQLiteAdapter) -> int:
    try:
        return os.stat(adapter.path + "-wal").st_size
    except FileNotFoundError:
        return 0


def enqueue_sizes(adapter: SQLiteAdapter, count: int) -> list[int]:
    """Enqueue ``count`` jobs one at a time; the WAL file size after each."""
    later = JobManager(adapters={"db": adapter}).create_scheduler()
    sizes = []
    for i in range(count):
        later(sample_jobs.record, [i])
        sizes.append(wal_size(adapter))
    return sizes


def test_a_writer_empties_the_wal_once_it_passes_the_limit(tmp_path: Path) -> None:
    adapter = SQLiteAdapter(tmp_path / "j.db", wal_wait_size=LIMIT)
    sizes = enqueue_sizes(adapter, 300)  # ~20 KiB of WAL each: ~6 MiB written in all
    # The commit that passes the limit truncates the WAL; one more commit's frames at most.
    assert max(sizes) < 2 * LIMIT
    assert sizes.count(0) >= 10
    adapter.close()


def test_below_the_limit_the_hook_checkpoints_as_sqlite_would(tmp_path: Path) -> None:
    """SQLite's autocheckpoint (PASSIVE at 1000 pages) lets the WAL start over, so it stays
    near 1000 frames although ~3000 are written; without any checkpoint it would hold all."""
    adapter = SQLiteAdapter(tmp_path / "j.db")  # default limit (32 MiB): never reached here
    page = int(adapter.connection.execute("PRAGMA page_size").fetchone()[0])  # type: ignore[index]
    frames = AUTOCHECKPOINT_PAGES * (page + 24)
    sizes = enqueue_sizes(adapter, 700)
    assert frames < max(sizes) < 1.2 * frames
    adapter.close()


def test_a_reader_that_outlasts_the_wait_fails_no_commit(tmp_path: Path) -> None:
    """While a reader holds an old snapshot the WAL cannot start over: the waiting checkpoint
    gives up (here at once), every commit still succeeds, and once the reader is gone the next
    writers bound the WAL again."""
    adapter = SQLiteAdapter(tmp_path / "j.db", wal_wait_size=LIMIT, wal_wait_seconds=0)
    enqueue_sizes(adapter, 1)
    reader = apsw.Connection(adapter.path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM background_jobs").fetchone()
    held = enqueue_sizes(adapter, 100)
    assert held[-1] > 10 * LIMIT  # pinned by the reader
    assert adapter.counts()["default"]["ready"] == 101
    reader.execute("COMMIT")
    after = enqueue_sizes(adapter, 60)
    assert 0 in after and max(after[after.index(0) :]) < 2 * LIMIT
    reader.close()
    adapter.close()


class FakeConnection:
    """Records what the hook asks of a connection; TRUNCATE checkpoints fail with ``error``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.error: BaseException | None = apsw.BusyError("a reader")
        self.busy_ms = 30_000

    def set_busy_timeout(self, ms: int) -> None:
        self.busy_ms = ms

    def wal_checkpoint(self, dbname: str, mode: int) -> tuple[int, int]:
        self.calls.append((dbname, mode))
        if mode == apsw.SQLITE_CHECKPOINT_TRUNCATE:
            assert self.busy_ms == 5_000  # waits for readers, for wal_wait_seconds
            if self.error is not None:
                raise self.error
        return (0, 0)


def test_after_a_failed_wait_the_hook_waits_again_only_after_another_limit_of_growth() -> None:
    hook = _WalHook(page_size=4096, limit=100 * 4120, wait_seconds=5.0, busy_ms=30_000)
    conn = FakeConnection()
    truncate = ("main", apsw.SQLITE_CHECKPOINT_TRUNCATE)
    passive = ("main", apsw.SQLITE_CHECKPOINT_PASSIVE)

    def commit(pages: int) -> list[tuple[str, int]]:
        conn.calls.clear()
        assert hook(conn, "main", pages) == apsw.SQLITE_OK  # type: ignore[arg-type]
        assert conn.busy_ms == 30_000  # the adapter's busy timeout again
        return conn.calls

    assert commit(100) == []  # at the limit, below SQLite's autocheckpoint
    assert commit(101) == [truncate]  # past it: wait for readers (who outlast the wait)
    assert commit(200) == []  # no stall per commit while the reader stays
    assert commit(201) == [truncate]  # another limit's worth of growth: try again
    assert commit(30) == []  # the WAL started over meanwhile (another connection's checkpoint)
    assert commit(101) == [truncate]  # so the plain limit applies again, not 301
    conn.error = None
    assert commit(1500) == [truncate]
    assert commit(101) == [truncate]  # it worked: back to the plain limit
    hook.limit_frames = 10 * 2**20 // 4120
    assert commit(999) == []
    assert commit(1000) == [passive]  # SQLite's autocheckpoint, kept


@pytest.mark.parametrize("error", [apsw.IOError("disk"), RuntimeError("bug")])
def test_the_hook_never_fails_a_commit(error: BaseException) -> None:
    """An error from the hook would fail the statement whose commit already happened."""
    hook = _WalHook(page_size=4096, limit=4120, wait_seconds=5.0, busy_ms=30_000)
    conn = FakeConnection()
    conn.error = error
    assert hook(conn, "main", 10) == apsw.SQLITE_OK  # type: ignore[arg-type]
    assert conn.busy_ms == 30_000
