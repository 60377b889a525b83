"""An app that says where its jobs live (``--app tests.cli.app_pinned:jobs``): a ``--db`` naming
any other file must be refused, never silently win."""

from __future__ import annotations

from litejobs import JobManager, SQLiteAdapter

jobs = JobManager(
    adapters={"sqlite": SQLiteAdapter("var/pinned-jobs.db", durability="full")},
    queues=["default", "email"],
)
