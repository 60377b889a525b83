"""Recurring (cron) jobs: tick arithmetic, the database's once-per-tick rule, catch-up after
downtime, and four real worker processes racing for the same ticks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from litejobs import FakeClock, JobManager, SQLiteAdapter, WorkerConfig, current_job
from litejobs.adapters.base import Adapter, NewJob
from litejobs.errors import ConfigurationError
from litejobs.recurring import Recurring
from tests import sample_jobs
from tests.conftest import ROOT

T0 = datetime(2030, 1, 1, tzinfo=UTC).timestamp()  # FakeClock's default start: a tick of */15
MIN = 60.0


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


def manager_for(adapter: Adapter) -> JobManager:
    return JobManager(adapters={"db": adapter}, workers=[WorkerConfig(sleep_delay=0)])


def record_tick(path: str) -> None:
    """Job body for the multi-process test: one line per execution, appended atomically."""
    ctx = current_job()
    assert ctx is not None
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{ctx.id} {ctx.worker}\n".encode())
    finally:
        os.close(fd)


# -- tick arithmetic ----------------------------------------------------------------------------
def schedule(cron: str, tz: str | None = None) -> Recurring:
    from litejobs.recurring import parse_timezone

    return Recurring("s", cron, NewJob(handler="{}"), timezone=parse_timezone(tz))


def test_last_and_next_tick_include_now_exactly() -> None:
    s = schedule("*/15 * * * *")
    assert s.last_tick(T0) == T0
    assert s.last_tick(T0 + 14 * MIN + 59.9) == T0
    assert s.next_tick(T0) == T0 + 15 * MIN
    assert s.next_tick(T0 - 0.5) == T0


def test_timezone_is_honoured_across_dst() -> None:
    # 02:30 does not exist in Berlin on 2030-03-31 (clocks jump 02:00 -> 03:00).
    s = schedule("30 2 * * *", "Europe/Berlin")
    before = datetime(2030, 3, 30, 12, tzinfo=UTC).timestamp()
    first = s.next_tick(before)
    assert first == datetime(2030, 3, 31, 1, 0, tzinfo=UTC).timestamp()  # 03:00 CEST
    assert s.next_tick(first) == datetime(2030, 4, 1, 0, 30, tzinfo=UTC).timestamp()
    assert schedule("0 9 * * *", "UTC").next_tick(T0) == T0 + 9 * 3600


def test_bad_definitions_are_rejected_with_a_clear_message(sqlite_adapter: SQLiteAdapter) -> None:
    jobs = manager_for(sqlite_adapter)
    with pytest.raises(ConfigurationError, match="invalid cron expression"):
        jobs.recurring(sample_jobs.record, cron="every 5 minutes", args=[1])
    with pytest.raises(ConfigurationError, match="unknown timezone"):
        jobs.recurring(sample_jobs.record, cron="* * * * *", timezone="Mars/Olympus", args=[1])
    jobs.recurring(sample_jobs.record, cron="* * * * *", args=[1])
    with pytest.raises(ConfigurationError, match="already exists; give each one a name"):
        jobs.recurring(sample_jobs.record, cron="0 * * * *", args=[2])
    jobs.recurring(sample_jobs.record, cron="0 * * * *", args=[2], name="hourly")
    with pytest.raises(ConfigurationError, match="timezone= only applies with cron"):
        jobs.create_job(perform=sample_jobs.boom, timezone="UTC")
    assert set(jobs.schedules) == {"tests.sample_jobs:record", "hourly"}


# -- the database decides ---------------------------------------------------------------------
def test_schedule_tick_fires_each_tick_once(adapter: Adapter) -> None:
    job = NewJob(handler='{"name":"record","path":"tests.sample_jobs:record","args":[1]}')
    assert adapter.enqueue_tick("s", T0, job) is None  # first sight: the starting point
    assert adapter.enqueue_tick("s", T0, job) is None
    first = adapter.enqueue_tick("s", T0 + 900, job)
    assert first is not None
    assert adapter.enqueue_tick("s", T0 + 900, job) is None  # same tick again
    assert adapter.enqueue_tick("s", T0 + 450, job) is None  # older than the last: never
    second = adapter.enqueue_tick("s", T0 + 1800, job)
    assert second is not None and second != first
    assert adapter.enqueue_tick("other", T0 + 1800, job) is None  # names are independent
    assert [j.id for j in adapter.list_jobs()] == [first, second]
    assert adapter.last_ticks() == {"s": T0 + 1800, "other": T0 + 1800}


def hourly_job() -> None:
    sample_jobs.CALLS.append("hourly")


def test_decorated_job_fires_at_each_tick_through_workoff(
    sqlite_adapter: SQLiteAdapter, clock: FakeClock
) -> None:
    sample_jobs.CALLS.clear()
    jobs = manager_for(sqlite_adapter)
    hourly = jobs.job(cron="0 * * * *", timezone="Europe/Berlin")(hourly_job)
    assert jobs.schedules[hourly.path].cron == "0 * * * *"
    jobs.recurring(sample_jobs.record, cron="*/15 * * * *", args=["quarter"], name="quarterly")
    jobs.workoff()  # first sight at 00:00: the starting point, nothing runs
    assert sample_jobs.CALLS == []
    clock.advance(15 * MIN)
    jobs.workoff()
    assert sample_jobs.CALLS == ["quarter"]
    clock.advance(45 * MIN)  # 01:00: both fire, once each
    jobs.workoff()
    jobs.workoff()
    assert sorted(sample_jobs.CALLS) == ["hourly", "quarter", "quarter"]


def test_missed_ticks_run_once_on_start_up(sqlite_adapter: SQLiteAdapter, clock: FakeClock) -> None:
    sample_jobs.CALLS.clear()
    jobs = manager_for(sqlite_adapter)
    jobs.recurring(sample_jobs.record, cron="*/15 * * * *", args=["tick"])
    jobs.workoff()
    clock.advance(5 * 3600 + 7 * MIN)  # nothing ran for 20 ticks
    jobs.workoff()
    assert sample_jobs.CALLS == ["tick"]
    [last] = sqlite_adapter.last_ticks().values()
    assert last == T0 + 5 * 3600  # the latest missed tick, not the first
    clock.advance(8 * MIN)  # 05:15
    jobs.workoff()
    assert sample_jobs.CALLS == ["tick", "tick"]


def test_unique_recurring_job_skips_a_tick_while_the_last_run_is_pending(
    sqlite_adapter: SQLiteAdapter, clock: FakeClock
) -> None:
    jobs = manager_for(sqlite_adapter)
    jobs.recurring(sample_jobs.record, cron="* * * * *", args=["x"], unique=True)
    ticker = jobs.ticker()
    assert ticker is not None
    assert ticker.run() == []  # starting point
    clock.advance(MIN)
    [first] = ticker.run()
    clock.advance(MIN)
    assert ticker.run() == [first]  # no worker ran it: the pending one stands for this tick
    assert len(sqlite_adapter.list_jobs()) == 1


class CountingAdapter(SQLiteAdapter):
    """A real SQLite adapter that counts how often tick enqueues reach the database."""

    calls = 0

    def enqueue_tick(self, name: str, tick_at: float, job: NewJob) -> int | None:
        self.calls += 1
        return super().enqueue_tick(name, tick_at, job)


def test_ticker_touches_the_database_only_when_a_tick_is_due(
    db_path: Path, clock: FakeClock
) -> None:
    adapter = CountingAdapter(db_path, clock=clock)
    jobs = manager_for(adapter)
    jobs.recurring(sample_jobs.record, cron="0 * * * *", args=[1])
    ticker = jobs.ticker()
    assert ticker is not None
    ticker.run()
    assert ticker.due_at == T0 + 3600 and adapter.calls == 1
    for _ in range(50):
        clock.advance(MIN)
        assert ticker.run() == []
    assert adapter.calls == 1
    clock.advance(10 * MIN)
    assert len(ticker.run()) == 1 and adapter.calls == 2


# -- four worker processes, one database, a shared clock ----------------------------------------
class FileClock:
    """A clock every process reads from one file: the test moves time for all workers at once."""

    def __init__(self, path: str) -> None:
        self.path = path

    def now(self) -> float:
        with open(self.path) as f:
            return float(f.read())

    def monotonic(self) -> float:
        return time.monotonic()  # the file's jumps are wall-clock steps; real time passes


def _set_time(path: Path, when: float) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(repr(when))
    os.replace(tmp, path)  # atomic: readers never see a half-written time


def worker_main(db: str, clock_file: str, stop_file: str, out: str, index: int) -> None:
    """Entry point of one worker process (run via ``python -c``)."""
    adapter = SQLiteAdapter(db, clock=FileClock(clock_file))
    # The shared clock jumps 15 minutes at a time: with the default stale_after (60 s) every
    # heartbeat would look stale right after a jump and recovery could re-run a live worker's job.
    config = WorkerConfig(sleep_delay=0.02, stale_after=30 * 86_400)
    jobs = JobManager(adapters={"db": adapter}, workers=[config])
    jobs.recurring(record_tick, cron="*/15 * * * *", args=[out])
    worker = jobs.worker(worker_id=index, keep_running=lambda: not os.path.exists(stop_file))
    worker.run()


def test_four_worker_processes_fire_each_tick_exactly_once(tmp_path: Path) -> None:
    db, clock_file = tmp_path / "jobs.db", tmp_path / "clock"
    stop_file, out = tmp_path / "stop", tmp_path / "runs.txt"
    _set_time(clock_file, T0)
    observer = SQLiteAdapter(db, clock=FileClock(str(clock_file)))
    observer.list_jobs()  # creates the schema before the race
    code = (
        "import sys; from tests.test_recurring import worker_main; "
        "worker_main(*sys.argv[1:5], int(sys.argv[5]))"
    )
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                str(db),
                str(clock_file),
                str(stop_file),
                str(out),
                str(i),
            ],
            cwd=ROOT,
        )
        for i in range(4)
    ]
    ticks = 8
    try:
        wait_for(lambda: len(observer.workers()) == 4, what="4 workers to register")
        wait_for(lambda: observer.last_ticks().get("tests.test_recurring:record_tick") == T0)
        for k in range(1, ticks + 1):
            tick = T0 + k * 15 * MIN
            _set_time(clock_file, tick)  # all four see the tick come due at the same moment
            wait_for(
                lambda t=tick: observer.last_ticks().get("tests.test_recurring:record_tick") == t,
                what=f"tick {k}",
            )
        wait_for(
            lambda: out.exists() and len(out.read_text().splitlines()) >= ticks,
            what="the runs",
        )
        # Any duplicate would be enqueued by now; give stragglers a moment to show themselves.
        wait_for(lambda: not observer.has_ready(None), what="an empty queue")
    finally:
        stop_file.touch()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0]
    runs = out.read_text().splitlines()
    ids = [int(line.split()[0]) for line in runs]
    assert len(runs) == ticks and len(set(ids)) == ticks
    tick_rows = observer._read(
        lambda c: list(
            c.execute("SELECT tick_at, job_id FROM litejobs_recurring_ticks ORDER BY tick_at")
        )
    )
    assert len(tick_rows) == ticks + 1  # the starting point plus one row per tick
    assert tick_rows[0][1] is None
    assert sorted(row[1] for row in tick_rows[1:]) == sorted(ids)
    assert observer.list_jobs() == []


# -- CLI-only users: [[tool.litejobs.recurring]] in pyproject.toml ------------------------------
PYPROJECT = """
[project]
name = "someapp"

