"""Storage adapters. ``adapter_for_url`` picks one from a ``--db`` value."""

from __future__ import annotations

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


def adapter_for_url(url: str | None) -> Adapter:
    """``postgresql://…`` / ``postgres://…`` → PostgreSQL; anything else is a SQLite path.

    ``None`` means ``$LITEJOBS_DB`` or the default SQLite file.
    """
    import os

    if url is None:
        url = os.environ.get("LITEJOBS_DB") or None
    if url and url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresAdapter  # optional dependency

        return PostgresAdapter(url)
    if url and url.startswith("sqlite:///"):
        url = url.removeprefix("sqlite://")
    return SQLiteAdapter(url)
