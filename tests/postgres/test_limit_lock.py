"""On PostgreSQL, claimers of a limited queue take turns: a claim waits for the one before it to
commit, so it counts what that one took (concurrent claimers would otherwise both see room for
one more). Claimers of other queues never wait for it.

Why: SQLite serialises every claim with its write lock; PostgreSQL claims run side by side, and
a queue limit is only a limit if they do not for a limited queue. Waiting is observed as the
server reports it (``pg_stat_activity``: a backend waiting on a lock), not by timing.
"""

from __future__ import annotations

import threading
import time

import psycopg

from litejobs.adapters.base import NewJob
from litejobs.adapters.postgres import PostgresAdapter
from tests.workers import Processes, worker

HANDLER = '{"name":"record","path":"tests.sample_jobs:record","args":[1]}'


def waiting_on_a_lock(url: str, app: str = "litejobs") -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND wait_event_type = 'Lock'",
            (app,),
        ).fetchone()
    return bool(row and row[0])


def test_a_claim_of_a_limited_queue_waits_for_the_claim_before_it(
    pg: PostgresAdapter, pg_url: str
) -> None:
    pg.enqueue_many([NewJob(HANDLER, queue="q"), NewJob(HANDLER, queue="free")])
    pg.set_queue_limit("q", 1)
    other = worker(Processes(), "host/w.free")
    # Another claimer's transaction holds the queue's turn (as a claim in progress does).
    holder = psycopg.connect(pg_url, application_name="holder")
    got: list[list[str]] = []
    try:
        holder.execute(f"SELECT 1 FROM {pg._s}.litejobs_queues WHERE queue = 'q' FOR UPDATE")
        assert [j.queue for j in pg.claim(other, ["free"], 1)] == ["free"]  # not limited
        claimer = threading.Thread(
            target=lambda: got.append([j.queue for j in pg.claim(worker(Processes()), ["q"], 1)])
        )
        claimer.start()
        deadline = time.monotonic() + 10
        while not (got or waiting_on_a_lock(pg_url)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert got == [], "the claim of the limited queue did not wait its turn"
        assert waiting_on_a_lock(pg_url)
    finally:
        holder.rollback()
        holder.close()
    claimer.join(30)
    assert got == [["q"]]
