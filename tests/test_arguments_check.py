"""Arguments are checked against the job's signature when it is scheduled, by every door
(``later``, ``later.many``, ``litejobs.enqueue``, recurring schedules), and objects that are not
jobs are refused: a job that could only fail with a ``TypeError`` is never stored to be retried
for hours. (The CLI's exit 2 for the same mistakes is in ``tests/cli/test_bad_input.py``.)"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import litejobs
from litejobs import JobManager, SQLiteAdapter
from litejobs.arguments import positional_range
from litejobs.errors import ArgumentsError, ValidationError
from tests import sample_jobs


@pytest.fixture
def jobs(tmp_path: Path) -> JobManager:
    return JobManager(adapters={"sqlite": SQLiteAdapter(tmp_path / "jobs.db")})


def stored(jobs: JobManager) -> int:
    return sum(sum(c.values()) for c in jobs.adapter().counts().values())


@pytest.mark.parametrize(
    ("job", "args", "kwargs", "message"),
    [
        (sample_jobs.record, [1, 2, 3], None, "too many positional arguments"),
        (sample_jobs.record, None, None, "missing a required argument: 'value'"),
        (sample_jobs.record, [1], {"nope": 2}, "unexpected keyword argument 'nope'"),
        (sample_jobs.record, [1], {"value": 2}, "multiple values for argument 'value'"),
        (sample_jobs.needs_keyword, None, None, "missing a required argument: 'token'"),
        ("tests.sample_jobs:record", [1, 2], None, "too many positional arguments"),
        ("tests.sample_jobs:boom", ["a", "b"], None, "too many positional arguments"),
    ],
)
def test_later_refuses_arguments_that_do_not_fit(
    jobs: JobManager, job: Any, args: Any, kwargs: Any, message: str
) -> None:
    with pytest.raises(ArgumentsError, match=message) as caught:
        jobs.create_scheduler()(job, args, kwargs=kwargs)
    assert "pass arguments that fit its signature" in str(caught.value)
    with pytest.raises(ArgumentsError, match=message):
        litejobs.enqueue(job, args, kwargs, db=jobs.adapter())
    assert stored(jobs) == 0


def test_the_message_shows_the_signature_and_the_call(jobs: JobManager) -> None:
    with pytest.raises(ArgumentsError) as caught:
        jobs.create_scheduler()(sample_jobs.boom, [1, 2])
    assert str(caught.value) == (
        "boom(message='boom') cannot be called with (1, 2): too many positional arguments; "
        "pass arguments that fit its signature"
    )


def test_arguments_that_fit_are_stored(jobs: JobManager) -> None:
    later = jobs.create_scheduler()
    later(sample_jobs.boom)  # a default
    later(sample_jobs.boom, ["x"])
    later(sample_jobs.record, kwargs={"value": 1})
    later(sample_jobs.needs_keyword, kwargs={"token": "t"})
    later(sample_jobs.record_all, [1, 2, 3], kwargs={"any": 1})
    later(sample_jobs.Mailer.deliver, ["a@b.c"])  # cls is bound: one argument
    decorated = jobs.create_job(perform=sample_jobs.record)
    later(decorated, [1])
    with pytest.raises(ArgumentsError, match="record"):
        later(decorated, [])
    assert stored(jobs) == 7


def test_unchecked_enqueue_stores_without_the_code(jobs: JobManager) -> None:
    # A producer without the job's code cannot check; the worker's TypeError is the job error.
    litejobs.enqueue("tests.sample_jobs:record", [1, 2], db=jobs.adapter(), check=False)
    assert stored(jobs) == 1


def test_many_checks_every_item_and_says_which(jobs: JobManager) -> None:
    later = jobs.create_scheduler()
    items = [(sample_jobs.record, [i]) for i in range(5)]
    with pytest.raises(ArgumentsError, match=r"^item 3 of the batch \(tests.sample_jobs:record\)"):
        later.many([*items[:3], (sample_jobs.record, [1, 2]), *items[3:]])
    with pytest.raises(ArgumentsError, match="item 0 of the batch"):
        later.many([sample_jobs.record, *items])
    with pytest.raises(ArgumentsError, match=r"item 2 of the batch.*unexpected keyword"):
        later.many(
            [sample_jobs.record_all, sample_jobs.record_all, sample_jobs.boom], kwargs={"x": 1}
        )
    with pytest.raises(ArgumentsError, match=r"item 1 of the batch.*'token'"):
        later.many([(sample_jobs.record, [1]), sample_jobs.needs_keyword])
    assert stored(jobs) == 0  # all or nothing
    assert len(later.many([*items, (sample_jobs.boom, []), (sample_jobs.boom, ["m"])])) == 7


def test_recurring_schedules_are_checked_when_defined(jobs: JobManager) -> None:
    with pytest.raises(ArgumentsError, match="missing a required argument"):
        jobs.recurring(sample_jobs.record, cron="* * * * *")


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ("scheduler", "is a Scheduler object, not a function"),
        (sample_jobs.GREETER, "GREETER|Greeter object, not a function"),
        ("tests.sample_jobs:GREETER", "is a Greeter object, not a function"),
        (sample_jobs.Greeter, "Greeter is a class, not a function"),
        ("tests.sample_jobs:Greeter", "is a class, not a function"),
    ],
)
def test_objects_that_are_not_jobs_are_refused(jobs: JobManager, job: Any, message: str) -> None:
    later = jobs.create_scheduler()
    target = later if job == "scheduler" else job
    with pytest.raises(ValidationError, match=message) as caught:
        later(target, ["x"])
    assert "\n" not in str(caught.value)
    assert stored(jobs) == 0


def _f0() -> None: ...
def _f1(a: int) -> None: ...
def _f2(a: int, b: int = 0, /, c: int = 1) -> None: ...
def _fv(a: int, *rest: int) -> None: ...
def _fk(a: int, *, k: int = 0) -> None: ...
def _fkr(a: int, *, k: int) -> None: ...
def _fkw(a: int, **extra: int) -> None: ...


@pytest.mark.parametrize("func", [_f0, _f1, _f2, _fv, _fk, _fkr, _fkw, sample_jobs.boom])
def test_positional_range_agrees_with_binding(func: Callable[..., Any]) -> None:
    low, high = positional_range(func)
    signature = inspect.signature(func)
    for count in range(6):
        try:
            signature.bind(*range(count))
            fits = True
        except TypeError:
            fits = False
        assert fits == (low <= count <= high), (func.__name__, count)
