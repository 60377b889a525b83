"""Storage adapters. ``adapter_for_url`` picks one from a ``--db`` value."""

from __future__ import annotations

from ..errors import ConfigurationError
from .base import Adapter, ClaimedJob, JobRecord, JobState, NewJob, Outcome
from .sqlite import SQLiteAdapter

__all__ = [
    "Adapter",
    "ClaimedJob",
    "JobRecord",
    "JobState",
    "NewJob",
    "Outcome",
    "SQLiteAdapter",
    "adapter_for_url",
]

POSTGRES_INSTALL = "pip install 'litejobs[postgres]'"


def adapter_for_url(url: str | None) -> Adapter:
    """``postgresql://…`` / ``postgres://…`` → PostgreSQL; anything else is a SQLite path.

    ``None`` means ``$LITEJOBS_DB`` or the default SQLite file.
    """
    from ..location import POSTGRES_SCHEMES, check_db_url, requested, sqlite_path

    if url is None:
        url = requested()
    if url is None:
        return SQLiteAdapter()
    check_db_url(url)
    if url.startswith(POSTGRES_SCHEMES):
        return _postgres(url)
    return SQLiteAdapter(sqlite_path(url))


def _postgres(url: str) -> Adapter:
    try:
        from .postgres import PostgresAdapter  # optional dependency
    except ImportError as exc:
        if not lacks_postgres(exc):
            raise
        raise ConfigurationError(missing_postgres()) from None
    return PostgresAdapter(url)


def lacks_postgres(exc: ImportError) -> bool:
    """Whether ``exc`` says PostgreSQL support is not installed: no psycopg, or a binary built
    without PostgreSQL (no adapter module)."""
    missing = exc.name or ""
    return missing.partition(".")[0] == "psycopg" or missing == f"{__name__}.postgres"


def missing_postgres() -> str:
    """Why a PostgreSQL URL cannot be used here, and what to do."""
    import sys

    if getattr(sys, "frozen", False):
        return (
            "this litejobs binary was built without PostgreSQL support "
            "(LITEJOBS_BINARY_NO_PG); use a build with it, or a SQLite file"
        )
    return f"PostgreSQL needs psycopg, which is not installed: {POSTGRES_INSTALL}"
