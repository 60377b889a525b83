"""Scheduling through the Python API: what is accepted, what is refused, and what is stored.

Why: a bad scheduling request must fail at the call, with a typed error whose message says what to
do, and must store nothing -- a job that could never run, or whose arguments were silently changed,
is found hours later by a worker. Each test counts the rows of a real SQLite file to prove that
nothing was stored. Also covered: where the database lives by default, that it is created private
(0600) and that its schema version is recorded.
"""

from __future__ import annotations

import math
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import apsw
import pytest

import litejobs
from litejobs import FakeClock, JobManager, SQLiteAdapter, WorkerConfig
from litejobs.adapters import adapter_for_url
from litejobs.adapters.base import JobRecord, NewJob
from litejobs.adapters.sqlite import MIGRATIONS, SCHEMA_VERSION
from litejobs.errors import (
    ConfigurationError,
    HandlerNotFoundError,
    InvalidPriorityError,
    InvalidWaitError,
    LiteJobsError,
    SerializationError,
    StorageError,
    UnimportableJobError,
    UnknownAdapterError,
    UnknownQueueError,
    ValidationError,
)
from litejobs.scheduling import build_new_job

from . import sample_jobs
from .conftest import ROOT


@pytest.fixture
def jobs(db_path: Path, clock: FakeClock) -> Iterator[JobManager]:
    manager = JobManager(
        adapters={"sqlite": SQLiteAdapter(db_path)}, queues=["default", "email"], clock=clock
    )
    yield manager
    manager.adapter().close()


def stored(jobs: JobManager) -> int:
    """How many rows the database holds, whatever their state."""
    return sum(sum(states.values()) for states in jobs.adapter().counts().values())


def only_row(jobs: JobManager) -> JobRecord:
    (record,) = jobs.adapter().list_jobs()
    return record


# -- adapters and queues --------------------------------------------------------------------------
def test_unknown_adapter(db_path: Path) -> None:
    jobs = JobManager(adapters={"main": SQLiteAdapter(db_path)})
    with pytest.raises(UnknownAdapterError, match=r"unknown adapter 'other'; known: main"):
        jobs.create_scheduler(adapter="other")
    with pytest.raises(UnknownAdapterError, match="unknown adapter 'other'"):
        jobs.create_job(perform=sample_jobs.record, adapter="other")
    with pytest.raises(UnknownAdapterError, match="unknown adapter 'other'"):
        JobManager(adapters={"main": SQLiteAdapter(db_path)}, workers=[WorkerConfig("other")])
    two = {"a": SQLiteAdapter(db_path), "b": SQLiteAdapter(db_path)}
    with pytest.raises(UnknownAdapterError, match=r"several adapters \(a, b\); name one"):
        JobManager(adapters=two)  # the default worker group names no adapter
    with pytest.raises(UnknownAdapterError, match="several adapters"):
        JobManager(adapters=two, workers=[WorkerConfig("b")]).create_scheduler()
    with pytest.raises(ConfigurationError, match="at least one adapter"):
        JobManager(adapters={})


def test_queue_not_declared(jobs: JobManager) -> None:
    later = jobs.create_scheduler()
    with pytest.raises(UnknownQueueError) as info:
        later(sample_jobs.record, [1], queue="reports")
    assert str(info.value) == (
        "unknown queue 'reports'; declare it in JobManager(queues=[...]) (known: default, email)"
    )
    with pytest.raises(UnknownQueueError, match="unknown queue 'reports'"):
        jobs.create_job(perform=sample_jobs.record, queue="reports")
    with pytest.raises(UnknownQueueError, match="unknown queue 'reports'"):
        JobManager(
            adapters=jobs.adapters, queues=["default"], workers=[WorkerConfig(queue="reports")]
        )
    for bad in ("", "*", " ", 3):
        with pytest.raises(UnknownQueueError, match="queue must be a non-empty name"):
            later(sample_jobs.record, [1], queue=bad)  # type: ignore[arg-type]
    assert stored(jobs) == 0


