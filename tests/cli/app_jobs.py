"""An application for the CLI tests: ``--app tests.cli.app_jobs:jobs`` (run from the repo root).

Jobs append what they did to the file named by ``$LITEJOBS_TEST_LOG``, so a test can see what ran,
in which order and in which worker, across processes.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta

from litejobs import JobManager, WorkerConfig, current_job

jobs = JobManager(
    queues=["default", "email"],
    workers=[WorkerConfig(queue="*", max_attempts=1, sleep_delay=0.2)],
)


def _log(entry: object) -> None:
    ctx = current_job()
    line = json.dumps({"value": entry, "worker": ctx.worker if ctx else None})
    with open(os.environ["LITEJOBS_TEST_LOG"], "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def record(value: object) -> None:
    _log(value)


def boom(message: str = "boom") -> None:
    raise ValueError(message)


@jobs.job(keep_result=True, keep_succeeded=timedelta(days=1))
def square(n: int) -> int:
    """A success that stays findable a day, with its return value."""
    return n * n


NOT_CALLABLE = 42
later = jobs.create_scheduler()  # callable, but not a job: enqueue must refuse it

#: The same app with its own logger for workers (``--app tests.cli.app_jobs:logged``).
logged = JobManager(
    queues=["default", "email"],
    workers=[WorkerConfig(queue="*", logger=logging.getLogger("cliapp.jobs"))],
)

#: The same app with a recurring schedule (``--app tests.cli.app_jobs:timed``).
timed = JobManager(queues=["default", "email"])
timed.recurring(record, cron="0 * * * *", args=["hourly"])
