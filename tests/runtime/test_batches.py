"""Batch claims with real processes: a batch never charges or holds jobs it has not started.

When jobs are short a worker claims many at once; the first starts, the rest are reserved. Two
things went wrong before: a job that killed its worker made its whole batch "stopped during
attempt N" (jobs with ``max_attempts=1`` failed without ever running), and a long first job kept
the rest of its batch locked behind it while other workers sat idle.
"""

from __future__ import annotations

import signal
from pathlib import Path

from litejobs import SQLiteAdapter
from litejobs.manager import Scheduler

from .conftest import marks, wait_for

JOBS = "tests.runtime.jobs"


def warm_up(later: Scheduler, trace: Path, count: int = 400) -> None:
    """Many short jobs first, so the worker's claims grow to whole batches."""
    later.many([(f"{JOBS}:touch", [str(trace)]) for _ in range(count)], priority=10)


def test_a_job_that_kills_its_worker_mid_batch_charges_nothing_to_the_rest(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    warm, killer_trace, rest = tmp_path / "warm", tmp_path / "killer", tmp_path / "rest"
    warm_up(later, warm)
    head = later(f"{JOBS}:touch", [str(rest)], priority=20)
    killer = later(f"{JOBS}:crash", [str(killer_trace)], priority=20, max_attempts=2)
    fragile = [later(f"{JOBS}:touch", [str(rest)], priority=20, max_attempts=1) for _ in range(10)]
    pool = pools({"stale_after": 60, "sleep_delay": 0.2})
    wait_for(lambda: db.get(killer) is not None and db.require(killer).state == "failed", 60,
             "the killer to run out of attempts")  # fmt: skip
    wait_for(lambda: all(db.get(j) is None for j in [head, *fragile]), 30, "the rest to run")
    record = db.require(killer)
    assert record.attempts == 2, record
    assert "stopped during attempt 2" in (record.last_error or "")
    # Every job of the batch ran: none was failed or charged for the killer's crashes.
    assert len(marks(rest, "done")) >= 11
    assert db.list_jobs(state="failed", limit=None) == [record]
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


def test_a_crash_is_never_charged_to_a_job_that_had_already_finished(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    """Jobs too short for an outcome write each (so outcomes wait up to a millisecond for the
    next one), every one on its last attempt; a killer among them. The crash is the killer's:
    a job that finished before it must not end failed because storage still showed it running,
    and the killer runs at most once more than its attempts (its first, uncounted start)."""
    innocent, killer_trace = tmp_path / "innocent", tmp_path / "killer"
    before = later.many([(f"{JOBS}:touch", [str(innocent)]) for _ in range(300)], max_attempts=1)
    killer = later(f"{JOBS}:crash", [str(killer_trace)], max_attempts=2)
    after = later.many([(f"{JOBS}:touch", [str(innocent)]) for _ in range(100)], max_attempts=1)
    pool = pools({"stale_after": 60, "sleep_delay": 0.2})
    wait_for(lambda: db.get(killer) is not None and db.require(killer).state == "failed", 60,
             "the killer to run out of attempts")  # fmt: skip
    wait_for(lambda: all(db.get(j) is None for j in [*before, *after]), 30, "the rest to run")
    assert [j.id for j in db.list_jobs(state="failed", limit=None)] == [killer]
    assert db.require(killer).attempts == 2
    assert len(marks(killer_trace, "started")) <= 3
    assert len(marks(innocent, "done")) >= 400
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


def test_a_long_job_does_not_hold_the_rest_of_its_batch(
    pools, later: Scheduler, db: SQLiteAdapter, tmp_path: Path
) -> None:
    """Two workers; one claims a batch whose first job takes 20 s: within about a second it
    gives the rest back, and the other worker runs them while the long job goes on."""
    warm, slow, quick = tmp_path / "warm", tmp_path / "slow", tmp_path / "quick"
    pool = pools({"count": 2, "stale_after": 60, "sleep_delay": 0.2})
    warm_up(later, warm)
    wait_for(lambda: len(marks(warm, "done")) >= 400, 60, "the warm-up jobs")
    later.many(
        [(f"{JOBS}:slow", [str(slow), 20])] + [(f"{JOBS}:touch", [str(quick)])] * 20,
        priority=5,
    )
    wait_for(lambda: marks(slow, "started"), 15, "the long job to start")
    wait_for(lambda: len(marks(quick, "done")) == 20, 10, "the rest of its batch, elsewhere")
    assert marks(slow, "done") == [], "the long job is still running: nothing waited for it"
    assert db.list_jobs(state="reserved", limit=None) == []
    pool.signal(signal.SIGINT)
    wait_for(lambda: "stopping:" in pool.log_text(), 10, "the first SIGINT to be handled")
    pool.signal(signal.SIGINT)  # stop now: the long job is released, not waited for
    pool.wait(15)
