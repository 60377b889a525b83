"""Where jobs are stored: one rule for the CLI, the Python API, detached workers and units.

1. An application's adapters say where its jobs live (``SQLiteAdapter("var/jobs.db")``,
   ``PostgresAdapter(url)``), for every process that loads the application: the web app calling
   ``later()``, ``litejobs work``, ``litejobs.enqueue("myapp.jobs:f")``, a detached worker.
2. ``LITEJOBS_DB`` (which ``--db`` sets for one command) fills in only what the application
   leaves open: ``SQLiteAdapter()`` or ``JobManager()`` with no storage, and commands run
   without an application.
3. When ``LITEJOBS_DB`` names another place than the application's adapters, building the
   :class:`~litejobs.JobManager` fails with a :class:`~litejobs.errors.ConfigurationError`
   naming both. Overriding silently is how a web app and its workers ended up on two different
   files (a unit's ``Environment=LITEJOBS_DB`` the web process never saw): every process that
   disagrees now fails at start, loudly, instead of splitting the queue.

"Same place" means the same file (paths resolved, symlinks followed; a relative path is
relative to the process's working directory) or the same PostgreSQL database (the URL's
connection parameters, whatever the password).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .adapters.base import Adapter

#: Where jobs are stored when the application does not say; ``--db`` sets it for one command.
DB_ENV = "LITEJOBS_DB"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite://"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class Place:
    """Where an adapter or a ``--db`` value stores jobs: ``key`` compares, ``label`` shows."""

    kind: str  # "sqlite", "postgres" or an adapter's own name
    key: str
    label: str

    def same_as(self, other: Place) -> bool:
        if self.kind != other.kind:
            return False
        if self.key == other.key:
            return True
        # The same file under two names (a bind mount, a hard link): only if both exist.
        return self.kind == "sqlite" and _same_file(self.key, other.key)


def requested() -> str | None:
    """``$LITEJOBS_DB`` (set by ``--db`` in the CLI), or ``None``."""
    return os.environ.get(DB_ENV) or None


def sqlite_path(url: str) -> str:
    """A SQLite ``--db`` value as a path: ``sqlite:///abs/jobs.db`` → ``/abs/jobs.db``."""
    return url.removeprefix(SQLITE_SCHEME)


def check_db_url(url: str) -> str:
    """``url`` if litejobs can store jobs there: a SQLite path (or ``sqlite:///path``) or a
    ``postgresql://`` URL. Anything else with a scheme (``mysql://x``) is refused rather than
    taken for a relative file name, and so is a path that is not valid UTF-8 (as SQLite needs)."""
    match = _SCHEME.match(url)
    if match and not url.startswith((*POSTGRES_SCHEMES, SQLITE_SCHEME)):
        raise ConfigurationError(
            f"unknown database URL scheme {match.group(1)!r}; --db/{DB_ENV} takes a SQLite "
            "file path or a postgresql://user@host/dbname URL"
        )
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(
            f"database {url!r} is not valid UTF-8 (an undecodable byte); rename it or give "
            "another path"
        ) from None
    return url


def place_of_url(url: str) -> Place:
    """The place a ``--db`` / ``LITEJOBS_DB`` value names (checked: known scheme, UTF-8)."""
    check_db_url(url)
    if url.startswith(POSTGRES_SCHEMES):
        return _postgres_place(url, None)
    return _sqlite_place(sqlite_path(url))


def place_of(adapter: Adapter) -> Place:
    """Where ``adapter`` stores jobs."""
    name = getattr(adapter, "name", type(adapter).__name__)
    if name == "sqlite":
        return _sqlite_place(str(adapter.path))  # type: ignore[attr-defined]
    if name == "postgres":
        return _postgres_place(adapter.url, adapter.schema)  # type: ignore[attr-defined]
    return Place(name, repr(adapter), repr(adapter))


def check_agrees(adapters: Mapping[str, Adapter], wanted: str | None = None) -> None:
    """Raise unless ``wanted`` (default ``$LITEJOBS_DB``), if set, is where one of
    ``adapters`` stores jobs."""
    wanted = wanted or requested()
    if wanted is None:
        return
    target = place_of_url(wanted)
    places = {name: place_of(adapter) for name, adapter in adapters.items()}
    if any(target.same_as(place) for place in places.values()):
        return
    name, place = next(iter(places.items()))
    if place.kind == "sqlite" and target.kind == "postgres":
        hint = f"give the app a PostgresAdapter for {target.label}, or unset {DB_ENV} / drop --db"
    else:
        hint = f"unset {DB_ENV} / drop --db, or point it at {place.label}"
    raise ConfigurationError(
        f"conflicting databases: --db/{DB_ENV} is {target.label}, but the app's adapter "
        f"{name!r} stores jobs in {place.label}; {hint}"
    )


def check_same(given: Adapter, declared: Adapter, what: str, given_as: str = "db=") -> None:
    """Raise if ``given`` (an explicit ``db=``, or the CLI's app) is not where ``what`` is
    declared to be stored."""
    ours, theirs = place_of(given), place_of(declared)
    if not ours.same_as(theirs):
        raise ConfigurationError(
            f"{what} is declared on a JobManager that stores jobs in {theirs.label}, but "
            f"{given_as} stores them in {ours.label}; drop {given_as} (the job's manager "
            "decides) or make them the same place"
        )


def _sqlite_place(path: str) -> Place:
    real = os.path.realpath(path)
    return Place("sqlite", real, real)


def _postgres_place(url: str, schema: str | None) -> Place:
    """Keyed by the connection parameters without the password (``postgres://`` and
    ``postgresql://``, parameter order and passwords do not make two databases)."""
    from urllib.parse import urlsplit, urlunsplit

    url = "postgresql://" + url.split("://", 1)[1]
    key = _conninfo_key(url)
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    if len(netloc) == 2:  # hide the password: user:secret@host -> user@host
        netloc[0] = netloc[0].split(":", 1)[0]
    label = urlunsplit(parts._replace(netloc="@".join(netloc)))
    if schema is not None:
        label += f" (schema {schema})"
    return Place("postgres", key, label)


def _conninfo_key(url: str) -> str:
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # no psycopg: compare the text (nothing can connect anyway)
        return url
    try:
        params: dict[str, Any] = dict(conninfo_to_dict(url))
    except Exception:  # a malformed URL: its own text is its identity
        return url
    params.pop("password", None)
    return repr(sorted((k, str(v)) for k, v in params.items()))


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