[[tool.litejobs.recurring]]
job = "tests.sample_jobs:record"
cron = "*/30 * * * *"
args = ["from-config"]

[[tool.litejobs.recurring]]
job = "tests.sample_jobs:record"
name = "berlin-morning"
cron = "0 9 * * mon-fri"
timezone = "Europe/Berlin"
args = ["morning"]
priority = 10
"""


def test_pyproject_schedules_are_loaded_with_the_default_manager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from litejobs.appload import AppSource, load_manager

    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    db = tmp_path / "jobs.db"
    jobs = load_manager(AppSource(None, "default"), db=str(db))
    assert sorted(jobs.schedules) == ["berlin-morning", "tests.sample_jobs:record"]
    assert jobs.schedules["berlin-morning"].job.priority == 10
    load_manager(AppSource(None, "default"), db=str(db))  # loading twice is harmless
    clock = FakeClock()
    jobs.adapter().clock = clock
    sample_jobs.CALLS.clear()
    jobs.workoff()
    clock.advance(30 * MIN)
    jobs.workoff()
    assert sample_jobs.CALLS == ["from-config"]


def test_a_bad_pyproject_schedule_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.litejobs.recurring]]\njob = "tests.sample_jobs:record"\nargs = [1]\n'
        'cron = "61 * * * *"\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "litejobs", "--db", str(tmp_path / "jobs.db"), "workoff"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "recurring entry 1: invalid cron expression '61 * * * *'" in result.stderr
    assert "Traceback" not in result.stderr


class OffsetClock:
    """Real time shifted so that a cron tick is a fraction of a second away."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()


