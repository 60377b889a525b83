"""SQLite storage through ``apsw``: one file, WAL mode, many processes.

Design notes (measurements in ``shared/NOTES-sqlite.md`` and ``scripts/bench``):

* Every write that reads first (claim, recovery) runs in ``BEGIN IMMEDIATE``: a deferred
  read-then-write transaction cannot wait for the write lock and fails with ``SQLITE_BUSY``
  however long the busy timeout is.
* An explicit ``state`` column keeps not-yet-due jobs out of the claim indexes: otherwise a claim
  ordered by priority steps over every future job that sorts ahead of the first runnable one.
  Scheduled jobs are promoted to ``ready`` inside the claim transaction when their time comes.
* Times are stored as fixed-width ISO 8601 UTC text (``2030-01-01T00:00:00.000000Z``): it sorts
  correctly, SQLite's date functions read it, and a person can read the file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import apsw

from ..clock import Clock
from ..errors import StorageError, ValidationError
from .base import (
    JOB_STATES,
    Adapter,
    ClaimedJob,
    JobRecord,
    JobState,
    NewJob,
    Outcome,
    WorkerRecord,
)

T = TypeVar("T")
Durability = Literal["normal", "full"]

SCHEMA_VERSION = 2

MIGRATIONS: list[str] = [
    # 1: jobs, workers
    """
    CREATE TABLE IF NOT EXISTS background_jobs (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        state        TEXT    NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER,
        handler      TEXT    NOT NULL,
        queue        TEXT    NOT NULL DEFAULT 'default',
        priority     INTEGER NOT NULL DEFAULT 50,
        run_at       TEXT,
        locked_at    TEXT,
        locked_by    TEXT,
        last_error   TEXT,
        failed_at    TEXT,
        unique_key   TEXT,
        created_at   TEXT    NOT NULL,
        updated_at   TEXT    NOT NULL
    );
    CREATE INDEX IF NOT EXISTS background_jobs_ready_by_queue
        ON background_jobs (queue, priority, run_at, id) WHERE state = 'ready';
    CREATE INDEX IF NOT EXISTS background_jobs_ready
        ON background_jobs (priority, run_at, id) WHERE state = 'ready';
    CREATE INDEX IF NOT EXISTS background_jobs_scheduled
        ON background_jobs (run_at) WHERE state = 'scheduled';
    CREATE INDEX IF NOT EXISTS background_jobs_running
        ON background_jobs (locked_by) WHERE state = 'running';
    CREATE INDEX IF NOT EXISTS background_jobs_queue_state
        ON background_jobs (queue, state);
    CREATE UNIQUE INDEX IF NOT EXISTS background_jobs_unique_active
        ON background_jobs (unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'ready', 'running');
    CREATE TABLE IF NOT EXISTS litejobs_workers (
        name         TEXT PRIMARY KEY,
        host         TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        queues       TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL
    );
    """,
    # 2: recurring ticks; the primary key is what makes a tick fire once across all workers
    """
    CREATE TABLE IF NOT EXISTS litejobs_recurring_ticks (
        name         TEXT NOT NULL,
        tick_at      TEXT NOT NULL,
        job_id       INTEGER,
        created_at   TEXT NOT NULL,
        PRIMARY KEY (name, tick_at)
    ) WITHOUT ROWID;
    """,
]

_JOB_COLUMNS = (
    "id, state, queue, priority, attempts, max_attempts, handler, run_at, locked_at, "
    "locked_by, last_error, failed_at, created_at, updated_at, unique_key"
)


_ts_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def ts(value: float) -> str:
    """Epoch seconds to the stored text form (rounded to the microsecond).

    Every enqueue, claim and outcome formats a time, so the date part is cached per second:
    this is ~10x cheaper than ``datetime.strftime`` (a measurable share of an enqueue).
    """
    global _ts_second
    second, micro = divmod(round(value * 1_000_000), 1_000_000)
    cached = _ts_second
    if cached[0] != second:
        # isoformat, not strftime("%Y"): glibc does not pad years before 1000 to four digits,
        # and such text neither sorts nor parses back (a typo'd year poisoned every claim).
        text = datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat()
        cached = _ts_second = (second, text)
    return f"{cached[1]}.{micro:06d}Z"


def parse_ts(value: str | None) -> float | None:
    """Stored text form to epoch seconds."""
    return None if value is None else datetime.fromisoformat(value).timestamp()


#: Past this WAL size, the writer that commits (and ``maintenance()``) waits for readers to
#: finish so the WAL can start over, blocking writers meanwhile (``SQLiteAdapter(wal_wait_size=)``).
WAL_WAIT_SIZE = 32 * 2**20
#: ... and for at most this long (``SQLiteAdapter(wal_wait_seconds=)``).
WAL_WAIT_SECONDS = 5.0
#: SQLite's default ``wal_autocheckpoint`` (pages), which a wal hook replaces: kept by ours.
AUTOCHECKPOINT_PAGES = 1000


class _WalHook:
    """One connection's wal hook: SQLite's autocheckpoint, plus a bound on the WAL's size.

    SQLite calls it after every commit of the connection, once the write lock is released,
    with the number of frames in the WAL (since it last started over). Registering it turns
    SQLite's own autocheckpoint off, so below ``wal_wait_size`` it does what that did: a
    PASSIVE checkpoint (waits for no one) once the WAL holds 1000 pages. Past ``wal_wait_size``
    (usually a reader holding an old snapshot kept the WAL from starting over) it runs the
    TRUNCATE checkpoint ``maintenance()`` runs, waiting up to ``wait_seconds`` for the readers
    and blocking every writer meanwhile, and empties the WAL. So every writer bounds the WAL
    right when it passes the limit, whatever the interval of ``maintenance()`` (between two
    calls one second apart, enqueues flat out grew it by ~100 MiB). If the readers outlast the
    wait, this connection waits again only after another ``wal_wait_size`` of growth: a reader
    that never ends costs the writers one stall per limit's worth of writes, not one per commit.

    It must return SQLITE_OK: an error would make the statement that committed fail after
    the commit (a caller would retry a job that is stored). Checkpoint errors are ignored, as
    SQLite's autocheckpoint ignores them.
    """

    __slots__ = ("busy_ms", "failed_at", "limit_frames", "wait_ms")

    def __init__(self, page_size: int, limit: int, wait_seconds: float, busy_ms: int) -> None:
        # A WAL frame is one page plus its 24-byte header.
        self.limit_frames = limit // (page_size + 24)
        self.wait_ms = int(wait_seconds * 1000)
        self.busy_ms = busy_ms
        self.failed_at = 0  # WAL frames when a waiting checkpoint last gave up (0: none since)

    def __call__(self, conn: apsw.Connection, dbname: str, pages: int) -> int:
        try:
            if pages < self.failed_at:
                self.failed_at = 0  # the WAL started over since (another connection's checkpoint)
            waited_enough = self.failed_at and pages < self.failed_at + self.limit_frames
            if pages > self.limit_frames and not waited_enough:
                conn.set_busy_timeout(self.wait_ms)
                try:
                    conn.wal_checkpoint(dbname, apsw.SQLITE_CHECKPOINT_TRUNCATE)
                    self.failed_at = 0
                except (apsw.BusyError, apsw.LockedError):
                    self.failed_at = pages
                finally:
                    conn.set_busy_timeout(self.busy_ms)
            elif pages >= AUTOCHECKPOINT_PAGES:
                conn.wal_checkpoint(dbname, apsw.SQLITE_CHECKPOINT_PASSIVE)
        except Exception:  # never fail a statement that has committed
            pass
        return apsw.SQLITE_OK


def default_db_path() -> Path:
    """``$LITEJOBS_DB`` if set, else ``platformdirs.user_data_dir("litejobs")/jobs.db``."""
    env = os.environ.get("LITEJOBS_DB")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("litejobs")) / "jobs.db"


def _storage_error(exc: BaseException, path: str) -> StorageError:
    """Translate an apsw exception into one clear line an operator can act on."""
    if isinstance(exc, apsw.BusyError):
        msg = (
            f"database {path} is locked by another process past the busy timeout; "
            "retry, or find the process holding the lock"
        )
    elif isinstance(exc, apsw.ReadOnlyError):
        msg = f"database {path} is read-only; fix the file's permissions or mount"
    elif isinstance(exc, apsw.NotADBError):
        msg = f"{path} is not a SQLite database; point --db / LITEJOBS_DB at a litejobs database"
    elif isinstance(exc, apsw.CorruptError):
        msg = f"database {path} is corrupt; restore it from a backup"
    elif isinstance(exc, apsw.FullError):
        msg = f"disk full while writing {path}; free space and retry (no job was lost)"
    elif isinstance(exc, apsw.IOError):
        # e.g. EFBIG past a file size limit, or failing storage: the transaction was rolled back.
        msg = (
            f"disk I/O error on {path} (disk or file size limit full, or failing storage); "
            "fix it and retry (the failed write was rolled back)"
        )
    elif isinstance(exc, apsw.CantOpenError):
        parent = Path(path).parent
        if not parent.is_dir():
            msg = f"cannot open database {path}: directory {parent} does not exist; create it"
        elif Path(path).is_dir():
            msg = f"cannot open database {path}: it is a directory; give a file path"
        else:
            msg = f"cannot open database {path}: check the path and its permissions"
    else:
        msg = f"database {path} is unavailable: {type(exc).__name__}: {exc}"
    err = StorageError(msg)
    err.__cause__ = exc
    return err


class SQLiteAdapter(Adapter):
    """Jobs in one SQLite file (WAL mode), shared safely by any number of processes.

    ``path``: the database file (created 0600 with its schema if missing; its directory must
    exist unless it is the default). ``durability="full"`` fsyncs every commit (survives power
    loss, ~5x slower per commit); the default ``"normal"`` survives process crashes.
    ``busy_timeout``: seconds a writer waits for another writer's lock before giving up.
    ``wal_wait_size`` / ``wal_wait_seconds``: once the WAL passes this many bytes, the writer
    whose commit passed it waits up to this long for readers so the WAL can start over
    (blocking other writers meanwhile); see :class:`_WalHook`.
    """

    name = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        durability: Durability = "normal",
        busy_timeout: float = 30.0,
        clock: Clock | None = None,
        wal_wait_size: int = WAL_WAIT_SIZE,
        wal_wait_seconds: float = WAL_WAIT_SECONDS,
    ) -> None:
        super().__init__(clock=clock)
        self._default_path = path is None
        self.path = str(Path(path) if path is not None else default_db_path())
        if durability not in ("normal", "full"):
            raise ValueError("durability must be 'normal' or 'full'")
        self.durability = durability
        self.busy_timeout = busy_timeout
        self.wal_wait_size = wal_wait_size
        self.wal_wait_seconds = wal_wait_seconds
        self._local = threading.local()
        self._schema_ready = False
        self._schema_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteAdapter({self.path!r})"

    # -- connections ------------------------------------------------------------------------
    @property
    def connection(self) -> apsw.Connection:
        """This thread's connection (opened on first use, and again after a ``fork``)."""
        local = self._local
        conn: apsw.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        conn = self._open()
        local.conn, local.pid = conn, os.getpid()
        local.data_version = None
        return conn

    def _open(self) -> apsw.Connection:
        path = Path(self.path)
        try:
            if self._default_path:
                path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() and path.parent.is_dir():
                # Create the file owner-only before SQLite does; -wal/-shm inherit its mode.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise StorageError(f"cannot create database {path}: {exc.strerror}") from exc
        try:
            conn = apsw.Connection(self.path)
            conn.set_busy_timeout(int(self.busy_timeout * 1000))
            cur = conn.cursor()
            mode = cur.execute("PRAGMA journal_mode=WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StorageError(f"database {self.path} cannot use WAL mode (got {mode})")
            sync = "FULL" if self.durability == "full" else "NORMAL"
            for pragma in (
                f"synchronous={sync}",
                "foreign_keys=ON",
                # SQLite's own 2 MiB page cache and no mmap: with the claim on its partial
                # index, a claim at 1M pending costs what it does at 1k anyway, and a bigger
                # cache (or mmap'd pages) only made a worker's RSS grow by 50-130 % over a
                # 100k-job drain (scripts/bench --only rss,claim).
                "cache_size=-2000",
                # No wal_autocheckpoint PRAGMA (it would replace the wal hook below) and no
                # journal_size_limit: with 10000 / 64 MiB, readers with no busy timeout
                # (tests/chaos) saw SQLITE_BUSY now and then. The hook bounds the WAL.
            ):
                # One per call, results drained: apsw runs a multi-statement string lazily and
                # silently skips everything after the first statement that returns a row.
                list(cur.execute(f"PRAGMA {pragma}"))
            page_size = int(cur.execute("PRAGMA page_size").fetchone()[0])  # type: ignore[index]
            conn.set_wal_hook(
                _WalHook(
                    page_size,
                    self.wal_wait_size,
                    self.wal_wait_seconds,
                    int(self.busy_timeout * 1000),
                )
            )
            if not self._schema_ready:
                with self._schema_lock:
                    self._migrate(conn)
                    self._schema_ready = True
        except apsw.Error as exc:
            raise _storage_error(exc, self.path) from exc
        return conn

    def _migrate(self, conn: apsw.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # type: ignore[index]
        if version >= len(MIGRATIONS):
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # type: ignore[index]
            for number in range(version, len(MIGRATIONS)):
                conn.execute(MIGRATIONS[number])
            conn.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _write(self) -> Iterator[apsw.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: takes the write lock up front (waits, never fails
        with a busy snapshot), commits on success, rolls back on any exception."""
        conn = self.connection
        try:
            conn.execute("BEGIN IMMEDIATE")
        except apsw.Error as exc:
            self._drop_if_read_only(exc)
            raise _storage_error(exc, self.path) from exc
        try:
            yield conn
        except BaseException as exc:
            with suppress(apsw.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, apsw.Error):
                self._drop_if_read_only(exc)
                raise _storage_error(exc, self.path) from exc
            raise
        else:
            try:
                conn.execute("COMMIT")
            except apsw.Error as exc:
                with suppress(apsw.Error):
                    conn.execute("ROLLBACK")
                raise _storage_error(exc, self.path) from exc

    def _drop_if_read_only(self, exc: apsw.Error) -> None:
        """A connection opened while the file was read-only stays read-only for good (SQLite
        fell back to ``O_RDONLY``): forget it, so the next call reopens once the file is fixed."""
        if isinstance(exc, apsw.ReadOnlyError):
            self.close()

    def _read(self, fn: Callable[[apsw.Connection], T]) -> T:
        try:
            return fn(self.connection)
        except apsw.Error as exc:
            raise _storage_error(exc, self.path) from exc

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        watcher = getattr(self._local, "watch", None)
        if watcher is not None and watcher.pid == os.getpid():
            watcher.close()
        self._local = threading.local()

    # -- scheduling -------------------------------------------------------------------------
    _INSERT = (
        "INSERT INTO background_jobs (state, handler, queue, priority, run_at, max_attempts, "
        "unique_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    @staticmethod
    def _params(job: NewJob, now: float, now_s: str) -> tuple[Any, ...]:
        run_at = now if job.run_at is None else job.run_at
        return (
            "ready" if run_at <= now else "scheduled",
            job.handler,
            job.queue,
            job.priority,
            ts(run_at) if job.run_at is not None else now_s,
            job.max_attempts,
            job.unique_key,
            now_s,
            now_s,
        )

    def _insert(self, conn: apsw.Connection, job: NewJob, now: float, now_s: str) -> int:
        params = self._params(job, now, now_s)
        if job.unique_key is None:
            conn.execute(self._INSERT, params)
            return conn.last_insert_rowid()
        existing = conn.execute(
            "SELECT id FROM background_jobs WHERE unique_key = ? "
            "AND state IN ('scheduled', 'ready', 'running')",
            (job.unique_key,),
        ).fetchone()
        if existing is not None:
            return int(existing[0])
        conn.execute(self._INSERT, params)
        return conn.last_insert_rowid()

    def schedule(self, job: NewJob) -> int:
        now = self.clock.now()
        if job.unique_key is None:
            # One INSERT is atomic on its own: autocommit saves the BEGIN/COMMIT round trips
            # (a third of an enqueue). It takes the write lock at its start, so the busy
            # timeout applies as with BEGIN IMMEDIATE.
            conn = self.connection
            try:
                conn.execute(self._INSERT, self._params(job, now, ts(now)))
                return conn.last_insert_rowid()
            except apsw.Error as exc:
                raise _storage_error(exc, self.path) from exc
        with self._write() as conn:
            return self._insert(conn, job, now, ts(now))

    #: One run of a :class:`~litejobs.scheduling.JobBatch`: ``json_each`` splits the run's
    #: arguments (one JSON array, element i is job i's) and SQLite builds each handler as
    #: ``head || element || tail``. Its ``value`` is the element's own text (JSONB keeps the
    #: text of numbers and strings, Python's encoding is already minified), so the stored
    #: handler is byte for byte what one-by-one scheduling stores (tested with Hypothesis).
    #: Rows come out of the scan in array order (an ORDER BY would only add a sort).
    _INSERT_RUN = (
        "INSERT INTO background_jobs (state, handler, queue, priority, run_at, max_attempts, "
        "unique_key, created_at, updated_at) "
        "SELECT ?, ? || value || ?, ?, ?, ?, ?, NULL, ?, ? FROM json_each(?)"
    )

    def schedule_many(self, jobs: Sequence[NewJob]) -> list[int]:
        from ..scheduling import JobBatch  # not at the top: scheduling imports the adapters

        now = self.clock.now()
        now_s = ts(now)
        with self._write() as conn:
            if isinstance(jobs, JobBatch):
                # One statement per run instead of one bound row per job: ~1.5x fewer
                # microseconds per job in SQLite, and no per-job NewJob or tuple in Python.
                for run in jobs.runs:
                    state, _, queue, priority, run_at, max_attempts, _, _, _ = self._params(
                        run.template, now, now_s
                    )
                    try:
                        conn.execute(
                            self._INSERT_RUN,
                            (
                                state,
                                run.head,
                                run.tail,
                                queue,
                                priority,
                                run_at,
                                max_attempts,
                                now_s,
                                now_s,
                                run.items,
                            ),
                        )
                    except (apsw.SQLError, apsw.TooBigError):
                        # Arguments nested deeper than SQLite's JSON parser allows (1000
                        # levels, with a raised recursion limit) or a run over its 1 GB
                        # string limit: the failed statement left nothing; insert row by row.
                        conn.executemany(
                            self._INSERT, [self._params(row, now, now_s) for row in run.rows()]
                        )
            elif any(job.unique_key is not None for job in jobs):
                return [self._insert(conn, job, now, now_s) for job in jobs]
            else:
                conn.executemany(self._INSERT, [self._params(job, now, now_s) for job in jobs])
            # AUTOINCREMENT ids are consecutive inside one write transaction.
            last = conn.last_insert_rowid()
            return list(range(last - len(jobs) + 1, last + 1))

    def schedule_tick(self, name: str, tick_at: float, job: NewJob) -> int | None:
        now = self.clock.now()
        now_s, tick_s = ts(now), ts(tick_at)
        with self._write() as conn:
            row = conn.execute(
                "SELECT max(tick_at) FROM litejobs_recurring_ticks WHERE name = ?", (name,)
            ).fetchone()
            last = row[0] if row else None
            if last is not None and last >= tick_s:
                return None
            job_id = None if last is None else self._insert(conn, job, now, now_s)
            conn.execute(
                "INSERT INTO litejobs_recurring_ticks (name, tick_at, job_id, created_at) "
                "VALUES (?, ?, ?, ?)",
                (name, tick_s, job_id, now_s),
            )
            # Only the latest tick matters for deciding; keep a short history for people.
            conn.execute(
                "DELETE FROM litejobs_recurring_ticks WHERE name = ? AND tick_at < "
                "(SELECT tick_at FROM litejobs_recurring_ticks WHERE name = ? "
                "ORDER BY tick_at DESC LIMIT 1 OFFSET 9)",
                (name, name),
            )
            return job_id

    def last_ticks(self) -> dict[str, float]:
        def query(conn: apsw.Connection) -> dict[str, float]:
            return {
                name: parse_ts(tick) or 0.0
                for name, tick in conn.execute(
                    "SELECT name, max(tick_at) FROM litejobs_recurring_ticks GROUP BY name"
                )
            }

        return self._read(query)

    # -- claiming ---------------------------------------------------------------------------
    def _promote(self, conn: apsw.Connection, now_s: str) -> None:
        conn.execute(
            "UPDATE background_jobs SET state = 'ready' WHERE state = 'scheduled' AND run_at <= ?",
            (now_s,),
        )

    def claim(self, worker: str, queues: Sequence[str] | None, limit: int = 1) -> list[ClaimedJob]:
        now = self.clock.now()
        now_s = ts(now)
        with self._write() as conn:
            self._promote(conn, now_s)
            if queues is None:
                ids = [
                    row[0]
                    for row in conn.execute(
                        "SELECT id FROM background_jobs WHERE state = 'ready' "
                        "ORDER BY priority, run_at, id LIMIT ?",
                        (limit,),
                    )
                ]
            else:
                candidates: list[tuple[int, str, int]] = []
                for queue in queues:
                    candidates.extend(
                        conn.execute(
                            "SELECT priority, run_at, id FROM background_jobs "
                            "WHERE state = 'ready' AND queue = ? "
                            "ORDER BY priority, run_at, id LIMIT ?",
                            (queue, limit),
                        )
                    )
                candidates.sort()
                ids = [row[2] for row in candidates[:limit]]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            rows = list(
                conn.execute(
                    "UPDATE background_jobs SET state = 'running', locked_by = ?, locked_at = ?, "
                    "attempts = attempts + 1, updated_at = ? "
                    f"WHERE id IN ({marks}) "
                    "RETURNING id, handler, queue, priority, attempts, max_attempts, run_at",
                    (worker, now_s, now_s, *ids),
                )
            )
        claimed = [
            ClaimedJob(
                id=r[0],
                handler=r[1],
                queue=r[2],
                priority=r[3],
                attempts=r[4],
                max_attempts=r[5],
                locked_by=worker,
                locked_at=now,
                run_at=parse_ts(r[6]),
            )
            for r in rows
        ]
        claimed.sort(key=lambda j: (j.priority, j.run_at or 0.0, j.id))
        return claimed

    def record(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        now = self.clock.now()
        now_s = ts(now)
        written: list[bool] = []
        with self._write() as conn:
            for outcome in outcomes:
                job = outcome.job
                # locked_at too: a person's retry resets attempts, so the same worker name can
                # hold the same job at the same attempt again; the claim time tells them apart.
                fence = (job.id, job.locked_by, job.attempts, ts(job.locked_at))
                where = (
                    "WHERE id = ? AND state = 'running' AND locked_by = ? AND attempts = ? "
                    "AND locked_at = ?"
                )
                if outcome.delete and outcome.kind in ("success", "failure"):
                    conn.execute(f"DELETE FROM background_jobs {where}", fence)
                elif outcome.kind == "release":
                    conn.execute(
                        "UPDATE background_jobs SET state = 'ready', locked_at = NULL, "
                        "locked_by = NULL, attempts = attempts - 1, updated_at = ? " + where,
                        (now_s, *fence),
                    )
                elif outcome.kind == "success":
                    conn.execute(
                        "UPDATE background_jobs SET state = 'succeeded', locked_at = NULL, "
                        "locked_by = NULL, run_at = NULL, last_error = NULL, updated_at = ? "
                        + where,
                        (now_s, *fence),
                    )
                elif outcome.kind == "error":
                    retry_at = outcome.retry_at if outcome.retry_at is not None else now
                    conn.execute(
                        "UPDATE background_jobs SET state = ?, locked_at = NULL, "
                        "locked_by = NULL, run_at = ?, last_error = ?, updated_at = ? " + where,
                        (
                            "ready" if retry_at <= now else "scheduled",
                            ts(retry_at),
                            outcome.error,
                            now_s,
                            *fence,
                        ),
                    )
                else:
                    conn.execute(
                        "UPDATE background_jobs SET state = 'failed', locked_at = NULL, "
                        "locked_by = NULL, run_at = NULL, failed_at = ?, last_error = ?, "
                        "updated_at = ? " + where,
                        (now_s, outcome.error, now_s, *fence),
                    )
                written.append(conn.changes() == 1)
        return written

    def has_ready(self, queues: Sequence[str] | None) -> bool:
        now_s = ts(self.clock.now())

        def query(conn: apsw.Connection) -> bool:
            if queues is None:
                row = conn.execute(
                    "SELECT EXISTS(SELECT 1 FROM background_jobs WHERE state = 'ready') "
                    "OR EXISTS(SELECT 1 FROM background_jobs "
                    "WHERE state = 'scheduled' AND run_at <= ?)",
                    (now_s,),
                ).fetchone()
                return bool(row and row[0])
            for queue in queues:
                row = conn.execute(
                    "SELECT EXISTS(SELECT 1 FROM background_jobs "
                    "WHERE state = 'ready' AND queue = ?) "
                    "OR EXISTS(SELECT 1 FROM background_jobs "
                    "WHERE state = 'scheduled' AND run_at <= ? AND queue = ?)",
                    (queue, now_s, queue),
                ).fetchone()
                if row and row[0]:
                    return True
            return False

        return self._read(query)

    def next_run_at(self, queues: Sequence[str] | None) -> float | None:
        def query(conn: apsw.Connection) -> float | None:
            if queues is None:
                row = conn.execute(
                    "SELECT min(run_at) FROM background_jobs WHERE state = 'scheduled'"
                ).fetchone()
            else:
                marks = ",".join("?" * len(queues))
                row = conn.execute(
                    "SELECT min(run_at) FROM background_jobs "
                    f"WHERE state = 'scheduled' AND queue IN ({marks})",
                    tuple(queues),
                ).fetchone()
            return parse_ts(row[0]) if row else None

        return self._read(query)

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: changes when *another* connection commits."""
        return self._read(lambda c: int(c.execute("PRAGMA data_version").fetchone()[0]))  # type: ignore[index]

    def wait_for_change(self, timeout: float, poll: float = 0.005) -> bool:
        """Wait until another connection commits (True) or ``timeout`` passes (False).

        ``PRAGMA data_version`` (a shared-memory read, no pages) says whether anything was
        committed. Between checks the thread sleeps on an inotify watch of the ``-wal`` file,
        which every commit writes: woken within microseconds from any process, no CPU while
        idle, re-checked every 0.5 s for safety. Without inotify it polls every ``poll``
        seconds (about 1-2 % of a core at 5 ms, measured by ``scripts/bench``).
        """
        import time

        from .filewatch import watch

        local = self._local
        conn = self.connection
        watcher = getattr(local, "watch", None)
        if watcher is None or watcher.pid != os.getpid():
            watcher = local.watch = watch(self.path + "-wal")
        baseline = getattr(local, "data_version", None)
        if baseline is None:
            baseline = local.data_version = self.data_version()
        deadline = time.monotonic() + max(0.0, timeout)
        settle = 0.0
        while True:
            try:
                current = int(conn.execute("PRAGMA data_version").fetchone()[0])  # type: ignore[index]
            except apsw.Error as exc:
                raise _storage_error(exc, self.path) from exc
            if current != baseline:
                local.data_version = current
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if watcher is None:
                time.sleep(min(poll, remaining))
            elif time.monotonic() < settle:
                # A commit writes its frames (the event) a moment before it publishes them in
                # the shared index (what data_version sees; after an fsync with "full").
                time.sleep(min(0.001, remaining))
            elif watcher.wait(min(remaining, 0.5)):
                settle = time.monotonic() + 0.05

    # -- workers and recovery ---------------------------------------------------------------
    def _release(
        self,
        conn: apsw.Connection,
        where: str,
        params: tuple[Any, ...],
        max_attempts: int,
        reason: str,
        now_s: str,
    ) -> tuple[int, int]:
        rows = list(
            conn.execute(
                f"SELECT id, attempts, max_attempts, locked_by FROM background_jobs "
                f"WHERE state = 'running' AND {where}",
                params,
            )
        )
        released = failed = 0
        for job_id, attempts, job_max, locked_by in rows:
            message = f"{reason}: worker {locked_by} stopped during attempt {attempts}"
            if attempts >= (job_max if job_max is not None else max_attempts):
                conn.execute(
                    "UPDATE background_jobs SET state = 'failed', locked_at = NULL, "
                    "locked_by = NULL, run_at = NULL, failed_at = ?, last_error = ?, "
                    "updated_at = ? WHERE id = ?",
                    (now_s, message, now_s, job_id),
                )
                failed += 1
            else:
                conn.execute(
                    "UPDATE background_jobs SET state = 'ready', locked_at = NULL, "
                    "locked_by = NULL, run_at = ?, last_error = ?, updated_at = ? WHERE id = ?",
                    (now_s, message, now_s, job_id),
                )
                released += 1
        return released, failed

    def register_worker(
        self, name: str, *, host: str, pid: int, queues: str, max_attempts: int = 24
    ) -> int:
        now_s = ts(self.clock.now())
        with self._write() as conn:
            conn.execute(
                "INSERT INTO litejobs_workers (name, host, pid, queues, started_at, heartbeat_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET host = excluded.host, "
                "pid = excluded.pid, queues = excluded.queues, started_at = excluded.started_at, "
                "heartbeat_at = excluded.heartbeat_at",
                (name, host, pid, queues, now_s, now_s),
            )
            released, failed = self._release(
                conn, "locked_by = ?", (name,), max_attempts, "restarted", now_s
            )
        return released + failed

    def heartbeat(self, name: str) -> None:
        now_s = ts(self.clock.now())
        with self._write() as conn:
            conn.execute(
                "UPDATE litejobs_workers SET heartbeat_at = ? WHERE name = ?", (now_s, name)
            )

    def deregister_worker(self, name: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM litejobs_workers WHERE name = ?", (name,))

    def recover_stale(
        self, stale_after: float, max_attempts: int, *, lock_timeout: float | None = None
    ) -> tuple[int, int]:
        now = self.clock.now()
        now_s = ts(now)
        cutoff = ts(now - stale_after)
        where = "locked_by NOT IN (SELECT name FROM litejobs_workers WHERE heartbeat_at >= ?)"
        params: tuple[Any, ...] = (cutoff,)
        if lock_timeout is not None:
            where = f"({where} OR locked_at < ?)"
            params = (cutoff, ts(now - lock_timeout))
        with self._write() as conn:
            result = self._release(conn, where, params, max_attempts, "lost", now_s)
            # Forget workers silent for a day: status shows recent ones only.
            conn.execute("DELETE FROM litejobs_workers WHERE heartbeat_at < ?", (ts(now - 86_400),))
        return result

    def workers(self) -> list[WorkerRecord]:
        def query(conn: apsw.Connection) -> list[WorkerRecord]:
            return [
                WorkerRecord(r[0], r[1], r[2], r[3], parse_ts(r[4]) or 0.0, parse_ts(r[5]) or 0.0)
                for r in conn.execute(
                    "SELECT name, host, pid, queues, started_at, heartbeat_at "
                    "FROM litejobs_workers ORDER BY name"
                )
            ]

        return self._read(query)

    # -- inspection -------------------------------------------------------------------------
    def _record(self, row: Sequence[Any], now_s: str) -> JobRecord:
        import json

        state = row[1]
        if state == "scheduled" and row[7] is not None and row[7] <= now_s:
            state = "ready"
        return JobRecord(
            id=row[0],
            state=state,
            queue=row[2],
            priority=row[3],
            attempts=row[4],
            max_attempts=row[5],
            handler=json.loads(row[6]),
            run_at=parse_ts(row[7]),
            locked_at=parse_ts(row[8]),
            locked_by=row[9],
            last_error=row[10],
            failed_at=parse_ts(row[11]),
            created_at=parse_ts(row[12]) or 0.0,
            updated_at=parse_ts(row[13]) or 0.0,
            unique_key=row[14],
        )

    def get(self, job_id: int) -> JobRecord | None:
        now_s = ts(self.clock.now())

        def query(conn: apsw.Connection) -> JobRecord | None:
            row = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM background_jobs WHERE id = ?", (job_id,)
            ).fetchone()
            return None if row is None else self._record(row, now_s)

        return self._read(query)

    def _state_filter(self, state: JobState, now_s: str) -> tuple[str, tuple[Any, ...]]:
        if state not in JOB_STATES:
            raise ValueError(f"unknown state {state!r}; use one of {', '.join(JOB_STATES)}")
        if state == "ready":
            return "(state = 'ready' OR (state = 'scheduled' AND run_at <= ?))", (now_s,)
        if state == "scheduled":
            return "(state = 'scheduled' AND run_at > ?)", (now_s,)
        return "state = ?", (state,)

    def list_jobs(
        self,
        *,
        queue: str | None = None,
        state: JobState | None = None,
        limit: int | None = 100,
    ) -> list[JobRecord]:
        now_s = ts(self.clock.now())
        clauses: list[str] = []
        params: list[Any] = []
        if queue is not None:
            clauses.append("queue = ?")
            params.append(queue)
        if state is not None:
            clause, extra = self._state_filter(state, now_s)
            clauses.append(clause)
            params.extend(extra)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {_JOB_COLUMNS} FROM background_jobs {where} ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return self._read(lambda c: [self._record(r, now_s) for r in c.execute(sql, params)])

    def counts(self) -> dict[str, dict[str, int]]:
        now_s = ts(self.clock.now())

        def query(conn: apsw.Connection) -> dict[str, dict[str, int]]:
            result: dict[str, dict[str, int]] = {}
            for queue, state, count in conn.execute(
                "SELECT queue, CASE WHEN state = 'scheduled' AND run_at <= ? THEN 'ready' "
                "ELSE state END AS s, count(*) FROM background_jobs GROUP BY queue, s",
                (now_s,),
            ):
                result.setdefault(queue, {})[state] = count
            return result

        return self._read(query)

    def oldest_ready_at(self) -> float | None:
        now_s = ts(self.clock.now())
        row = self._read(
            lambda c: c.execute(
                "SELECT min(run_at) FROM background_jobs WHERE state = 'ready' "
                "OR (state = 'scheduled' AND run_at <= ?)",
                (now_s,),
            ).fetchone()
        )
        return parse_ts(row[0]) if row else None

    def retry(self, job_id: int) -> bool:
        now_s = ts(self.clock.now())
        with self._write() as conn:
            row = conn.execute(
                "SELECT state, run_at, unique_key FROM background_jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None:
                return False
            if row[0] in ("failed", "succeeded") and self._unique_taken(conn, row[2]):
                raise ValidationError(
                    f"job {job_id} cannot be retried: another job with its unique key "
                    f"{row[2]!r} is pending; delete one of them first"
                )
            # A 'scheduled' row already due is ready (promotion is lazy): leave its run_at.
            due = row[0] == "scheduled" and row[1] is not None and row[1] <= now_s
            if row[0] in ("failed", "scheduled", "succeeded") and not due:
                conn.execute(
                    "UPDATE background_jobs SET state = 'ready', failed_at = NULL, run_at = ?, "
                    "attempts = CASE WHEN state = 'scheduled' THEN attempts ELSE 0 END, "
                    "updated_at = ? WHERE id = ?",
                    (now_s, now_s, job_id),
                )
            return True

    @staticmethod
    def _unique_taken(conn: apsw.Connection, key: str | None) -> bool:
        """Is ``key`` held by a pending job? (Reviving a twin would break the unique index.)"""
        if key is None:
            return False
        return (
            conn.execute(
                "SELECT 1 FROM background_jobs WHERE unique_key = ? "
                "AND state IN ('scheduled', 'ready', 'running')",
                (key,),
            ).fetchone()
            is not None
        )

    def retry_failed(self, queue: str | None = None) -> int:
        """Retry every failed job (of ``queue``); a failed job whose unique key is pending again
        (or shared by an older failed job being retried) stays failed."""
        now_s = ts(self.clock.now())
        sql = "SELECT id, unique_key FROM background_jobs WHERE state = 'failed'"
        params: tuple[Any, ...] = ()
        if queue is not None:
            sql += " AND queue = ?"
            params += (queue,)
        with self._write() as conn:
            ids: list[int] = []
            keys: set[str] = set()
            for job_id, key in list(conn.execute(sql + " ORDER BY id", params)):
                if key is not None:
                    if key in keys or self._unique_taken(conn, key):
                        continue
                    keys.add(key)
                ids.append(job_id)
            for job_id in ids:
                conn.execute(
                    "UPDATE background_jobs SET state = 'ready', failed_at = NULL, run_at = ?, "
                    "attempts = 0, updated_at = ? WHERE id = ?",
                    (now_s, now_s, job_id),
                )
            return len(ids)

    def delete(self, job_id: int) -> bool:
        with self._write() as conn:
            conn.execute("DELETE FROM background_jobs WHERE id = ?", (job_id,))
            return conn.changes() == 1

    def clear(self, *, queue: str | None = None, failed_only: bool = False) -> int:
        clauses: list[str] = []
        params: list[Any] = []
        if queue is not None:
            clauses.append("queue = ?")
            params.append(queue)
        if failed_only:
            clauses.append("state = 'failed'")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._write() as conn:
            conn.execute(f"DELETE FROM background_jobs {where}", params)
            return conn.changes()

    def prune(self, older_than: float) -> int:
        with self._write() as conn:
            conn.execute(
                "DELETE FROM background_jobs WHERE state IN ('succeeded', 'failed') "
                "AND updated_at < ?",
                (ts(older_than),),
            )
            return conn.changes()

    def maintenance(self) -> None:
        """Checkpoint the WAL and truncate it, blocking writers only when it has grown big.

        A PASSIVE checkpoint copies what it can and waits for no one; once everything is
        copied, the next writer starts the WAL over from its beginning. TRUNCATE, which waits
        for readers while holding the write lock (one long reader stalls every worker), is
        only tried without waiting, unless the WAL has grown past ``wal_wait_size`` (which
        the writers' wal hook also enforces, right after the commit that passes it).
        """

        def checkpoint(conn: apsw.Connection) -> None:
            with suppress(apsw.BusyError, apsw.LockedError):
                conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
            try:
                wal_size = os.stat(self.path + "-wal").st_size
            except OSError:
                return
            # Under sustained writes with readers coming and going, the WAL can only start over
            # if someone waits for the readers: past wal_wait_size we do, holding writers up to
            # as long as the oldest reader (bounded by wal_wait_seconds); below it, never.
            wait = wal_size > self.wal_wait_size
            conn.set_busy_timeout(int(self.wal_wait_seconds * 1000) if wait else 0)
            try:
                with suppress(apsw.BusyError, apsw.LockedError):
                    conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_TRUNCATE)
            finally:
                conn.set_busy_timeout(int(self.busy_timeout * 1000))

        self._read(checkpoint)

    def exists(self) -> bool:
        """Whether the database file is there, asked without opening (so without creating) it:
        commands that only read must not leave an empty database behind a mistyped path."""
        return os.path.exists(self.path)
