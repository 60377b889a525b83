"""Unique batches from several processes at once never fail.

``later.many(..., unique=True)`` inserts every row of a batch in one transaction. Two batches
that share keys, inserted in different orders, each waited for the other's uncommitted key
(the unique index makes an insert wait for a concurrent insert of the same key): a deadlock,
which PostgreSQL breaks by failing one of them (about one call in eight, reported as "server
unavailable"). The adapter inserts in key order, so every batch takes the index's entries in
one global order and none can wait in a circle.

``litejobs retry --failed`` racing such a batch for the same keys read "no active twin", then
met the batch's uncommitted twin in the unique index and failed whole (a ``UniqueViolation``):
it now starts its transaction again (bounded), sees the twin and leaves that job failed.
"""

from __future__ import annotations

import multiprocessing
import random
from collections import defaultdict
from typing import Any

from litejobs import JobManager
from litejobs.adapters.postgres import PostgresAdapter
from litejobs.errors import StorageError
from tests.postgres.jobs import fail, work

PROCESSES = 4
ROUNDS = 40
KEYS = 40  # keys per round; each process takes a random 25 of them, in a random order
TAKE = 25


def _enqueue_rounds(url: str, schema: str, seed: int, barrier: Any, results: Any) -> None:
    """One producer: per round, wait for the others (so the batches overlap in time), then one
    ``later.many`` of its keys; reports ``(round, key, id)`` per job and every failure."""
    later = JobManager(adapters={"pg": PostgresAdapter(url, schema=schema)}).create_scheduler()
    rng = random.Random(seed)
    got: list[tuple[int, str, int]] = []
    failures: list[str] = []
    for round_ in range(ROUNDS):
        keys = [f"{round_}-{k}" for k in rng.sample(range(KEYS), TAKE)]
        barrier.wait(timeout=120)
        try:
            ids = later.many([(work, [key, "/dev/null"]) for key in keys], unique=True)
        except StorageError as exc:
            failures.append(str(exc))
            continue
        got.extend((round_, key, job_id) for key, job_id in zip(keys, ids, strict=True))
    results.put((got, failures))


def test_overlapping_unique_batches_in_random_orders_never_fail(
    pg: PostgresAdapter, pg_url: str, pg_schema: str
) -> None:
    pg.counts()  # create the schema once, before the producers race for it
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [
        ctx.Process(target=_enqueue_rounds, args=(pg_url, pg_schema, seed, barrier, results))
        for seed in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    failures = [f for _, fails in reports for f in fails]
    assert failures == [], f"{len(failures)} of {PROCESSES * ROUNDS} batches failed: {failures[0]}"
    ids_by_key: dict[str, set[int]] = defaultdict(set)
    for got, _ in reports:
        for _round, key, job_id in got:
            ids_by_key[key].add(job_id)
    # Every process that asked for a key got the one job that holds it.
    assert all(len(ids) == 1 for ids in ids_by_key.values())
    stored = pg.list_jobs(limit=None)
    assert len(stored) == len(ids_by_key)
    assert {job.args[0] for job in stored} == set(ids_by_key)


RETRY_ROUNDS = 15


def _batch_per_round(url: str, schema: str, barrier: Any, results: Any) -> None:
    later = JobManager(adapters={"pg": PostgresAdapter(url, schema=schema)}).create_scheduler()
    failures = []
    for round_ in range(RETRY_ROUNDS):
        barrier.wait(timeout=120)
        try:
            later.many(_round_jobs(round_), unique=True, queue=f"q{round_}", max_attempts=1)
        except StorageError as exc:
            failures.append(f"batch: {exc}")
    results.put(failures)


def _retry_per_round(url: str, schema: str, barrier: Any, results: Any) -> None:
    adapter = PostgresAdapter(url, schema=schema)
    failures = []
    for round_ in range(RETRY_ROUNDS):
        barrier.wait(timeout=120)
        try:
            adapter.retry_failed(f"q{round_}")
        except StorageError as exc:
            failures.append(f"retry --failed: {exc}")
    results.put(failures)


def _round_jobs(round_: int) -> list[tuple[Any, list[str]]]:
    return [(fail, [f"{round_}-{k}"]) for k in range(KEYS)]


def test_retrying_failed_jobs_while_batches_enqueue_their_twins_never_fails(
    pg: PostgresAdapter, pg_url: str, pg_schema: str
) -> None:
    manager = JobManager(adapters={"pg": pg})
    later = manager.create_scheduler()
    for round_ in range(RETRY_ROUNDS):
        later.many(_round_jobs(round_), unique=True, queue=f"q{round_}", max_attempts=1)
    manager.workoff()
    assert pg.count_jobs(state="failed") == RETRY_ROUNDS * KEYS
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(pg_url, pg_schema, barrier, results))
        for target in (_batch_per_round, _retry_per_round)
    ]
    for proc in procs:
        proc.start()
    failures = results.get(timeout=300) + results.get(timeout=300)
    for proc in procs:
        proc.join(timeout=60)
    assert failures == [], f"{len(failures)} calls failed: {failures[0]}"
    # Each key has exactly one pending job (the retried one or its new twin); the other stays
    # failed: nothing lost, nothing doubled.
    pending = pg.list_jobs(state="ready", limit=None)
    assert sorted(job.args[0] for job in pending) == sorted(
        f"{r}-{k}" for r in range(RETRY_ROUNDS) for k in range(KEYS)
    )