def test_an_idle_worker_wakes_for_the_next_tick(db_path: Path) -> None:
    import threading

    lead = 0.5  # the next */15 tick is this far away when the worker goes idle
    clock = OffsetClock(T0 - lead - time.time())
    adapter = SQLiteAdapter(db_path, clock=clock)
    jobs = JobManager(adapters={"db": adapter}, workers=[WorkerConfig(sleep_delay=120)])
    jobs.recurring(sample_jobs.record, cron="*/15 * * * *", args=["woke"])
    sample_jobs.CALLS.clear()
    worker = jobs.worker()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        # Without the wake-up the worker would sleep its full sleep_delay (120 s) first.
        wait_for(lambda: sample_jobs.CALLS == ["woke"], timeout=20, what="the tick's run")
    finally:
        worker.stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_cli_lists_schedules_with_their_last_and_next_tick(tmp_path: Path) -> None:
    import json

    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def cli(*args: str, columns: int = 200) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "litejobs", "--db", str(tmp_path / "jobs.db"), *args],
            cwd=tmp_path,
            env={**env, "COLUMNS": str(columns)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    cli("workoff")  # a worker's first sight records each schedule's starting point
    after = {row["name"]: row for row in json.loads(cli("recurring", "--json"))}
    assert after["berlin-morning"]["timezone"] == "Europe/Berlin"
    assert after["tests.sample_jobs:record"]["args"] == ["from-config"]
    assert all(row["last_tick"] is not None for row in after.values())
    assert all(row["next_tick"] > row["last_tick"] for row in after.values())
    table = cli("recurring").splitlines()
    assert table[0].split() == ["NAME", "CRON", "TIME", "ZONE", "JOB", "LAST", "NEXT"]
    berlin = next(line for line in table if line.startswith("berlin-morning "))
    assert berlin.split()[:8] == [
        "berlin-morning",
        "0",
        "9",
        "*",
        "*",
        "mon-fri",
        "Europe/Berlin",
        "tests.sample_jobs:record",
    ]
    assert re.search(r" ago +in \d", berlin)  # last tick, next tick
    narrow = cli("recurring", columns=80).splitlines()
    assert len(narrow) == len(table)
    assert all(len(line) <= 80 for line in narrow)
    assert "0 9 * * mon-fri" in " ".join(narrow)  # cron expressions are never cut
