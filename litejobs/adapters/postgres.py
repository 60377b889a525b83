"""PostgreSQL storage through psycopg 3: the same jobs, many machines, one server.

The storage rules are :class:`~litejobs.adapters.sqlbase.SQLAdapter`'s; the statements are in
``sql/postgres.sql`` and ``sql/common.sql``. What is PostgreSQL's own lives here:

* The claim is one statement, ``UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED LIMIT n)
  RETURNING``: concurrent workers never wait for each other's rows and never take the same job.
* Time is the **server's** clock (:class:`ServerClock`): hosts whose own clocks differ by minutes
  agree on every heartbeat, lock and deadline. It is read once a minute and extrapolated with
  this host's monotonic clock, so it costs no round trip and a jump of this host's wall clock
  changes nothing. Times are still parameters, so a test's FakeClock drives the database too.
* Idle workers ``LISTEN`` on a channel per schema; enqueues, retries and rescues ``NOTIFY`` it
  (delivered at commit). Polling remains the fallback (``listen=False``, or a pooler that
  cannot ``LISTEN``): the worker re-checks on its own every fraction of a second.
* Everything lives in one PostgreSQL schema (default ``litejobs``), created (if the user may)
  and migrated on first use under an advisory lock, so many processes starting at once do not
  race; a schema a DBA created beforehand is used as it is.
* A connection the server closed while it sat idle (a restart, a failover) is noticed before
  use and replaced, so the first call after the server is back succeeds; TCP keepalives and
  ``tcp_user_timeout`` bound how long a connection to a vanished server can hang.
"""

from __future__ import annotations

import os
import random
import re
import select
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..clock import Clock
from ..errors import StorageError
from ..liveness import WorkerInfo
from .base import JobRun, NewJob
from .sql import postgres_queries
from .sqlbase import SQLAdapter

T = TypeVar("T")
Durability = Literal["normal", "full"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MIGRATION_NAMES = ("migration_1", "migration_2", "migration_3", "migration_4", "migration_5")
SCHEMA_VERSION = len(MIGRATION_NAMES)
#: Statistics rows per minute and bucket that concurrent workers spread over.
STATS_SHARDS = 8
#: libpq settings that bound a connection to a server that vanished without a word (added
#: unless the URL sets them): keepalive probes after 30 s idle, 3 more 10 s apart; unacknowledged
#: data fails after 30 s instead of the kernel's ~15 minutes of retransmissions.
KEEPALIVE = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}
#: How long the server lets a litejobs session sit inside a transaction, waiting for its client,
#: before it ends the session. litejobs never waits for anything inside a transaction, so a
#: session that does has lost its client (a vanished host, a partition, a process frozen
#: mid-commit): without this bound its row locks would stay held, and every worker that
#: touches those rows (a rescue, the reconnected worker's own heartbeat) would wait for them,
#: until the server's TCP keepalive gave up on the client -- two hours by default.
IDLE_IN_TRANSACTION = "60s"
#: Errors that roll back a transaction only because a concurrent one got in its way.
_CONFLICTS = (pg_errors.DeadlockDetected, pg_errors.UniqueViolation)
#: Reads of an idle connection's pending input before it is judged (see ``_usable``).
_IDLE_READS = 4
#: How many times a write that met a concurrent one is tried in all.
CONFLICT_TRIES = 5
#: Errors a database will keep raising however long a worker waits.
_PERMANENT = (
    pg_errors.InsufficientPrivilege,
    pg_errors.InvalidCatalogName,
    pg_errors.InvalidAuthorizationSpecification,
    pg_errors.InvalidPassword,
    pg_errors.ReadOnlySqlTransaction,
    pg_errors.DiskFull,
    pg_errors.UndefinedTable,
)


def dt(value: float) -> datetime:
    """Epoch seconds to the aware UTC datetime PostgreSQL stores (microsecond precision)."""
    return datetime.fromtimestamp(value, UTC)


def epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def redact(url: str) -> str:
    """``url`` without its password, for messages and ``repr``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _storage_error(exc: BaseException, where: str) -> StorageError:
    """Translate a psycopg exception into one clear line an operator can act on."""
    detail = _first_line(exc)
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        msg = f"PostgreSQL {where}: permission denied ({detail}); grant the user rights on it"
    elif isinstance(exc, pg_errors.InvalidCatalogName):
        msg = f"PostgreSQL {where}: {detail}; create the database first (createdb)"
    elif isinstance(exc, pg_errors.InvalidAuthorizationSpecification | pg_errors.InvalidPassword):
        msg = f"PostgreSQL {where}: {detail}; check the user and password in the URL"
    elif isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        msg = (
            f"PostgreSQL {where} is read-only ({detail}): a hot standby or a read-only "
            "session; point --db / LITEJOBS_DB at the primary"
        )
    elif isinstance(exc, pg_errors.DiskFull):
        msg = f"PostgreSQL {where}: disk full ({detail}); free space and retry (no job was lost)"
    elif isinstance(exc, pg_errors.DeadlockDetected):
        msg = (
            f"PostgreSQL {where}: a concurrent transaction got in the way ({detail}); "
            "nothing was written, try again"
        )
    elif isinstance(exc, psycopg.OperationalError) and "does not exist" in detail:
        msg = f"PostgreSQL {where}: {detail}; create it first (createdb) or fix the URL"
    elif isinstance(exc, psycopg.OperationalError) and "authentication failed" in detail:
        msg = f"PostgreSQL {where}: {detail}; check the user and password in the URL"
    elif isinstance(exc, psycopg.OperationalError):
        msg = (
            f"PostgreSQL {where} is unavailable: {detail}; "
            "check the server is running and the --db / LITEJOBS_DB URL"
        )
    else:
        msg = f"PostgreSQL {where} failed: {type(exc).__name__}: {detail}"
    permanent = isinstance(exc, _PERMANENT) or (
        isinstance(exc, psycopg.OperationalError)
        and ("does not exist" in detail or "authentication failed" in detail)
    )
    err = StorageError(msg, permanent=permanent)
    err.__cause__ = exc
    return err


class ServerClock:
    """The server's wall clock, read once a minute and extrapolated with this host's monotonic
    clock (no round trip per reading; this host's own wall clock plays no part). If the server
    cannot be asked, the last reading goes on being extrapolated (or, before any, this host's
    clock is used and the server asked again a second later)."""

    RESYNC = 60.0

    def __init__(self, adapter: PostgresAdapter) -> None:
        self._adapter = adapter
        self._lock = threading.Lock()
        self._base: float | None = None  # server time at _at
        self._at = 0.0  # time.monotonic() of the reading
        self._next_try = 0.0

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> float:
        mono = time.monotonic()
        with self._lock:
            if mono >= self._next_try and (self._base is None or mono - self._at >= self.RESYNC):
                self._sync(mono)
            if self._base is None:
                return time.time()
            return self._base + (mono - self._at)

    def _sync(self, started: float) -> None:
        self._next_try = started + 1.0
        try:
            row = self._adapter._server_time()
        except StorageError:
            return
        ended = time.monotonic()
        self._base, self._at = row, (started + ended) / 2


class PostgresAdapter(SQLAdapter):
    """Jobs in a PostgreSQL database, shared by any number of processes on any number of hosts.

    ``url``: a libpq URL (``postgresql://user:pass@host:port/db``; a unix socket directory goes
    in ``?host=/path``). ``schema``: the PostgreSQL schema holding litejobs' tables (created and
    migrated automatically). ``durability="full"`` (default) is PostgreSQL's normal
    ``synchronous_commit=on``; ``"normal"`` sets ``synchronous_commit=off`` for litejobs' sessions:
    several times more commits per second, and a server crash may forget the last fraction of a
    second of commits (never corrupts anything). ``listen=False`` disables ``LISTEN/NOTIFY``
    (e.g. behind a transaction-mode pooler): idle workers then poll every ``poll_interval`` s.
    ``clock``: by default the server's (:class:`ServerClock`).
    """

    name = "postgres"

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        schema: str = "litejobs",
        durability: Durability = "full",
        listen: bool = True,
        poll_interval: float = 0.5,
        connect_timeout: float = 10.0,
    ) -> None:
        super().__init__(clock=clock)
        if not _IDENTIFIER.match(schema):
            raise ValueError(
                f"schema {schema!r} is not a plain identifier; use letters, digits and '_' only"
            )
        if durability not in ("normal", "full"):
            raise ValueError("durability must be 'normal' or 'full'")
        if clock is None:
            self.clock = ServerClock(self)
        self.url = url
        self.schema = schema
        self.durability = durability
        self.listen = listen
        self.poll_interval = poll_interval
        self.connect_timeout = connect_timeout
        self.channel = f"litejobs_{schema}"[:63]
        #: Cancel requests only: busy workers' keepers listen here, not to every enqueue.
        self.cancel_channel = f"litejobs_cancel_{schema}"[:63]
        #: Where finished jobs that keep a result are announced (``result()`` waits on it).
        self.outcome_channel = f"litejobs_done_{schema}"[:63]
        self._where = f"database {redact(url)} (schema {schema})"
        self._local = threading.local()
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._inspect_only = False
        self._s = f'"{schema}"'
        self.queries = postgres_queries(self._s)

    def __repr__(self) -> str:
        return f"PostgresAdapter({redact(self.url)!r}, schema={self.schema!r})"

    # -- connections ------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self._conninfo(), autocommit=True)
            conn.execute(self._session_settings())  # no parameters: one round trip for all
        except psycopg.Error as exc:
            raise _storage_error(exc, self._where) from exc
        return conn

    def _session_settings(self) -> str:
        """``SET`` statements for each new session: UTC, the durability, and how long the server
        lets it sit inside a transaction without a word (:data:`IDLE_IN_TRANSACTION`, unless the
        URL's ``options`` set it)."""
        settings = ["SET TIME ZONE 'UTC'"]
        if self.durability == "normal":
            settings.append("SET synchronous_commit = off")
        options = str(conninfo_to_dict(self.url).get("options") or "")
        if "idle_in_transaction_session_timeout" not in options:
            settings.append(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}'")
        return "; ".join(settings)

    def _conninfo(self) -> str:
        """The URL plus litejobs' defaults for what it leaves unsaid: the keepalive bounds
        (:data:`KEEPALIVE`), ``connect_timeout`` (per host, if the URL lists several) and the
        ``application_name`` operators see in ``pg_stat_activity``."""
        given = conninfo_to_dict(self.url)
        defaults = {
            **KEEPALIVE,
            "connect_timeout": str(max(1, int(self.connect_timeout))),
            "application_name": "litejobs",
        }
        return make_conninfo(self.url, **{k: v for k, v in defaults.items() if k not in given})

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """This thread's connection (opened on first use, again after a ``fork`` -- a child
        never touches its parent's socket -- and again when the server closed it meanwhile)."""
        local = self._local
        conn: psycopg.Connection[Any] | None = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid() or not _usable(conn):
            if conn is not None and local.pid == os.getpid():
                with suppress(Exception):
                    conn.close()
            conn = self._connect()
            local.conn, local.pid = conn, os.getpid()
        if not self._schema_ready:
            with self._schema_lock:
                if not self._schema_ready:
                    self._guard(lambda: self._prepare_schema(conn))
                    self._schema_ready = True
        return conn

    def _drop_broken(self) -> None:
        """Forget this thread's connection if it is broken, so the next call reconnects."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and (conn.closed or conn.broken):
            with suppress(Exception):
                conn.close()
            self._local.conn = None

    def _guard(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except psycopg.Error as exc:
            self._drop_broken()
            raise _storage_error(exc, self._where) from exc

    def _server_time(self) -> float:
        row = self._read(lambda c: c.execute("SELECT clock_timestamp()").fetchone())
        assert row is not None
        return float(row[0].timestamp())

    # -- schema -----------------------------------------------------------------------------
    def _installed_version(self, conn: psycopg.Connection[Any]) -> int | None:
        """The schema version, 0 for a schema without litejobs' tables, ``None`` if the schema
        itself is missing."""
        row = conn.execute(
            "SELECT EXISTS(SELECT 1 FROM pg_namespace WHERE nspname = %s), to_regclass(%s)",
            (self.schema, f"{self._s}.litejobs_meta"),
        ).fetchone()
        if row is None or not row[0]:
            return None
        if row[1] is None:
            return 0
        found = conn.execute(f"SELECT version FROM {self._s}.litejobs_meta").fetchone()
        return int(found[0]) if found else 0

    def _check_version(self, version: int | None) -> None:
        if version is not None and version > SCHEMA_VERSION:
            raise StorageError(
                f"PostgreSQL {self._where} was written by a newer litejobs (schema version "
                f"{version}; this litejobs knows up to {SCHEMA_VERSION}); upgrade litejobs",
                permanent=True,
            )
        if self._inspect_only and not version:
            raise StorageError(
                f"no litejobs schema in PostgreSQL {self._where}; check --db / LITEJOBS_DB (a "
                "command that only reads never creates one)",
                permanent=True,
            )

    def _prepare_schema(self, conn: psycopg.Connection[Any]) -> None:
        """Check the version; create or upgrade the schema unless it is current. The fast path
        is one read; the slow path holds a transaction-scoped advisory lock, so concurrent
        starters apply each migration once. ``CREATE SCHEMA`` only runs when the schema is
        missing: a user without CREATE rights on the database can use one a DBA made."""
        version = self._installed_version(conn)
        self._check_version(version)
        if version == SCHEMA_VERSION:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_key(),))
            version = self._installed_version(conn)
            self._check_version(version)
            if version is None:
                self._create_schema(conn)
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._s}.litejobs_meta (version INTEGER NOT NULL)"
            )
            if conn.execute(f"SELECT 1 FROM {self._s}.litejobs_meta").fetchone() is None:
                conn.execute(f"INSERT INTO {self._s}.litejobs_meta (version) VALUES (0)")
            for number in range(version or 0, SCHEMA_VERSION):
                conn.execute(self.queries[MIGRATION_NAMES[number]].replace("%%", "%"))
            conn.execute(f"UPDATE {self._s}.litejobs_meta SET version = %s", (SCHEMA_VERSION,))

    def _create_schema(self, conn: psycopg.Connection[Any]) -> None:
        """``CREATE SCHEMA``; a user who may not gets told what a DBA can do about it."""
        try:
            conn.execute(f"CREATE SCHEMA {self._s}")
        except pg_errors.InsufficientPrivilege as exc:
            user, database = conn.info.user, conn.info.dbname
            raise StorageError(
                f"PostgreSQL {self._where}: the schema does not exist and user {user!r} may "
                f"not create it ({_first_line(exc)}); have a DBA run CREATE SCHEMA "
                f'{self._s} AUTHORIZATION "{user}" (or GRANT CREATE ON DATABASE "{database}" '
                f'TO "{user}")',
                permanent=True,
            ) from exc

    def _lock_key(self) -> str:
        return f"litejobs:{self.schema}"

    def exists(self) -> bool:
        """Whether litejobs' tables are in the schema, asked on a plain connection that neither
        creates nor migrates anything (a server that cannot be reached is a StorageError)."""
        conn = self._connect()
        try:
            return bool(self._guard(lambda: self._installed_version(conn)))
        finally:
            conn.close()

    def inspect_only(self) -> None:
        self._inspect_only = True
        self._schema_ready = False

    # -- transactions -----------------------------------------------------------------------
    @contextmanager
    def _write(self, *, pipeline: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """One transaction: commits on success, rolls back on any exception; database errors
        become :class:`StorageError` (and a broken connection is replaced next time).

        ``pipeline``: send every statement and the COMMIT in one round trip; results are read
        after the block (the hot paths, claim and record, have no statement that depends on
        the previous one's result).
        """
        conn = self.connection
        try:
            if pipeline:
                with conn.pipeline(), conn.transaction():
                    yield conn
            else:
                with conn.transaction():
                    yield conn
        except psycopg.Error as exc:
            self._drop_broken()
            raise _storage_error(exc, self._where) from exc

    def _read(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        conn = self.connection
        return self._guard(lambda: fn(conn))

    def close(self) -> None:
        local = self._local
        if getattr(local, "pid", None) == os.getpid():
            listeners = getattr(local, "listeners", {})
            for conn in [getattr(local, "conn", None), *listeners.values()]:
                if conn is not None:
                    with suppress(Exception):
                        conn.close()
        self._local = threading.local()

    # -- seams of SQLAdapter ----------------------------------------------------------------
    _t = staticmethod(dt)  # times are timestamptz
    _from_t = staticmethod(epoch)

    def _array(self, values: Sequence[Any]) -> list[Any]:
        return list(values)

    def _rows(self, conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> list[Any]:
        cur = conn.execute(self.queries[name], params)
        return cur.fetchall() if cur.description is not None else []

    def _count(self, conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> int:
        return conn.execute(self.queries[name], params).rowcount

    def _many(
        self, conn: psycopg.Connection[Any], statements: Sequence[tuple[str, dict[str, Any]]]
    ) -> Callable[[], list[int]]:
        cursors = []
        for name, params in statements:
            cur = conn.cursor()
            cur.execute(self.queries[name], params)
            cursors.append(cur)
        return lambda: [cur.rowcount for cur in cursors]

    def _announce(self, conn: psycopg.Connection[Any]) -> None:
        """Identical notifications within one transaction are folded into one by the server."""
        if self.listen:
            conn.execute(self.queries["notify"], {"channel": self.channel})

    def _announce_cancel(self, conn: psycopg.Connection[Any]) -> None:
        if self.listen:
            conn.execute(self.queries["notify"], {"channel": self.cancel_channel})

    def _announce_outcome(self, conn: psycopg.Connection[Any]) -> None:
        if self.listen:
            conn.execute(self.queries["notify"], {"channel": self.outcome_channel})

    def _stats_shard(self, token: str) -> int:
        """Concurrent workers add to different statistics rows (a row is locked until its
        transaction commits: one shared row would serialise every worker's commits)."""
        return zlib.crc32(token.encode()) % STATS_SHARDS

    def _lock(self, conn: psycopg.Connection[Any], key: str) -> None:
        conn.execute(self.queries["advisory_lock"], {"key": f"{self._lock_key()}:{key}"})

    def _unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, pg_errors.UniqueViolation)

    # -- writes that meet concurrent writers -------------------------------------------------
    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[int]:
        """As :class:`SQLAdapter`'s, started again if the server broke a deadlock by failing it
        (unique batches insert in key order and cannot deadlock each other, but a concurrent
        ``retry_failed`` can still meet one in the unique index)."""
        return _again_on_conflict(lambda: SQLAdapter.enqueue_many(self, jobs))

    def retry_failed(self, queue: str | None = None) -> int:
        """As :class:`SQLAdapter`'s, started again when a job with the unique key of one it
        revives was enqueued meanwhile (its check could not see that uncommitted twin): the
        next try sees it and leaves the failed one failed."""
        return _again_on_conflict(lambda: SQLAdapter.retry_failed(self, queue))

    def _insert_one(self, params: dict[str, Any]) -> int:
        row = self._read(
            lambda c: c.execute(
                self.queries["insert_job"], {**params, "channel": self.channel}
            ).fetchone()
        )
        assert row is not None
        return int(row[0])

    def _insert_unique(self, conn: psycopg.Connection[Any], params: dict[str, Any]) -> int:
        while True:
            rows = self._rows(conn, "insert_unique", params)
            if rows:
                return int(rows[0][0])
            rows = self._rows(conn, "find_active_unique", params)
            if rows:
                return int(rows[0][0])
            # The holder finished between the two statements: try the insert again.

    def _store_run(self, conn: psycopg.Connection[Any], run: JobRun, now: float) -> list[int]:
        params = {
            **self._job_params(run.template, now),
            "head": run.head,
            "tail": run.tail,
            "items": run.items,
        }
        try:
            with conn.transaction():  # a savepoint: a failed run leaves nothing
                return [int(r[0]) for r in self._rows(conn, "insert_run", params)]
        except pg_errors.StatementTooComplex:
            # Arguments nested past the server's stack depth (tens of thousands of levels,
            # with a raised Python recursion limit): row by row.
            return self._store_many(conn, run.rows(), now)

    def _store_many(
        self, conn: psycopg.Connection[Any], jobs: Sequence[NewJob], now: float
    ) -> list[int]:
        """One multi-row ``INSERT`` per chunk of 1000."""
        ids: list[int] = []
        for start in range(0, len(jobs), 1000):
            rows = [self._job_params(job, now) for job in jobs[start : start + 1000]]
            params = {
                "states": [r["state"] for r in rows],
                "handlers": [r["handler"] for r in rows],
                "queues": [r["queue"] for r in rows],
                "priorities": [r["priority"] for r in rows],
                "run_ats": [r["run_at"] for r in rows],
                "max_attempts": [r["max_attempts"] for r in rows],
                "max_runtimes": [r["max_runtime"] for r in rows],
                "retries": [r["retry"] for r in rows],
                "keep_results": [r["keep_result"] for r in rows],
                "now": self._t(now),
            }
            ids.extend(int(r[0]) for r in self._rows(conn, "insert_many", params))
        return ids

    def _claim_rows(
        self, worker: WorkerInfo, queues: Sequence[str] | None, limit: int, now: float
    ) -> list[Any]:
        params: dict[str, Any] = {
            "now": dt(now),
            "limit": limit,
            "token": worker.token,
            "name": worker.name,
        }
        statement, params["queues"] = "claim_any", None
        if queues is not None:
            statement, params["queues"] = "claim_queues", list(queues)
        # One round trip: due jobs promoted and the limited queues in scope locked (nothing to
        # lock, usually), then one statement claims the plain way or, while some queue is
        # paused or limited, the controlled way.
        with self._write(pipeline=True) as conn:
            conn.execute(self.queries["claim_prepare"], params)
            cur = conn.execute(self.queries[statement], params)
        return self._guard(cur.fetchall)

    # -- change signal ----------------------------------------------------------------------
    def _listener(self, channel: str) -> psycopg.Connection[Any]:
        """This thread's ``LISTEN`` connection for ``channel`` (separate from the working one,
        so a long wait never blocks a query and a notification is never consumed by an
        unrelated statement)."""
        local = self._local
        if getattr(local, "listener_pid", None) != os.getpid():
            local.listeners, local.listener_new = {}, set()
            local.listener_pid = os.getpid()
        conn: psycopg.Connection[Any] | None = local.listeners.get(channel)
        if conn is not None and not conn.closed:
            return conn
        self.connection  # noqa: B018 - make sure the schema exists before listening
        conn = self._connect()
        try:
            conn.execute(f'LISTEN "{channel}"')
        except psycopg.Error as exc:
            with suppress(Exception):
                conn.close()
            raise _storage_error(exc, self._where) from exc
        local.listeners[channel] = conn
        # Changes committed before LISTEN took effect were not announced to us: report one
        # possible change on the first wait, so the caller looks once instead of sleeping.
        local.listener_new.add(channel)
        return conn

    def wait_for_change(self, timeout: float) -> bool:
        """Block until a ``NOTIFY`` on this schema's channel (a job was enqueued, retried or
        rescued) or ``timeout``. Without ``LISTEN``, sleep ``poll_interval`` and report a
        possible change, so the caller re-checks by polling. A listening connection the server
        closed is replaced as soon as a wait reads its goodbye and the EOF behind it (a wait of
        ``timeout=0`` reads once, so may leave the EOF to the next), reporting a possible change:
        notifications may have been lost."""
        return self._wait(self.channel, timeout)

    def wait_for_outcome(self, timeout: float) -> bool:
        """Like :meth:`wait_for_change`, on the channel of finished jobs that keep a result."""
        return self._wait(self.outcome_channel, timeout)

    def _wait(self, channel: str, timeout: float) -> bool:
        timeout = max(0.0, timeout)
        if not self.listen:
            time.sleep(min(timeout, self.poll_interval))
            return timeout >= self.poll_interval
        conn = self._listener(channel)
        if channel in self._local.listener_new:
            self._local.listener_new.discard(channel)
            return True
        try:
            seen = False
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                seen = True
            if seen:
                # Drain notifications that queued up meanwhile: one wake-up is enough.
                for _ in conn.notifies(timeout=0):
                    pass
            return seen
        except psycopg.Error:
            with suppress(Exception):
                conn.close()
            del self._local.listeners[channel]
            self._listener(channel)  # raises StorageError if the server is still away
            return True

    def wait_for_cancel(self, timeout: float) -> bool:
        """Like :meth:`wait_for_change`, on the channel that carries only cancel requests (a
        busy worker's keeper waits here, not woken by every enqueue)."""
        return self._wait(self.cancel_channel, timeout)


def _again_on_conflict(write: Callable[[], T]) -> T:
    """``write()``, started again (up to :data:`CONFLICT_TRIES` times, after a short random
    pause that breaks the symmetry) when the server rolled its transaction back because of a
    concurrent one: a deadlock, or a unique key taken by a transaction that committed meanwhile.
    Both roll back everything, so nothing is written twice."""
    for attempt in range(1, CONFLICT_TRIES + 1):
        try:
            return write()
        except StorageError as exc:
            if attempt == CONFLICT_TRIES or not isinstance(exc.__cause__, _CONFLICTS):
                raise
        time.sleep(random.uniform(0.001, 0.01 * attempt))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _usable(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection can take a query: not closed, and the server has not said
    goodbye meanwhile. A restart or failover ends every session with a FATAL message, then
    EOF, both unread in the socket until the next query would fail on them: libpq reads the
    message as a mere notice and notices the EOF only on a further read, so read until the
    socket has nothing more to say (or the reads fail)."""
    if conn.closed or conn.broken:
        return False
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return True
    pgconn = conn.pgconn
    for _ in range(_IDLE_READS):
        if not _readable(conn.fileno()):
            return True
        try:
            pgconn.consume_input()
        except psycopg.OperationalError:
            return False
        if pgconn.status != psycopg.pq.ConnStatus.OK:
            return False
    return False  # still talking while idle: not a state worth trusting; reconnecting is cheap


def _readable(fd: int) -> bool:
    """Is there something (or EOF) to read on ``fd`` right now? (``poll``: no 1024-fd limit,
    unlike ``select``, for processes with many files open.)"""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
