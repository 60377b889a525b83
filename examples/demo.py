"""A demo of the main path on the embedded default database: schedule, then work off."""

from __future__ import annotations

import logging

from litejobs import JobManager

jobs = JobManager()  # SQLite at $LITEJOBS_DB or the platform's user data dir


@jobs.job(queue="default", priority=10)
def greet(name: str) -> None:
    print(f"hello, {name}!")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    later = jobs.create_scheduler()
    job_id = later(greet, ["world"])  # stored as examples.demo:greet
    print(f"scheduled job {job_id} in {jobs.adapter()}", flush=True)
    stats = jobs.workoff()
    print(f"ran {stats.ran} job(s): {stats.succeeded} succeeded, {stats.errored} errored")