def test_any_queue_when_none_are_declared(db_path: Path) -> None:
    jobs = JobManager(adapters={"sqlite": SQLiteAdapter(db_path)})
    job_id = jobs.create_scheduler()(sample_jobs.record, [1], queue="anything")
    assert jobs.adapter().require(job_id).queue == "anything"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"count": 0}, "count must be at least 1"),
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"max_runtime": 0}, "max_runtime must be more than 0 and at most 3.1536e[+]08 s"),
        ({"max_runtime": float("inf")}, "max_runtime must be .*got inf"),
        ({"max_runtime": float("nan")}, "max_runtime must be .*got nan"),
        ({"sleep_delay": -1}, "sleep_delay must be 0 or more seconds, got -1"),
        ({"sleep_delay": float("nan")}, "sleep_delay must be 0 or more seconds, got nan"),
        ({"stale_after": 10, "heartbeat_interval": 10}, "stale_after must be longer"),
        ({"queue": []}, "must name at least one queue"),
        ({"heartbeat_interval": 121, "stale_after": 600}, "heartbeat_interval must be at most 120"),
    ],
)
def test_bad_worker_configs(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        WorkerConfig(**options)  # type: ignore[arg-type]


def test_every_accepted_heartbeat_comes_well_within_the_orphan_grace() -> None:
    """A live worker whose row was deleted re-creates it with its next beat; locks it holds
    meanwhile are only adopted with the orphan grace as their deadline. The longest accepted
    interval must leave that beat time to land (and the longest one must be accepted)."""
    from litejobs.config import MAX_HEARTBEAT_INTERVAL
    from litejobs.liveness import ORPHAN_GRACE

    WorkerConfig(heartbeat_interval=MAX_HEARTBEAT_INTERVAL, stale_after=MAX_HEARTBEAT_INTERVAL + 1)
    assert 2 * MAX_HEARTBEAT_INTERVAL < ORPHAN_GRACE


# -- priority and wait ----------------------------------------------------------------------------
@pytest.mark.parametrize("priority", [0, 101, -1, 1.5, "5", True, False])
def test_priority_outside_1_to_100(jobs: JobManager, priority: object) -> None:
    with pytest.raises(InvalidPriorityError, match=r"priority must be .*from 1 .* to 100") as info:
        jobs.create_scheduler()(sample_jobs.record, [1], priority=priority)  # type: ignore[arg-type]
    assert repr(priority) in str(info.value)
    with pytest.raises(InvalidPriorityError):
        jobs.create_job(perform=sample_jobs.record, priority=priority)  # type: ignore[arg-type]
    assert stored(jobs) == 0


def test_priority_bounds_are_accepted(jobs: JobManager) -> None:
    later = jobs.create_scheduler()
    assert [later(sample_jobs.record, [p], priority=p) for p in (1, 100)]
    assert [r.priority for r in jobs.adapter().list_jobs()] == [1, 100]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"wait": -1}, "wait must be zero or more seconds, got -1"),
        ({"wait": timedelta(seconds=-5)}, "wait must be zero or more seconds"),
        ({"wait": math.nan}, "wait must be zero or more seconds, got nan"),
        ({"wait": "60"}, "wait must be a number of seconds, got '60'"),
        ({"wait": True}, "wait must be a number of seconds"),
        ({"wait": math.inf}, r"wait=inf is past the last storable time \(9999-12-31"),
        ({"wait": 10**30}, "is past the last storable time"),
        ({"wait_until": "2030-01-01"}, "wait_until must be a datetime, got str"),
        ({"wait_until": datetime.max.replace(tzinfo=UTC)}, "is past the last storable time"),
        ({"wait_until": datetime.min}, "cannot be converted from local time"),
    ],
)
def test_bad_waits(jobs: JobManager, options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidWaitError, match=message):
        jobs.create_scheduler()(sample_jobs.record, [1], **options)  # type: ignore[arg-type]
    assert stored(jobs) == 0


