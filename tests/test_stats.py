"""Outcome statistics: the histogram arithmetic, and storage counting exactly what workers did.

Why: an operator reads "3 failed in the last hour, p99 1.2 s" and acts on it. The counts must
equal the outcomes the workers produced, on every adapter, summed over workers (PostgreSQL
spreads them over shards), and survive the folding of old minutes into the totals.
"""

from __future__ import annotations

import math
import threading

import pytest

from litejobs import FakeClock, JobManager, WorkerConfig
from litejobs.adapters.base import Adapter
from litejobs.metrics import (
    LOWEST,
    UNTIMED,
    Histogram,
    bucket_of,
    summarize,
    tally,
    upper_bound,
)

from . import sample_jobs


# -- the arithmetic -----------------------------------------------------------------------------
@pytest.mark.parametrize("seconds", [1e-6, 0.00123, 0.5, 1.0, 1.0001, 3.7, 86_400.0])
def test_a_time_falls_in_the_bucket_whose_bounds_hold_it(seconds: float) -> None:
    bucket = bucket_of(seconds)
    assert upper_bound(bucket - 1) < seconds <= upper_bound(bucket)


def test_zero_negative_and_nan_times_share_the_lowest_bucket() -> None:
    assert bucket_of(0.0) == bucket_of(-1.0) == bucket_of(math.nan) == LOWEST


def test_percentiles_are_the_mean_of_the_rank_bucket_and_exact_for_one_value() -> None:
    histogram = Histogram()
    for seconds in [0.010] * 50 + [0.100] * 45 + [2.0] * 5:
        histogram.add(bucket_of(seconds), 1, seconds)
    assert histogram.count == 100 and histogram.total == pytest.approx(15.0)
    assert histogram.percentile(50) == pytest.approx(0.010)
    assert histogram.percentile(95) == pytest.approx(0.100)
    assert histogram.percentile(96) == pytest.approx(2.0)
    assert Histogram().percentile(50) is None


def test_a_batch_tallies_into_sorted_merged_rows() -> None:
    rows = tally(
        [
            ("b", "succeeded", 0.5, 2.0),
            ("a", "failed", None, None),  # a crash: counted, not timed
            ("b", "succeeded", 0.5, 2.0),
            ("a", "released", 0.1, 0.1),  # given back unstarted: not a run
        ]
    )
    assert rows == sorted(rows)
    assert rows == [
        ("a", "failed", UNTIMED, 1, 0.0),
        ("b", "succeeded", bucket_of(0.5), 2, 1.0),
        ("b", "wait", bucket_of(2.0), 2, 4.0),
    ]
    stats = summarize(row for row in rows)
    assert stats["a"].counts["failed"] == 1 and stats["a"].run.count == 0


# -- storage ------------------------------------------------------------------------------------
def outcomes(adapter: Adapter, since: float | None) -> dict[str, dict[str, object]]:
    return {q: s.as_dict() for q, s in summarize(r[1:] for r in adapter.stats_rows(since)).items()}


def test_stats_equal_the_outcomes_the_workers_produced(adapter: Adapter, clock: FakeClock) -> None:
    jobs = JobManager(adapters={"db": adapter}, clock=clock, workers=[WorkerConfig(max_attempts=2)])
    later = jobs.create_scheduler()
    start = clock.now()
    later.many([(sample_jobs.double, [i]) for i in range(3)], queue="default")
    later(sample_jobs.boom, ["once"], queue="email")
    clock.advance(7)  # every job waited exactly 7 s from due to start
    jobs.workoff()  # 3 succeeded; the boom errored
    clock.advance(1)  # its retry is due: it waits 0 s
    jobs.workoff()  # ... and fails for good
    got = outcomes(adapter, start)
    assert {q: (s["succeeded"], s["errored"], s["failed"]) for q, s in got.items()} == {
        "default": (3, 0, 0),
        "email": (0, 1, 1),
    }
    assert got["default"]["wait_seconds"] == {"p50": 7.0, "p95": 7.0, "p99": 7.0}
    assert got["email"]["wait_seconds"]["p50"] == 0.0  # the retry started the instant it was due
    run = got["default"]["run_seconds"]
    assert isinstance(run, dict) and 0 < run["p50"] <= run["p99"] < 5  # type: ignore[operator]
    assert outcomes(adapter, clock.now() + 60) == {}  # a window after them: nothing


