"""Job control through the real ``litejobs`` executable and real runners: ``cancel`` (waiting,
running, finished, unknown), ``delete`` of a running job, ``pause``/``resume`` across two
runners, a queue limit held by two runners of four workers each, and ``enqueue``'s per-job
options. On SQLite always; on PostgreSQL too when ``$LITEJOBS_TEST_PG_URL`` is set.

Why: an operator's first bad day is spent here (a job to stop now, a queue flooded by a broken
deploy); every answer must be one clear line, and every host must obey at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from litejobs import SQLiteAdapter
from litejobs.adapters.base import Adapter
from litejobs.scheduling import build_new_job
from tests.conftest import ADAPTER_KINDS, PG_URL

from .conftest import EXE, ROOT, Result, clean_env

APP = "tests.cli.control_app:jobs"


class Site:
    """One database (a SQLite file or a PostgreSQL schema) and the commands and runners that
    share it."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.env = clean_env()
        self.db: list[str] = []
        self.adapter: Adapter
        if kind == "sqlite":
            self.db = ["--db", str(tmp_path / "jobs.db")]
            self.adapter = SQLiteAdapter(tmp_path / "jobs.db")
        else:
            from litejobs.adapters.postgres import PostgresAdapter
            from tests.pg import reset_schema

            assert PG_URL
            schema = f"ctl_{os.getpid()}"
            self.adapter = PostgresAdapter(PG_URL, schema=schema)
            reset_schema(self.adapter)
            self.env.update(LITEJOBS_TEST_PG_URL=PG_URL, LITEJOBS_TEST_PG_SCHEMA=schema)
        self.runners: list[subprocess.Popen[bytes]] = []

    def add(self, count: int, job: str, args: list[Any], **options: Any) -> list[int]:
        """Enqueue ``count`` jobs from this process (set-up; ``enqueue`` is the CLI's)."""
        new = build_new_job(job, args, now=self.adapter.clock.now(), **options)
        return self.adapter.enqueue_many([new] * count)

    def __call__(self, *args: str) -> Result:
        proc = subprocess.run(
            [str(EXE), *self.db, "--app", APP, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def enqueue(self, *args: str) -> int:
        done = self("enqueue", *args)
        assert done.code == 0, done.err
        return int(done.out)

    def state(self, job_id: int) -> str:
        return self.adapter.require(job_id).state

    def start_runner(self) -> None:
        log = open(self.tmp / f"runner{len(self.runners)}.log", "wb")  # noqa: SIM115
        self.runners.append(
            subprocess.Popen(
                [str(EXE), *self.db, "--app", APP, "work"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )

    def stop_runners(self) -> None:
        for runner in self.runners:
            if runner.poll() is None:
                runner.send_signal(signal.SIGINT)
        for runner in self.runners:
            try:
                runner.wait(timeout=30)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait()
        self.adapter.close()


@pytest.fixture(params=ADAPTER_KINDS)
def sites(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """Every adapter: for what must hold across runners and hosts."""
    made = Site(request.param, tmp_path)
    yield made
    made.stop_runners()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """SQLite: for what the command line says (the same on PostgreSQL by the adapter contract,
    ``tests/test_control_contract.py``)."""
    made = Site("sqlite", tmp_path)
    yield made
    made.stop_runners()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def counter(path: Path) -> dict[str, int]:
    """What ``tests.sample_jobs:overlap`` counted (read under its lock)."""
    import fcntl

    if not path.exists():
        return {"now": 0, "max": 0, "done": 0}
    with open(path, encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH)
        return dict(json.loads(fh.read() or '{"now": 0, "max": 0, "done": 0}'))  # new: empty


# -- cancel and delete --------------------------------------------------------------------------
def test_cancel_answers_one_line_per_job(site: Site) -> None:
    [waiting] = site.add(1, "tests.sample_jobs:record", [1])
    [later] = site.add(1, "tests.sample_jobs:record", [2], wait=600)
    done = site("cancel", str(waiting), str(later), "999")
    assert done.code == 2
    assert done.out.splitlines() == [
        f"job {waiting} cancelled (was ready)",
        f"job {later} cancelled (was scheduled)",
    ]
    assert done.err == "litejobs: error: no job with id 999; `litejobs list` shows the ids\n"
    again = site("cancel", str(waiting))
    assert (again.code, again.out) == (0, f"job {waiting} is cancelled; nothing to cancel\n")
    listed = site("list", "--state", "cancelled", "--json").json()
    assert [(j["id"], j["state"]) for j in listed] == [(waiting, "cancelled"), (later, "cancelled")]
    assert listed[0]["cancelled_at"] is not None
    assert site("workoff").out.startswith("ran 0:")
    assert site("status", "--json").json()["totals"]["cancelled"] == 2
    assert site("retry", str(waiting)).out == f"job {waiting} is ready (was cancelled)\n"
    assert site("workoff").out.startswith("ran 1: 1 succeeded")


def test_a_running_job_is_refused_to_delete_and_stopped_by_cancel(
    site: Site, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    [job_id] = site.add(1, "tests.sample_jobs:spin", [str(marker), 60])
    site.start_runner()
    wait_for("the job to start", marker.exists)
    refused = site("delete", str(job_id))
    assert refused.code == 2 and refused.out == ""
    assert refused.err.startswith(f"litejobs: error: job {job_id} is running: its worker would")
    assert f"litejobs cancel {job_id}" in refused.err and "--force" in refused.err
    started = time.monotonic()
    done = site("cancel", str(job_id))
    assert time.monotonic() - started < 5
    assert (done.code, done.out) == (
        0,
        f"job {job_id} cancelled (was running; stopped by its worker)\n",
    )
    assert site.runners[0].poll() is None  # the worker lives on
    assert site.state(job_id) == "cancelled"
    assert site("delete", str(job_id)).out == f"deleted job {job_id}\n"


# -- pause, resume and a queue limit across runners ------------------------------------------
def test_pause_and_a_queue_limit_hold_across_two_runners_of_four_workers(
    sites: Site, tmp_path: Path
) -> None:
    """Two runners of four worker processes each share the database: a paused queue's jobs wait
    on both until resumed (lower-priority work runs meanwhile), and a queue limited to 2 never
    has more than 2 jobs running at once, counted by the jobs themselves."""
    probe, others, limited = (tmp_path / f"{n}.json" for n in ("probe", "others", "limited"))
    overlap = "tests.sample_jobs:overlap"
    held = sites.add(4, overlap, [str(probe), 0], queue="email", priority=1)
    assert sites("pause", "email").out == "paused queue 'email'; running jobs finish\n"
    assert sites("pause", "email").out == "queue 'email' was already paused\n"
    sites.add(8, overlap, [str(others), 0], priority=100)  # had the pause not held, last in line
    sites.start_runner()
    sites.start_runner()
    wait_for("the other jobs to run", lambda: counter(others)["done"] == 8)
    assert counter(probe)["done"] == 0
    assert {sites.state(job_id) for job_id in held} == {"ready"}
    status = sites("status")
    assert "paused queues: email (4 ready); `litejobs resume QUEUE` lets them run" in status.out
    controls = sites("status", "--json").json()["queue_controls"]
    assert controls["email"]["paused"] is True and controls["email"]["paused_at"]
    assert sites("resume", "email").out == "resumed queue 'email'\n"
    wait_for("the email jobs to run", lambda: counter(probe)["done"] == 4)
    assert sites("resume", "email").out == "queue 'email' was not paused\n"
    unknown = sites("pause", "sms")
    assert unknown.code == 2 and "unknown queue 'sms'" in unknown.err

    sites.add(16, overlap, [str(limited), 0.05], queue="limited")  # eight workers, two slots
    wait_for("every limited job to run", lambda: counter(limited)["done"] == 16)
    seen = counter(limited)
    assert seen["max"] == 2, f"at most 2 at once, and the limit was reached: {seen}"
    assert sites("status", "--json").json()["queue_controls"]["limited"]["limit"] == 2
    assert "queue limits: limited 0/2 held" in sites("status").out


# -- enqueue's per-job options -----------------------------------------------------------------
def test_enqueue_takes_a_jobs_own_timeout_retry_policy_and_unique_period(site: Site) -> None:
    args = ["tests.sample_jobs:record", "--args", "[1]"]
    first = site("enqueue", *args, "--max-runtime", "30", "--retry", "10,60,600", "--json")
    assert first.code == 0, first.err
    row = first.json()
    assert (row["max_runtime"], row["retry"]) == (30.0, {"intervals": [10.0, 60.0, 600.0]})
    keyed = ["--unique-key", "digest:42", "--unique-for", "3600"]
    one = site.enqueue(*args, *keyed)
    assert site.enqueue(*args, *keyed) == one
    assert site("workoff").code == 0
    assert site.enqueue(*args, *keyed) == one  # succeeded (deleted) within the hour: held
    bad = site("enqueue", *args, "--retry", "10,soon")
    assert bad.code == 2
    assert bad.err == (
        "litejobs: error: --retry takes seconds separated by commas, e.g. --retry 10,60,600; "
        "got '10,soon'\n"
    )