def test_wait_and_wait_until(jobs: JobManager, clock: FakeClock) -> None:
    later = jobs.create_scheduler()
    now = clock.now()
    in_an_hour = datetime.fromtimestamp(now + 3600, UTC)
    cases = [
        ({}, now),  # neither: now
        ({"wait": 0}, now),
        ({"wait": 30}, now + 30),
        ({"wait": 2.5}, now + 2.5),
        ({"wait": timedelta(minutes=2)}, now + 120),
        ({"wait_until": in_an_hour}, now + 3600),
        ({"wait": 30, "wait_until": in_an_hour}, now + 30),  # wait > 0 wins
        ({"wait": 0, "wait_until": in_an_hour}, now + 3600),  # wait 0 does not
        ({"wait": None, "wait_until": in_an_hour}, now + 3600),
    ]
    for options, expected in cases:
        job_id = later(sample_jobs.record, [1], **options)  # type: ignore[arg-type]
        assert jobs.adapter().require(job_id).run_at == expected, options


def test_aware_wait_until_in_any_zone(jobs: JobManager) -> None:
    later = jobs.create_scheduler()
    plus_two = datetime(2031, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    job_id = later(sample_jobs.record, [1], wait_until=plus_two)
    expected = datetime(2031, 6, 1, 10, 0, tzinfo=UTC).timestamp()
    assert jobs.adapter().require(job_id).run_at == expected


def test_wait_until_in_the_past_means_now(jobs: JobManager, clock: FakeClock) -> None:
    past = datetime.fromtimestamp(clock.now() - 86_400, UTC)
    job_id = jobs.create_scheduler()(sample_jobs.record, [1], wait_until=past)
    record = jobs.adapter().require(job_id)
    assert (record.state, record.run_at) == ("ready", past.timestamp())


def test_dates_before_the_year_1000_are_stored_and_run(jobs: JobManager) -> None:
    """A typo'd year (``datetime(202, 1, 1)``) is a past date: it must not poison the queue."""
    from litejobs.clock import iso

    when = datetime(202, 1, 1, tzinfo=UTC)
    job_id = jobs.create_scheduler()(sample_jobs.record, [1], wait_until=when)
    assert jobs.adapter().require(job_id).run_at == when.timestamp()
    assert iso(when.timestamp()) == "0202-01-01T00:00:00.000000Z"
    assert jobs.workoff().succeeded == 1


@pytest.fixture
def eastern_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC-5 (a POSIX TZ string: no tz database needed)."""
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("eastern_time")
def test_naive_wait_until_is_local_time(jobs: JobManager) -> None:
    """Documented: a naive datetime means the machine's local time, as ``datetime`` itself
    reads it (``datetime.now()`` is naive local time, so ``now() + timedelta(...)`` works)."""
    job_id = jobs.create_scheduler()(
        sample_jobs.record, [1], wait_until=datetime(2031, 6, 1, 12, 0)
    )
    expected = datetime(2031, 6, 1, 17, 0, tzinfo=UTC).timestamp()
    assert jobs.adapter().require(job_id).run_at == expected


# -- arguments ------------------------------------------------------------------------------------
class Point:
    pass


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ([{1, 2}], None, "got a value of type set"),
        ([Point()], None, "got a value of type Point"),
        ([datetime(2030, 1, 1)], None, "got a value of type datetime"),
        ([b"raw"], None, "got a value of type bytes"),
        ([[1, {"deep": {"deeper": {3}}}]], None, "got a value of type set"),
        ([math.nan], None, r"got a non-finite float \(nan\)"),
        ([{"x": -math.inf}], None, r"got a non-finite float \(-inf\)"),
        ([{(1, 2): "tuple key"}], None, "got a value of type tuple"),
        ([], {"when": datetime(2030, 1, 1)}, "got a value of type datetime"),
    ],
)
def test_unserialisable_args_name_the_type(
    jobs: JobManager, args: list[object], kwargs: dict[str, object] | None, message: str
) -> None:
    with pytest.raises(SerializationError, match=message) as info:
        jobs.create_scheduler()(sample_jobs.record, args, kwargs=kwargs)
    assert str(info.value).startswith("job arguments must be JSON-serialisable")
    assert "pass ids or plain data" in str(info.value)
    assert stored(jobs) == 0


@pytest.mark.parametrize("args", ["abc", b"abc", {"a": 1}, 5, {1, 2}])
def test_args_must_be_a_list(jobs: JobManager, args: object) -> None:
    with pytest.raises(SerializationError, match="args must be a list of positional arguments"):
        jobs.create_scheduler()(sample_jobs.record, args)  # type: ignore[arg-type]
    assert stored(jobs) == 0


def test_kwargs_must_be_a_dict_and_are_stored(jobs: JobManager) -> None:
    later = jobs.create_scheduler()
    with pytest.raises(SerializationError, match="kwargs must be a dict, got list"):
        later(sample_jobs.record, [], kwargs=[1])  # type: ignore[arg-type]
    job_id = later(sample_jobs.record, kwargs={"value": "v"})
    record = jobs.adapter().require(job_id)
    assert (record.args, record.kwargs) == ([], {"value": "v"})


def test_args_round_trip_and_tuples_become_lists(jobs: JobManager) -> None:
    args = [1, 2.5, "ü", None, True, [1, [2]], {"k": [3]}]
    job_id = jobs.create_scheduler()(sample_jobs.record_all, tuple(args))
    assert jobs.adapter().require(job_id).args == args


# -- jobs no worker could import ----------------------------------------------------------------
def test_lambda_and_nested_function_are_rejected(jobs: JobManager) -> None:
    later = jobs.create_scheduler()

    def nested() -> None:
        pass

    with pytest.raises(UnimportableJobError, match="a lambda cannot be a job"):
        later(lambda: None)
    with pytest.raises(UnimportableJobError, match="defined inside another function"):
        later(nested)
    decorated = jobs.create_job(perform=nested)  # defining is fine; scheduling is not
    with pytest.raises(UnimportableJobError, match="move it to module level"):
        later(decorated)
    with pytest.raises(UnimportableJobError):
        litejobs.enqueue(nested, db=jobs.adapter())
    assert stored(jobs) == 0


def test_methods_class_and_static_yes_bound_no(jobs: JobManager) -> None:
    later = jobs.create_scheduler()
    with pytest.raises(UnimportableJobError, match=r"Mailer\.send is a method bound to a Mailer"):
        later(sample_jobs.Mailer().send, ["a@b.c"])
    assert stored(jobs) == 0
    later(sample_jobs.Mailer.deliver, ["x@y.z"])
    later(sample_jobs.Mailer.ping, ["p@q.r"])
    assert {r.path for r in jobs.adapter().list_jobs()} == {
        "tests.sample_jobs:Mailer.deliver",
        "tests.sample_jobs:Mailer.ping",
    }
    sample_jobs.CALLS.clear()
    assert jobs.workoff().succeeded == 2
    assert sample_jobs.CALLS == [("deliver", "x@y.z"), ("ping", "p@q.r")]


MAIN_SCRIPT = """
import sys
from litejobs import JobManager, SQLiteAdapter
from litejobs.errors import UnimportableJobError

jobs = JobManager(adapters={"sqlite": SQLiteAdapter(sys.argv[1])})

@jobs.job
def decorated():
    pass

def plain():
    pass

later = jobs.create_scheduler()
for job in (decorated, plain):
    try:
        later(job)
    except UnimportableJobError as exc:
        print("rejected:", exc)
decorated.perform()  # inline still works
print("rows:", sum(sum(c.values()) for c in jobs.adapter().counts().values()))
"""


def run_python(*argv: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_main_script_functions_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(MAIN_SCRIPT)
    out = run_python("script.py", str(tmp_path / "s.db"), cwd=tmp_path).splitlines()
    assert out == [
        "rejected: decorated lives in a script run as __main__, which workers cannot import; "
        "move it to an importable module (or run the script with python -m)",
        "rejected: plain lives in a script run as __main__, which workers cannot import; "
        "move it to an importable module (or run the script with python -m)",
        "rows: 0",
    ]


def test_python_dash_m_module_functions_are_accepted(tmp_path: Path) -> None:
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text(MAIN_SCRIPT)
    out = run_python("-m", "myapp.tasks", str(tmp_path / "s.db"), cwd=tmp_path)
    assert out.splitlines() == ["rows: 2"]
    paths = {r.path for r in SQLiteAdapter(tmp_path / "s.db").list_jobs()}
    assert paths == {"myapp.tasks:decorated", "myapp.tasks:plain"}


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("nosuch.module:f", HandlerNotFoundError, "cannot import module 'nosuch.module'"),
        ("tests.sample_jobs:nope", HandlerNotFoundError, "has no attribute 'nope'"),
        ("tests.sample_jobs", HandlerNotFoundError, "is not a 'module:function' path"),
        (":record", HandlerNotFoundError, "is not a 'module:function' path"),
        ("tests.sample_jobs:CALLS", HandlerNotFoundError, "is a list, not a function"),
    ],
)
def test_unknown_module_func_via_enqueue(
    jobs: JobManager, path: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        litejobs.enqueue(path, [1], db=jobs.adapter())
    assert stored(jobs) == 0


def test_enqueue_by_path_and_by_function(jobs: JobManager, clock: FakeClock) -> None:
    adapter = jobs.adapter()
    by_path = litejobs.enqueue(
        "tests.sample_jobs:record", [1], db=adapter, wait=60, queue="q", priority=3
    )
    by_func = litejobs.enqueue(sample_jobs.record, kwargs={"value": 2}, db=adapter)
    unchecked = litejobs.enqueue("elsewhere.module:job", db=adapter, check=False)
    a, b, c = (adapter.require(i) for i in (by_path, by_func, unchecked))
    assert (a.path, a.name, a.args, a.queue, a.priority, a.run_at) == (
        "tests.sample_jobs:record",
        "record",
        [1],
        "q",
        3,
        clock.now() + 60,
    )
    assert (b.path, b.kwargs, b.queue, b.priority) == (
        "tests.sample_jobs:record",
        {"value": 2},
        "default",
        50,
    )
    assert (c.path, c.name) == ("elsewhere.module:job", "job")


def test_typed_errors_share_base_classes() -> None:
    for error in (InvalidPriorityError, InvalidWaitError, SerializationError, HandlerNotFoundError):
        assert issubclass(error, ValidationError)
    assert issubclass(UnknownQueueError, ConfigurationError)
    assert issubclass(ValidationError, LiteJobsError)


def test_bad_max_attempts(jobs: JobManager) -> None:
    for bad in (0, -1, "3", 2.0, True):
        with pytest.raises(ValidationError, match="max_attempts must be a whole number >= 1"):
            jobs.create_scheduler()(sample_jobs.record, max_attempts=bad)  # type: ignore[arg-type]
    assert stored(jobs) == 0


# -- options: defaults, overrides, later(job, None, ...) ------------------------------------------
def test_later_with_no_args_keeps_its_options(jobs: JobManager, clock: FakeClock) -> None:
    email = jobs.create_job(
        perform=sample_jobs.record_all, queue="email", priority=5, max_attempts=2
    )
    later = jobs.create_scheduler()
    job_id = later(email, None, wait=30)
    record = jobs.adapter().require(job_id)
    assert (record.args, record.run_at, record.queue, record.priority, record.max_attempts) == (
        [],
        clock.now() + 30,
        "email",
        5,
        2,
    )
    other = later(email, None, wait=30, queue="default", priority=9, max_attempts=7)
    record = jobs.adapter().require(other)
    assert (record.run_at, record.queue, record.priority, record.max_attempts) == (
        clock.now() + 30,
        "default",
        9,
        7,
    )


def test_defaults_and_per_call_overrides(jobs: JobManager) -> None:
    email = jobs.create_job(perform=sample_jobs.record, queue="email", priority=5)
    later = jobs.create_scheduler()
    plain = jobs.adapter().require(later(sample_jobs.record, [1]))
    assert (plain.queue, plain.priority, plain.max_attempts, plain.name) == (
        "default",
        50,
        None,
        "record",
    )
    defaulted = jobs.adapter().require(later(email, [2]))
    assert (defaulted.queue, defaulted.priority) == ("email", 5)
    overridden = jobs.adapter().require(later(email, [3], queue="default", priority=1))
    assert (overridden.queue, overridden.priority) == ("default", 1)
    by_path = jobs.adapter().require(later("tests.sample_jobs:record", [4], priority=2))
    assert (by_path.path, by_path.priority) == ("tests.sample_jobs:record", 2)


def test_decorator_forms(jobs: JobManager) -> None:
    bare = jobs.job(sample_jobs.record)
    configured = jobs.job(queue="email", priority=1, max_attempts=5)(sample_jobs.boom)
    assert (bare.queue, bare.priority, bare.max_attempts) == ("default", 50, None)
    assert (configured.queue, configured.priority, configured.max_attempts) == ("email", 1, 5)
    assert configured.path == "tests.sample_jobs:boom"


def test_later_many(jobs: JobManager, clock: FakeClock) -> None:
    later = jobs.create_scheduler()
    ids = later.many(
        [(sample_jobs.record, [1]), (sample_jobs.record, [2]), sample_jobs.record_all], wait=10
    )
    records = [jobs.adapter().require(i) for i in ids]
    assert [r.args for r in records] == [[1], [2], []]
    assert {r.run_at for r in records} == {clock.now() + 10}
    with pytest.raises(InvalidPriorityError):  # all or nothing
        later.many([(sample_jobs.record, [3]), (sample_jobs.record, [4])], priority=0)
    with pytest.raises(SerializationError):
        later.many([(sample_jobs.record, [5]), (sample_jobs.record, [{6}])])
    assert stored(jobs) == 3
    assert later.many([]) == []


# -- the database file ----------------------------------------------------------------------------
def test_default_path_from_litejobs_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "from-env.db"
    monkeypatch.setenv("LITEJOBS_DB", str(target))
    for adapter in (SQLiteAdapter(), adapter_for_url(None)):
        assert isinstance(adapter, SQLiteAdapter) and adapter.path == str(target)
        adapter.close()
    jobs = JobManager()
    jobs.create_scheduler()(sample_jobs.record, [1])
    jobs.adapter().close()
    assert target.is_file()


def test_default_path_from_platformdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("LITEJOBS_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    expected = Path(platformdirs.user_data_dir("litejobs")) / "jobs.db"
    assert tmp_path in expected.parents
    adapter = SQLiteAdapter()
    assert adapter.path == str(expected)
    adapter.enqueue(jobs_new_job())  # the default directory is created on first use
    adapter.close()
    assert expected.is_file()


def jobs_new_job() -> NewJob:
    return build_new_job(sample_jobs.record, [1], now=0.0)


def test_explicit_path_in_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    adapter = SQLiteAdapter(tmp_path / "missing" / "jobs.db")
    with pytest.raises(StorageError, match=r"directory .*missing does not exist; create it"):
        adapter.counts()
    assert not (tmp_path / "missing").exists()


def test_database_files_are_private(db_path: Path) -> None:
    old = os.umask(0o022)
    try:
        adapter = SQLiteAdapter(db_path)
        adapter.enqueue(jobs_new_job())
        suffixes = ["", "-wal", "-shm"]
        modes = {s: stat.S_IMODE(os.stat(f"{db_path}{s}").st_mode) for s in suffixes}
        adapter.close()
    finally:
        os.umask(old)
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_schema_version_is_recorded_and_wal_is_on(db_path: Path) -> None:
    adapter = SQLiteAdapter(db_path)
    job_id = adapter.enqueue(jobs_new_job())
    adapter.close()
    assert len(MIGRATIONS) == SCHEMA_VERSION
    conn = apsw.Connection(str(db_path))
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()
    reopened = SQLiteAdapter(db_path)  # opening again migrates nothing and keeps the job
    assert reopened.require(job_id).args == [1]
    reopened.close()


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database at all " * 100)
    with pytest.raises(StorageError, match="is not a SQLite database"):
        SQLiteAdapter(path).counts()
    assert path.read_text().startswith("not a database")
