"""PostgreSQL specifics: LISTEN/NOTIFY wake-ups, the polling fallback, concurrent migration,
fork safety and clear storage errors."""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import threading
import time

import pytest

from litejobs import WorkerConfig
from litejobs.adapters.base import NewJob
from litejobs.adapters.postgres import SCHEMA_VERSION, PostgresAdapter, redact
from litejobs.errors import StorageError
from litejobs.worker import Worker
from tests.pg import drop_schema

HANDLER = json.dumps({"name": "record", "path": "tests.sample_jobs:record", "args": [1]})


def test_wait_for_change_wakes_on_schedule_and_times_out_without(
    pg: PostgresAdapter, pg_url: str, pg_schema: str
) -> None:
    other = PostgresAdapter(pg_url, schema=pg_schema)
    try:
        # The first wait starts listening and reports a possible change: anything committed
        # before LISTEN took effect was announced to no one, so the caller must look once.
        assert pg.wait_for_change(0.05) is True
        assert pg.wait_for_change(0.05) is False
        threading.Timer(0.2, lambda: other.enqueue(NewJob(handler=HANDLER))).start()
        assert pg.wait_for_change(20) is True
        assert pg.wait_for_change(0.05) is False, "one schedule, one wake-up"
        # Another schema's channel does not wake us.
        stranger = PostgresAdapter(pg_url, schema=f"{pg_schema}_x")
        stranger.enqueue(NewJob(handler=HANDLER))
        assert pg.wait_for_change(0.2) is False
        drop_schema(stranger)
        stranger.close()
    finally:
        other.close()


def test_polling_fallback_reports_a_possible_change(pg_url: str, pg_schema: str) -> None:
    polling = PostgresAdapter(pg_url, schema=pg_schema, listen=False, poll_interval=0.05)
    try:
        assert polling.wait_for_change(0.01) is False
        assert polling.wait_for_change(1.0) is True  # "look again": the caller polls has_ready
    finally:
        polling.close()


def test_idle_worker_is_woken_by_notify_not_by_its_sleep_delay(
    pg: PostgresAdapter, pg_url: str, pg_schema: str
) -> None:
    """An idle worker with a 120 s sleep_delay picks each new job up well before it would poll;
    the enqueue→start latencies are printed (smoke test: no timing in the assertions beyond
    "not after the sleep_delay")."""
    done = threading.Event()
    started: list[float] = []
    worker_adapter = PostgresAdapter(pg_url, schema=pg_schema)
    worker = Worker(
        worker_adapter,
        WorkerConfig(sleep_delay=120, stale_after=300, heartbeat_interval=100),
        name="host/litejobs-worker.*.0",
        on_job=lambda job, execution: (started.append(time.monotonic()), done.set()),
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    latencies = []
    try:
        for _ in range(5):
            time.sleep(0.3)  # let the worker go idle (LISTENing)
            done.clear()
            enqueued = time.monotonic()
            pg.enqueue(NewJob(handler=HANDLER))
            assert done.wait(60), "the idle worker was not woken by the NOTIFY"
            latencies.append(started[-1] - enqueued)
    finally:
        worker.stop.set()
        thread.join(timeout=30)
        worker_adapter.close()
    print(f"enqueue→start via NOTIFY: median {statistics.median(latencies) * 1000:.1f} ms")
    assert not thread.is_alive()


def _migrate(url: str, schema: str) -> int:
    adapter = PostgresAdapter(url, schema=schema)
    try:
        return len(adapter.counts())
    finally:
        adapter.close()


def test_concurrent_first_use_migrates_once(pg_url: str, pg_schema: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(6) as pool:
        assert pool.starmap(_migrate, [(pg_url, pg_schema)] * 6) == [0] * 6
    adapter = PostgresAdapter(pg_url, schema=pg_schema)
    row = adapter.connection.execute(f'SELECT version FROM "{pg_schema}".litejobs_meta').fetchall()
    assert row == [(SCHEMA_VERSION,)]
    adapter.close()


def test_forked_child_uses_its_own_connection(pg: PostgresAdapter) -> None:
    job_id = pg.enqueue(NewJob(handler=HANDLER))
    parent_conn = pg.connection
    pid = os.fork()
    if pid == 0:  # child: must not reuse (or close) the parent's socket
        code = 1
        try:
            child_conn = pg.connection
            ok = child_conn is not parent_conn and pg.get(job_id) is not None
            pg.enqueue(NewJob(handler=HANDLER))
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pg.connection is parent_conn and not parent_conn.closed
    assert len(pg.list_jobs()) == 2  # the parent's connection still works


def test_unreachable_server_is_one_clear_line_without_the_password(tmp_path: object) -> None:
    url = f"postgresql://bob:s3cret@/litejobs?host={tmp_path}"  # no server on that socket dir
    adapter = PostgresAdapter(url, connect_timeout=2)
    with pytest.raises(StorageError) as info:
        adapter.counts()
    message = str(info.value)
    assert "\n" not in message and "s3cret" not in message
    assert "unavailable" in message and "LITEJOBS_DB" in message
    assert redact(url) == f"postgresql://bob:***@/litejobs?host={tmp_path}"


def test_bad_schema_name_is_refused() -> None:
    with pytest.raises(ValueError, match="plain identifier"):
        PostgresAdapter("postgresql:///x", schema='bad"; DROP')


def test_a_connection_the_server_ended_while_idle_is_replaced_before_use(
    pg: PostgresAdapter,
) -> None:
    """The server ended the session while it sat idle (a restart, a failover, an admin's
    pg_terminate_backend): the next call notices before using it and opens another."""
    pg.enqueue(NewJob(handler=HANDLER))
    victim_pid = pg.connection.info.backend_pid
    killer = PostgresAdapter(pg.url, schema=pg.schema)
    # The 5 s timeout: return only once the backend is gone (its goodbye is in our socket).
    killer.connection.execute("SELECT pg_terminate_backend(%s, 5000)", (victim_pid,))
    killer.close()
    assert pg.counts() == {"default": {"ready": 1}}
    assert pg.connection.info.backend_pid != victim_pid


def test_a_connection_lost_during_a_call_is_one_storage_error_then_replaced(
    pg: PostgresAdapter,
) -> None:
    """A call the connection broke under may or may not have happened: it is a StorageError
    (never silently repeated); the next call gets a new connection."""
    victim_pid = pg.connection.info.backend_pid
    killer = PostgresAdapter(pg.url, schema=pg.schema)

    def terminate() -> None:
        conn = killer.connection
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the victim is inside its pg_sleep
            busy = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND query LIKE %s",
                (victim_pid, "%pg_sleep%"),
            ).fetchone()
            if busy == (1,):
                break
            time.sleep(0.01)
        conn.execute("SELECT pg_terminate_backend(%s)", (victim_pid,))

    thread = threading.Thread(target=terminate)
    thread.start()
    with pytest.raises(StorageError, match=r"unavailable|failed"):
        pg._read(lambda c: c.execute("SELECT pg_sleep(30)"))
    thread.join(timeout=30)
    killer.close()
    assert pg.counts() == {}
