"""Hosts whose wall clocks differ by minutes never take each other's live jobs on PostgreSQL.

Workers on other machines are judged by the deadlines they declare (``expires_at``), which
are wall-clock times. If each host used its own clock, a host 10 minutes ahead would find every
other host's deadline long past and rescue their running jobs (which would then run twice);
its own deadlines would look 10 minutes away to the others. The adapter takes the time from
the server (:class:`~litejobs.adapters.postgres.ServerClock`), which every host shares.

Two real worker processes, each "another machine" to the other; one has ``time.time`` running
10 minutes fast (``tests/postgres/skewed/sitecustomize.py``). Both hold jobs long enough for the
other to judge them several times.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from litejobs.adapters.postgres import PostgresAdapter
from tests.postgres.procs import active, logged_jobs, runs, spawn_worker, stop_all, wait_until
from tests.postgres.worker import STALE_AFTER

SKEWED = Path(__file__).with_name("skewed")
JOBS = 4
WORK_MS = 2500  # longer than the workers' stale_after (2 s): a wrong judge has time to act


def test_a_host_ten_minutes_ahead_never_takes_live_jobs(
    pg: PostgresAdapter,
    pg_url: str,
    pg_schema: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert WORK_MS > STALE_AFTER * 1000
    log, mark = tmp_path / "runs.log", tmp_path / "skewed-time"
    tokens = [f"j{i}" for i in range(JOBS)]
    pg.enqueue_many(logged_jobs(tokens, log, WORK_MS))
    monkeypatch.setenv("LITEJOBS_TEST_SKEW_MARK", str(mark))
    spawned = time.time()
    ahead = spawn_worker(pg_url, pg_schema, "host-ahead", 0, path=(SKEWED,))
    monkeypatch.delenv("LITEJOBS_TEST_SKEW_MARK")
    on_time = spawn_worker(pg_url, pg_schema, "host-on-time", 0)
    try:
        wait_until(lambda: active(pg) == 0, 120, f"{JOBS} jobs of {WORK_MS} ms to finish")
    finally:
        stop_all([ahead, on_time])
    ahead_by = float(mark.read_text()) - spawned  # its clock at its start, against ours before
    assert 600 <= ahead_by < 660, "the skewed process really was 10 minutes ahead"
    order = runs(log)
    assert Counter(token for token, _, _ in order) == Counter(tokens), "each job ran once"
    assert {host for _, host, _ in order} == {"host-ahead", "host-on-time"}, "both held jobs"