def test_old_minutes_fold_into_totals_that_never_go_back(
    adapter: Adapter, clock: FakeClock
) -> None:
    jobs = JobManager(adapters={"db": adapter}, clock=clock)
    later = jobs.create_scheduler()
    for minute in range(3):
        later(sample_jobs.double, [minute])
        jobs.workoff()
        clock.advance(60)
    assert len({r[0] for r in adapter.stats_rows(0.0)}) == 3  # one row per minute
    totals = outcomes(adapter, None)
    assert adapter.prune_stats(clock.now() - 90) == 2 * 2  # two minutes: a run and a wait row each
    assert len({r[0] for r in adapter.stats_rows(1.0)}) == 1
    assert outcomes(adapter, None) == totals  # the counters did not go back
    assert adapter.prune_stats(clock.now()) == 2 and outcomes(adapter, None) == totals
    assert adapter.prune_stats(clock.now()) == 0


def test_workers_in_parallel_add_up(adapter: Adapter, clock: FakeClock) -> None:
    """Two workers, each on its own connection (and PostgreSQL shard), record at once."""
    jobs = JobManager(adapters={"db": adapter}, clock=clock)
    jobs.create_scheduler().many([(sample_jobs.double, [i]) for i in range(400)])
    barrier = threading.Barrier(2)

    def work() -> None:
        barrier.wait(10)
        jobs.workoff()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert adapter.list_jobs(limit=None) == []
    assert outcomes(adapter, None)["default"]["succeeded"] == 400


def test_the_prometheus_exposition_reads_the_same_numbers(
    adapter: Adapter, clock: FakeClock
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from litejobs.prometheus import exposition

    jobs = JobManager(adapters={"db": adapter}, clock=clock, workers=[WorkerConfig(max_attempts=1)])
    later = jobs.create_scheduler()
    later.many([(sample_jobs.double, [i]) for i in range(5)])
    later(sample_jobs.boom)
    clock.advance(3)
    jobs.workoff()
    later(sample_jobs.double, [9], wait=60)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition(adapter).decode())
        for s in family.samples
    }
    default = (("queue", "default"),)
    assert samples[("litejobs_job_outcomes_total", (("outcome", "succeeded"), *default))] == 5
    assert samples[("litejobs_job_outcomes_total", (("outcome", "failed"), *default))] == 1
    assert samples[("litejobs_jobs", (*default, ("state", "scheduled")))] == 1
    assert samples[("litejobs_jobs", (*default, ("state", "failed")))] == 1
    assert samples[("litejobs_job_wait_seconds_count", default)] == 6
    assert samples[("litejobs_job_wait_seconds_sum", default)] == pytest.approx(18.0)
    assert samples[("litejobs_job_wait_seconds_bucket", (("le", "1.0"), *default))] == 0
    assert samples[("litejobs_job_wait_seconds_bucket", (("le", "4.0"), *default))] == 6


def test_runs_ended_by_a_rescue_are_counted_without_a_run_time(
    adapter: Adapter, clock: FakeClock
) -> None:
    """A worker that died (here: stopped without waiting) ended its runs: counted as errored,
    or failed on the last attempt, with no run time to put in the histogram."""
    from litejobs.adapters.base import NewJob
    from tests.workers import Processes, register, worker

    procs = Processes()
    holder = worker(procs, max_attempts=1)
    register(adapter, procs, holder)
    handler = '{"name":"record","path":"tests.sample_jobs:record","args":[1]}'
    adapter.enqueue(NewJob(handler, queue="a", max_attempts=2))
    adapter.enqueue(NewJob(handler, queue="b"))
    assert len(adapter.claim(holder, ["a"], 1) + adapter.claim(holder, ["b"], 1)) == 2
    rescued = adapter.deregister_worker(holder)
    assert (rescued.released, rescued.failed) == (1, 1)
    got = summarize(r[1:] for r in adapter.stats_rows(None))
    assert (got["a"].counts["errored"], got["b"].counts["failed"]) == (1, 1)
    assert got["a"].run.count == got["b"].run.count == 0  # no run time is known
