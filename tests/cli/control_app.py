"""An app for the job-control tests of real runners: a limited queue, and several workers per
runner. On SQLite it stores jobs where ``--db`` says; with ``$LITEJOBS_TEST_PG_SCHEMA`` set, in
that PostgreSQL schema (``$LITEJOBS_TEST_PG_URL``)."""

from __future__ import annotations

import os

from litejobs import JobManager, WorkerConfig

_schema = os.environ.get("LITEJOBS_TEST_PG_SCHEMA")
if _schema:
    from litejobs.adapters.postgres import PostgresAdapter

    _adapters = {"pg": PostgresAdapter(os.environ["LITEJOBS_TEST_PG_URL"], schema=_schema)}
else:
    from litejobs import SQLiteAdapter

    _adapters = {"sqlite": SQLiteAdapter()}  # where --db / $LITEJOBS_DB says

jobs = JobManager(
    adapters=_adapters,  # type: ignore[arg-type]
    queues=["default", "email", "limited"],
    queue_limits={"limited": 2},
    workers=[WorkerConfig(queue="*", count=4, sleep_delay=1, max_attempts=2)],
)
