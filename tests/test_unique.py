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
from litejobs.adapters.base import Adapter
from litejobs.errors import ValidationError
from tests import sample_jobs
from tests.conftest import ROOT
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
