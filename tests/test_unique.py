"""Unique jobs: a second enqueue of an active key returns the first job's id -- within one
process, and with several processes racing for the same key (the database decides)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from litejobs import FakeClock, JobManager, SQLiteAdapter, WorkerConfig
from litejobs.adapters.base import Adapter, Outcome
from litejobs.errors import ValidationError
from tests import sample_jobs
from tests.conftest import ADAPTER_KINDS, ROOT, make_adapter
from tests.workers import Processes, worker


def manager_for(adapter: Adapter) -> JobManager:
    return JobManager(adapters={"db": adapter}, workers=[WorkerConfig(sleep_delay=0)])


def test_same_key_returns_the_pending_id_until_the_job_is_done(adapter: Adapter) -> None:
    later = manager_for(adapter).create_scheduler()
    first = later(sample_jobs.record, [1], unique_key="user:42")
    assert later(sample_jobs.record, [2], unique_key="user:42") == first
    assert later(sample_jobs.boom, None, unique_key="user:42", wait=60) == first
    other = later(sample_jobs.record, [1], unique_key="user:43")
    assert other != first
    assert later(sample_jobs.record, [1]) not in (first, other)  # no key: never deduplicated
    assert [j.unique_key for j in adapter.list_jobs()] == ["user:42", "user:43", None]


def test_key_is_free_again_after_success_and_after_failure(
    sqlite_adapter: SQLiteAdapter, clock: FakeClock
) -> None:
    jobs = JobManager(
        adapters={"db": sqlite_adapter},
        workers=[
            WorkerConfig(sleep_delay=0, max_attempts=1, delete_successful_jobs=False),
        ],
    )
    later = jobs.create_scheduler()
    first = later(sample_jobs.record, [1], unique_key="k")
    jobs.workoff()
    assert sqlite_adapter.require(first).state == "succeeded"  # kept, but no longer active
    second = later(sample_jobs.boom, None, unique_key="k")
    assert second != first
    jobs.workoff()
    assert sqlite_adapter.require(second).state == "failed"
    third = later(sample_jobs.record, [3], unique_key="k")
    assert third not in (first, second)
    assert later(sample_jobs.record, [4], unique_key="k") == third


def test_running_job_still_holds_its_key(sqlite_adapter: SQLiteAdapter) -> None:
    later = manager_for(sqlite_adapter).create_scheduler()
    first = later(sample_jobs.record, [1], unique_key="k")
    [claimed] = sqlite_adapter.claim(worker(Processes(), "host/w"), None)
    assert claimed.id == first
    assert later(sample_jobs.record, [1], unique_key="k") == first


def test_unique_true_keys_on_function_and_arguments(adapter: Adapter) -> None:
    later = manager_for(adapter).create_scheduler()
    a = later(sample_jobs.record, [{"b": 1, "a": 2}], unique=True)
    assert later(sample_jobs.record, [{"a": 2, "b": 1}], unique=True) == a  # key order ignored
    assert later(sample_jobs.record, [{"a": 2}], unique=True) != a
    assert later(sample_jobs.boom, [{"b": 1, "a": 2}], unique=True) != a
    assert later(sample_jobs.record, [{"b": 1, "a": 2}]) != a  # not unique: a twin is fine


def test_schedule_many_deduplicates_inside_one_batch(sqlite_adapter: SQLiteAdapter) -> None:
    later = manager_for(sqlite_adapter).create_scheduler()
    ids = later.many([(sample_jobs.record, [1]), (sample_jobs.record, [1])], unique=True)
    assert ids[0] == ids[1] and len(sqlite_adapter.list_jobs()) == 1


def test_bad_unique_key_is_rejected(sqlite_adapter: SQLiteAdapter) -> None:
    later = manager_for(sqlite_adapter).create_scheduler()
    with pytest.raises(ValidationError, match="unique_key must be a non-empty string"):
        later(sample_jobs.record, [1], unique_key="")
    assert sqlite_adapter.list_jobs() == []


RACER = """
import json, sys, time
from litejobs import SQLiteAdapter, enqueue
db, start, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
adapter = SQLiteAdapter(db)
adapter.list_jobs()  # connect first, so the race is about the enqueue
while time.time() < start:
    time.sleep(0.001)
ids = [
    enqueue("tests.sample_jobs:record", [i], db=adapter, unique_key=f"key:{i % 5}")
    for i in range(n)
]
print(json.dumps(ids))
"""


def test_processes_racing_for_the_same_keys_create_one_row_per_key(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    SQLiteAdapter(db).list_jobs()  # schema first
    start = time.time() + 1.0  # every process starts enqueueing at the same instant
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(db), repr(start), "40"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        results.append(json.loads(out))
    rows = SQLiteAdapter(db).list_jobs(limit=None)
    assert sorted(r.unique_key or "" for r in rows) == [f"key:{k}" for k in range(5)]
    by_key = {r.unique_key: r.id for r in rows}
    for ids in results:  # every process was handed the one row's id for each key
        assert ids == [by_key[f"key:{i % 5}"] for i in range(40)]


PERIOD_RACER = """
import json, os, sys, time
from tests.test_unique import open_adapter
from litejobs import enqueue
kind, where, start, n, go = sys.argv[1:6]
start, n = float(start), int(n)
adapter = open_adapter(kind, where)
adapter.list_jobs()  # connect first, so the race is about the enqueue

def burst():
    return [
        enqueue("tests.sample_jobs:record", [i % 5], db=adapter, unique_key=f"key:{i % 5}",
                unique_for=3600)
        for i in range(n)
    ]

while time.time() < start:
    time.sleep(0.001)
print(json.dumps(burst()), flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.001)
print(json.dumps(burst()), flush=True)  # the jobs ran and their rows are gone by now
"""


def open_adapter(kind: str, where: str) -> Adapter:
    """The adapter a child process of these tests opens (``where``: a path, or a schema)."""
    if kind == "sqlite":
        return SQLiteAdapter(where)
    from litejobs.adapters.postgres import PostgresAdapter
    from tests.conftest import PG_URL

    assert PG_URL
    return PostgresAdapter(PG_URL, schema=where)


@pytest.mark.parametrize("kind", ADAPTER_KINDS)
def test_processes_racing_on_keys_held_for_a_period_create_one_job_per_key(
    kind: str, tmp_path: Path
) -> None:
    """Six processes enqueue five keys held for an hour, all at once: one job per key. Those
    jobs then run and their rows are deleted, and the six race again: the period still holds
    each key, so every process is handed the first jobs' ids and nothing is inserted."""
    adapter = make_adapter(kind, tmp_path, None)
    where = str(tmp_path / "jobs.db") if kind == "sqlite" else adapter.schema  # type: ignore[attr-defined]
    go = tmp_path / "go"
    start = time.time() + 1.0
    argv = [sys.executable, "-c", PERIOD_RACER, kind, where, repr(start), "40", str(go)]
    procs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(6)]
    first = [json.loads(proc.stdout.readline()) for proc in procs]  # type: ignore[union-attr]
    ids = {job_id for got in first for job_id in got}
    assert len(ids) == 5 and all(got == first[0] for got in first)
    me = worker(Processes(), "host/runner")
    while jobs := adapter.claim(me, None, 10):
        adapter.record([Outcome(job, "succeeded", delete=True) for job in jobs])
    assert adapter.list_jobs(limit=None) == []
    go.touch()
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert json.loads(out) == first[0]
    assert adapter.list_jobs(limit=None) == []
    adapter.close()
