"""The chaos run's apps: two worker groups with different liveness settings on one database.

``slow`` heartbeats every 10 s and declares a 60 s deadline (the defaults); ``fast`` every 0.5 s
with a 5 s deadline. A mixed chaos round runs both at once (two ``litejobs work``) plus an
in-process ``jobs.workoff()`` loop, so workers judge each other across different settings.
The database comes from ``$CHAOS_DB``.
"""

from __future__ import annotations

import os

from litejobs import JobManager, SQLiteAdapter, WorkerConfig

_DB = os.environ.get("CHAOS_DB", "chaos.db")

slow = JobManager(
    adapters={"sqlite": SQLiteAdapter(_DB)},
    workers=[WorkerConfig(queue="*", count=2, sleep_delay=0.5)],
)
fast = JobManager(
    adapters={"sqlite": SQLiteAdapter(_DB)},
    workers=[
        WorkerConfig(
            queue="default", count=2, sleep_delay=0.5, heartbeat_interval=0.5, stale_after=5
        )
    ],
)
