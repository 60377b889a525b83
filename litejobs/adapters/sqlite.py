"""SQLite storage through ``apsw``: one file, WAL mode, many processes.

The storage rules are :class:`~litejobs.adapters.sqlbase.SQLAdapter`'s; the statements are in
``sql/sqlite.sql`` and ``sql/common.sql``. What is SQLite's own lives here: opening connections
(one per thread and process), the schema version, ``BEGIN IMMEDIATE`` transactions, the claim
(one index seek per queue), storing runs of jobs with ``json_each``, the change signal
(``PRAGMA data_version`` plus an inotify watch of the ``-wal`` file) and keeping the WAL
bounded.

* Every write that reads first (claim, rescue) runs in ``BEGIN IMMEDIATE``: a deferred
  read-then-write transaction cannot wait for the write lock and fails with ``SQLITE_BUSY``
  however long the busy timeout is (measurements: docs/performance.md).
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
from ..errors import StorageError
from ..liveness import WorkerInfo
from .base import JobRun, NewJob, compact_json
from .sql import sqlite_queries
from .sqlbase import SQLAdapter

T = TypeVar("T")
Durability = Literal["normal", "full"]

Q = sqlite_queries()
MIGRATIONS = [
    Q["migration_1"],
    Q["migration_2"],
    Q["migration_3"],
    Q["migration_4"],
    Q["migration_5"],
]
SCHEMA_VERSION = len(MIGRATIONS)

#: The date part of recently formatted seconds: a batch of outcomes formats two instants over
#: and over (now, and now plus a retention period), so one entry would miss every other time.
_ts_seconds: dict[int, str] = {}


def ts(value: float) -> str:
    """Epoch seconds to the stored text form (rounded to the microsecond).

    Every enqueue, claim and outcome formats a time, so the date part is cached per second:
    this is ~10x cheaper than ``datetime.strftime`` (a measurable share of an enqueue).
    """
    second, micro = divmod(round(value * 1_000_000), 1_000_000)
    text = _ts_seconds.get(second)
    if text is None:
        if len(_ts_seconds) >= 8:
            _ts_seconds.clear()
        # isoformat, not strftime("%Y"): glibc does not pad years before 1000 to four digits,
        # and such text neither sorts nor parses back (a typo'd year poisoned every claim).
        text = _ts_seconds[second] = (
            datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat()
        )
    return f"{text}.{micro:06d}Z"


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
    permanent = True
    if isinstance(exc, apsw.BusyError | apsw.LockedError):
        permanent = False
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
        permanent = False  # space can come back: workers wait for it
        msg = f"disk full while writing {path}; free space and retry (no job was lost)"
    elif isinstance(exc, apsw.IOError):
        permanent = False
        # e.g. EFBIG past a file size limit, or failing storage: the transaction was rolled back.
        msg = (
            f"disk I/O error on {path} (disk or file size limit full, or failing storage); "
            "fix it and retry (the failed write was rolled back)"
        )
    elif isinstance(exc, apsw.CantOpenError | apsw.PermissionsError | apsw.AuthError):
        msg = _cannot_open(path)
    else:
        permanent = False
        msg = f"database {path} is unavailable: {type(exc).__name__}: {exc}"
    err = StorageError(msg, permanent=permanent)
    err.__cause__ = exc
    return err


def _cannot_open(path: str) -> str:
    parent = Path(path).parent
    if not parent.is_dir():
        return f"cannot open database {path}: directory {parent} does not exist; create it"
    if Path(path).is_dir():
        return f"cannot open database {path}: it is a directory; give a file path"
    if _read_only_fs(parent):
        return (
            f"database {path} is on a read-only file system: it cannot be worked here "
            "(list, show and status can still read it)"
        )
    if not os.access(parent, os.W_OK):
        return (
            f"cannot open database {path}: its directory {parent} is not writable by this "
            "user (SQLite needs to create its -wal and -shm files there)"
        )
    return f"cannot open database {path}: check the path and its permissions"


def _read_only_fs(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class SQLiteAdapter(SQLAdapter):
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
    queries = Q

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
        self._inspect_only = False

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
        conn = self._open_inspecting() if self._inspect_only else self._open()
        local.conn, local.pid = conn, os.getpid()
        local.data_version = None
        return conn

    def _open(self) -> apsw.Connection:
        path = Path(self.path)
        if path.is_dir():
            raise StorageError(_cannot_open(self.path), permanent=True)
        try:
            if self._default_path:
                path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() and path.parent.is_dir():
                # Create the file owner-only before SQLite does; -wal/-shm inherit its mode.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise StorageError(
                f"cannot create database {path}: {exc.strerror}", permanent=True
            ) from exc
        try:
            conn = apsw.Connection(self.path)
            self._configure(conn)
            if not self._schema_ready:
                with self._schema_lock:
                    self._migrate(conn)
                    self._schema_ready = True
        except apsw.Error as exc:
            raise _storage_error(exc, self.path) from exc
        return conn

    def _configure(self, conn: apsw.Connection) -> None:
        conn.set_busy_timeout(int(self.busy_timeout * 1000))
        cur = conn.cursor()
        mode = cur.execute("PRAGMA journal_mode=WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise StorageError(f"database {self.path} cannot use WAL mode (got {mode})")
        sync = "FULL" if self.durability == "full" else "NORMAL"
        for pragma in (
            f"synchronous={sync}",
            "foreign_keys=ON",
            # SQLite's own 2 MiB page cache and no mmap: with the claim on its partial index, a
            # claim at 1M pending costs what it does at 1k anyway, and a bigger cache (or mmap'd
            # pages) only made a worker's RSS grow by 50-130 % over a 100k-job drain.
            "cache_size=-2000",
            # No wal_autocheckpoint PRAGMA (it would replace the wal hook below) and no
            # journal_size_limit: the hook bounds the WAL.
        ):
            # One per call, results drained: apsw runs a multi-statement string lazily and
            # silently skips everything after the first statement that returns a row.
            list(cur.execute(f"PRAGMA {pragma}"))
        page_size = int(cur.execute("PRAGMA page_size").fetchone()[0])  # type: ignore[index]
        busy_ms = int(self.busy_timeout * 1000)
        conn.set_wal_hook(_WalHook(page_size, self.wal_wait_size, self.wal_wait_seconds, busy_ms))

    def _open_inspecting(self) -> apsw.Connection:
        """A connection that creates nothing: the database as it is (upgraded if it can be
        written), or read-only when it cannot be written (a read-only mount, another user's
        file)."""
        if not self.exists():
            raise StorageError(
                f"no database at {self.path}; check --db / LITEJOBS_DB (a command that only "
                "reads never creates one)",
                permanent=True,
            )
        try:
            return self._open()
        except StorageError as exc:
            if not isinstance(exc.__cause__, apsw.ReadOnlyError | apsw.CantOpenError):
                raise
        flags = apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
        uri = Path(self.path).resolve().as_uri()
        try:
            try:
                conn = apsw.Connection(f"{uri}?mode=ro", flags=flags)
                self._check_version(conn, readonly=True)
            except (apsw.CantOpenError, apsw.ReadOnlyError):
                # A WAL database on read-only media with no -shm: nobody can be writing it, so
                # SQLite may read it as immutable.
                conn = apsw.Connection(f"{uri}?immutable=1", flags=flags)
                self._check_version(conn, readonly=True)
            conn.set_busy_timeout(int(self.busy_timeout * 1000))
        except apsw.Error as exc:
            raise _storage_error(exc, self.path) from exc
        return conn

    def _check_version(self, conn: apsw.Connection, *, readonly: bool) -> int:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])  # type: ignore[index]
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"database {self.path} was written by a newer litejobs (schema version "
                f"{version}; this litejobs knows up to {SCHEMA_VERSION}); upgrade litejobs",
                permanent=True,
            )
        if readonly and version < SCHEMA_VERSION:
            has_jobs = conn.execute(
                "SELECT 1 FROM sqlite_schema WHERE name = 'background_jobs'"
            ).fetchone()
            what = "an older litejobs" if has_jobs else "no litejobs (no jobs table)"
            raise StorageError(
                f"database {self.path} was written by {what} (schema version {version}, "
                f"this litejobs: {SCHEMA_VERSION}) and cannot be upgraded here (read-only)",
                permanent=True,
            )
        return version

    def _migrate(self, conn: apsw.Connection) -> None:
        if self._check_version(conn, readonly=False) == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._check_version(conn, readonly=False)
            for number in range(version, SCHEMA_VERSION):
                conn.execute(MIGRATIONS[number])
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def exists(self) -> bool:
        try:
            return Path(self.path).stat().st_size > 0 or Path(self.path).is_dir()
        except OSError:
            return False

    def inspect_only(self) -> None:
        self._inspect_only = True
        self.close()

    @contextmanager
    def _write(self, *, pipeline: bool = False) -> Iterator[apsw.Connection]:
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

    # -- seams of SQLAdapter ----------------------------------------------------------------
    _t = staticmethod(ts)  # times are fixed-width ISO 8601 UTC text
    _from_t = staticmethod(parse_ts)

    def _array(self, values: Sequence[Any]) -> str:
        return compact_json(list(values))

    def _rows(self, conn: apsw.Connection, name: str, params: dict[str, Any]) -> list[Any]:
        return list(conn.execute(Q[name], params))

    def _count(self, conn: apsw.Connection, name: str, params: dict[str, Any]) -> int:
        for _ in conn.execute(Q[name], params):
            pass
        return conn.changes()

    def _insert_one(self, params: dict[str, Any]) -> int:
        # One INSERT is atomic on its own: autocommit saves the BEGIN/COMMIT round trips (a
        # third of an enqueue). It takes the write lock at its start, so the busy timeout
        # applies as with BEGIN IMMEDIATE.
        conn = self.connection
        try:
            conn.execute(Q["insert_job"], params)
            return conn.last_insert_rowid()
        except apsw.Error as exc:
            raise _storage_error(exc, self.path) from exc

    def _insert_unique(self, conn: apsw.Connection, params: dict[str, Any]) -> int:
        existing = conn.execute(Q["find_active_unique"], params).fetchone()
        if existing is not None:
            return int(existing[0])
        conn.execute(Q["insert_job"], params)
        return conn.last_insert_rowid()

    @staticmethod
    def _inserted(conn: apsw.Connection, count: int) -> list[int]:
        """AUTOINCREMENT ids are consecutive inside one write transaction."""
        last = conn.last_insert_rowid()
        return list(range(last - count + 1, last + 1))

    def _store_run(self, conn: apsw.Connection, run: JobRun, now: float) -> list[int]:
        # One statement per run instead of one bound row per job: ~1.5x fewer microseconds per
        # job in SQLite, and no per-job NewJob or tuple in Python.
        params = self._job_params(run.template, now)
        try:
            conn.execute(
                Q["insert_run"], {**params, "head": run.head, "tail": run.tail, "items": run.items}
            )
        except (apsw.SQLError, apsw.TooBigError):
            # Arguments nested deeper than SQLite's JSON parser allows (1000 levels) or a run
            # over its 1 GB string limit: the failed statement left nothing; row by row.
            return self._store_many(conn, run.rows(), now)
        return self._inserted(conn, len(run.args))

    def _store_many(self, conn: apsw.Connection, jobs: Sequence[NewJob], now: float) -> list[int]:
        conn.executemany(Q["insert_job"], [self._job_params(job, now) for job in jobs])
        return self._inserted(conn, len(jobs))

    def _claim_rows(
        self, worker: WorkerInfo, queues: Sequence[str] | None, limit: int, now: float
    ) -> list[Any]:
        now_s = ts(now)
        with self._write() as conn:
            conn.execute(Q["promote_due"], {"now": now_s})
            controls = list(conn.execute(Q["queue_controls"]))
            if controls:
                candidates = self._controlled_candidates(conn, controls, queues, limit)
            elif queues is None:
                candidates = list(conn.execute(Q["claim_candidates_any"], {"limit": limit}))
            else:
                candidates = self._candidates(conn, {queue: limit for queue in queues})
            ids = [row[2] for row in candidates[:limit]]
            if not ids:
                return []
            params = {"first": ids[0], "token": worker.token, "name": worker.name, "now": now_s}
            if len(ids) == 1:
                return list(conn.execute(Q["claim_take_one"], params))
            return list(conn.execute(Q["claim_take"], {**params, "ids": compact_json(ids)}))

    @staticmethod
    def _candidates(conn: apsw.Connection, allowance: dict[str, int]) -> list[Any]:
        """The first ready jobs of each queue, up to its allowance, merged in claim order. One
        index seek per queue: an IN list over queues would read every ready job of those queues
        and sort them."""
        candidates: list[Any] = []
        for queue, room in allowance.items():
            if room > 0:
                params = {"queue": queue, "limit": room}
                candidates.extend(conn.execute(Q["claim_candidates_queue"], params))
        candidates.sort()
        return candidates

    def _controlled_candidates(
        self, conn: apsw.Connection, controls: list[Any], queues: Sequence[str] | None, limit: int
    ) -> list[Any]:
        """Candidates while some queue is paused or limited (inside the claim's ``BEGIN
        IMMEDIATE``, so no other claim can change what is held meanwhile): the queues in scope
        that have ready jobs, minus the paused ones, each up to its limit minus what it holds."""
        paused = {queue for queue, paused_at, _ in controls if paused_at is not None}
        limits = {queue: int(n) for queue, _, n in controls if n is not None}
        if queues is None:
            queues = [row[0] for row in conn.execute(Q["ready_queues"])]
        allowance: dict[str, int] = {}
        for queue in queues:
            if queue in paused:
                continue
            room = limit
            if queue in limits:
                held = conn.execute(Q["held_in_queue"], {"queue": queue}).fetchone()
                room = min(limit, limits[queue] - int(held[0]))  # type: ignore[index]
            allowance[queue] = room
        return self._candidates(conn, allowance)

    # -- change signal ----------------------------------------------------------------------
    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: changes when *another* connection commits."""
        return self._read(lambda c: int(c.execute("PRAGMA data_version").fetchone()[0]))  # type: ignore[index]

    def wait_for_change(self, timeout: float, poll: float = 0.005) -> bool:
        """Wait until another connection commits (True) or ``timeout`` passes (False).

        ``PRAGMA data_version`` (a shared-memory read, no pages) says whether anything was
        committed. Between checks the thread sleeps on an inotify watch of the ``-wal`` file,
        which every commit writes: woken within microseconds from any process, no CPU while
        idle, re-checked every 0.5 s for safety. Without inotify it polls every ``poll``
        seconds (about 1-2 % of a core at 5 ms, measured by ``scripts/bench``). A thread's first
        call (or the first after its connection was reopened) returns ``True`` at once: there is
        nothing to compare with yet, so the caller should look.
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
            # No baseline yet in this thread: what was committed before now cannot be told
            # apart from what comes next. Report a possible change, so the caller looks once
            # after this baseline is taken (a cancel committed between the caller's last look
            # and this moment would otherwise go unseen).
            local.data_version = self.data_version()
            return True
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

    def wait_for_cancel(self, timeout: float) -> bool:
        """Any commit may be a cancel: the same change signal idle workers sleep on (this
        thread's own connection and watch)."""
        return self.wait_for_change(timeout)

    # -- upkeep -----------------------------------------------------------------------------
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
            wait = wal_size > self.wal_wait_size
            conn.set_busy_timeout(int(self.wal_wait_seconds * 1000) if wait else 0)
            try:
                with suppress(apsw.BusyError, apsw.LockedError):
                    conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_TRUNCATE)
            finally:
                conn.set_busy_timeout(int(self.busy_timeout * 1000))

        if not self._inspect_only:
            self._read(checkpoint)
