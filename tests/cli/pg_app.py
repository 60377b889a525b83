"""An app on PostgreSQL for the CLI tests: its own schema, so runs never share rows.

Imported only by the PostgreSQL CLI test (``$LITEJOBS_TEST_PG_URL`` set).
"""

from __future__ import annotations

import os

from litejobs import JobManager
from litejobs.adapters.postgres import PostgresAdapter

jobs = JobManager(
    adapters={"pg": PostgresAdapter(os.environ["LITEJOBS_TEST_PG_URL"],
                                    schema=os.environ["LITEJOBS_TEST_PG_SCHEMA"])},
    queues=["default", "email"],
)  # fmt: skip
