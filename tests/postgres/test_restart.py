"""After a server restart (or a failover), the first call in every long-lived process and
thread succeeds.

A restart ends every session: the server writes a FATAL message to each connection and closes
it. An idle connection does not notice until its next query, which used to fail with
"server unavailable" although the server was back. The adapter now looks at an idle
connection before using it (the goodbye sits unread in its socket) and opens a new one; the
``LISTEN`` connection of an idle worker is replaced the same way, so NOTIFY wake-ups resume.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from litejobs.adapters.base import NewJob
from litejobs.adapters.postgres import PostgresAdapter
from tests.pg import drop_schema
from tests.postgres.procs import logged_jobs, runs, spawn_worker, stop_all, wait_until
from tests.postgres.server import Server

HANDLER = json.dumps({"name": "record", "path": "tests.sample_jobs:record", "args": [1]})
THREADS = 4  # thread 0 also listens


@pytest.fixture
def schema(own_server: Server) -> Iterator[str]:
    name = f"rs_{uuid.uuid4().hex[:12]}"
    yield name
    admin = PostgresAdapter(own_server.url, schema=name)
    drop_schema(admin)
    admin.close()


def test_the_first_call_in_every_thread_after_a_restart_succeeds(
    own_server: Server, schema: str
) -> None:
    adapter = PostgresAdapter(own_server.url, schema=schema)
    before, after = threading.Barrier(THREADS + 1), threading.Event()
    seen: list[object] = [None] * THREADS

    def thread(index: int) -> None:
        adapter.counts()  # this thread's connection is open and idle
        if index == 0:
            adapter.wait_for_change(0)  # ... and this one's LISTEN connection too
        before.wait(timeout=60)
        assert after.wait(120)
        try:
            if index == 0:  # the listener is replaced, and a possible change reported
                # (a worker's idle wait: 0.25 s slices; the goodbye is read, then the EOF)
                seen[index] = adapter.wait_for_change(0.25)
            else:
                seen[index] = adapter.counts()
        except Exception as exc:  # reported below
            seen[index] = exc

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    try:
        job = adapter.enqueue(NewJob(handler=HANDLER))
        before.wait(timeout=60)
        own_server.restart()
        assert adapter.get(job) is not None  # the main thread's first call after the restart
        after.set()
    finally:
        after.set()
        for t in threads:
            t.join(timeout=120)
        adapter.close()
    assert seen == [True] + [{"default": {"ready": 1}}] * (THREADS - 1)


def test_an_idle_worker_wakes_on_notify_after_a_restart(
    own_server: Server, schema: str, tmp_path: Path
) -> None:
    """A worker process that polls only every 120 s runs a job enqueued after the restart within
    seconds: its LISTEN connection came back, and its other calls went on."""
    log = tmp_path / "runs.log"
    adapter = PostgresAdapter(own_server.url, schema=schema)
    worker = spawn_worker(own_server.url, schema, "host-a", 0, sleep_delay=120)
    try:
        wait_until(lambda: len(adapter.workers()) == 1, 60, "the worker to register")
        adapter.enqueue_many(logged_jobs(["before"], log, 0))
        wait_until(lambda: len(runs(log)) == 1, 60, "the job enqueued before the restart")
        own_server.restart()
        adapter.enqueue_many(logged_jobs(["after"], log, 0))
        # Far less than the worker's 120 s sleep_delay: only a NOTIFY can have woken it.
        wait_until(lambda: len(runs(log)) == 2, 60, "the job enqueued after the restart")
        assert worker.poll() is None
    finally:
        stop_all([worker])
        adapter.close()
    assert [token for token, _, _ in runs(log)] == ["before", "after"]
