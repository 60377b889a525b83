"""The huey application the peer benchmark runs (``huey_consumer bench.huey_app.huey``).

Configured from the environment so the consumer process builds the same instance as the
benchmark: ``BENCH_HUEY_DB`` (file) and ``BENCH_HUEY_TUNED=1`` (``synchronous=NORMAL``, the
setting NOTES measured as huey's best; its default is ``FULL``).
"""

from __future__ import annotations

import os

from huey import Huey
from huey.storage import SqliteStorage

from . import jobs


class TunedSqliteStorage(SqliteStorage):
    """huey's SQLite storage with ``synchronous=NORMAL`` (huey itself offers only FULL/OFF)."""

    def _create_connection(self):  # type: ignore[no-untyped-def]
        conn = super()._create_connection()
        conn.execute("pragma synchronous=1")
        return conn


class TunedSqliteHuey(Huey):
    storage_class = TunedSqliteStorage


def make() -> Huey:
    db = os.environ.get("BENCH_HUEY_DB", "huey-bench.db")
    if os.environ.get("BENCH_HUEY_TUNED") == "1":
        return TunedSqliteHuey("bench", filename=db)
    from huey import SqliteHuey

    return SqliteHuey("bench", filename=db)


huey = make()


@huey.task()
def noop(*args: object) -> None:
    """The no-op task."""


@huey.task()
def stamp(path: str, token: int) -> None:
    jobs.stamp(path, token)
