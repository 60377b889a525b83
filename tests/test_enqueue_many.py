"""``later.many`` builds rows through a batched fast path; it must store exactly what one-by-one
scheduling stores and reject exactly what it rejects."""

from __future__ import annotations

import json

import pytest

from litejobs import JobManager, SQLiteAdapter
from litejobs.errors import SerializationError, UnknownQueueError
from litejobs.scheduling import build_new_job, build_new_jobs
from tests import sample_jobs


def test_batched_rows_equal_one_by_one_rows() -> None:
    calls = [
        (sample_jobs.record, [1]),
        (sample_jobs.record_all, None),
        (sample_jobs.record_all, ["x", {"nested": [1.5, None, True]}]),
        ("tests.sample_jobs:record_all", ["é", 2**40]),
        (sample_jobs.record_all, ("tuple", "args")),
    ]
    options = {"queue": "default", "priority": 7, "wait": 30, "max_attempts": 3}
    batched = build_new_jobs(calls, now=1000.0, **options)
    single = [build_new_job(job, args, now=1000.0, **options) for job, args in calls]
    assert batched == single
    assert json.loads(batched[4].handler)["args"] == ["tuple", "args"]


def test_batched_errors_match_one_by_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    manager = JobManager(adapters={"sqlite": SQLiteAdapter(tmp_path / "j.db")}, queues=["default"])
    later = manager.create_scheduler()
    with pytest.raises(SerializationError, match="set"):
        later.many([(sample_jobs.record, [1]), (sample_jobs.record, [{6}])])
    with pytest.raises(SerializationError, match="list of positional"):
        later.many([(sample_jobs.record, [1]), (sample_jobs.record, "abc")])
    with pytest.raises(UnknownQueueError):
        later.many([(sample_jobs.record, [1])], queue="nope")
    assert manager.adapter().counts() == {}  # all or nothing: nothing stored


def test_many_stores_consecutive_ids_in_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    adapter = SQLiteAdapter(tmp_path / "j.db")
    later = JobManager(adapters={"sqlite": adapter}).create_scheduler()
    first = later(sample_jobs.record, [0])
    ids = later.many([(sample_jobs.record, [i]) for i in range(1, 6)])
    assert ids == list(range(first + 1, first + 6))
    for i, job_id in enumerate(ids, start=1):
        record = adapter.get(job_id)
        assert record is not None and record.handler["args"] == [i]
    adapter.close()
