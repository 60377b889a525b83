"""``workoff`` and ``worker --workoff`` cut short by Ctrl-C or SIGTERM: the running job finishes,
the rest stays for the next run, the summary says "interrupted" and the exit status is the
shell's convention (128 + signal: 130 for Ctrl-C, 143 for SIGTERM), so cron and CI see it.

Real ``litejobs`` processes in their own session; Ctrl-C is SIGINT to the whole process group,
as a terminal sends it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from litejobs import JobManager, SQLiteAdapter

from .conftest import EXE, ROOT, clean_env

WAIT = 30.0
SLOW = "tests.runtime.jobs:slow"


def marks(trace: Path, word: str) -> int:
    if not trace.exists():
        return 0
    return sum(line.split()[0] == word for line in trace.read_text().splitlines())


def start(db: Path, *command: str, stderr: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(EXE), "--db", str(db), "-q", *command],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr is None else stderr.open("w"),
        text=True,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )


def wait_for_start(trace: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT
    while marks(trace, "started") < 1:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the first job never started"
        time.sleep(0.02)


def send(process: subprocess.Popen[str], signum: int) -> None:
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)  # Ctrl-C: the terminal signals the whole group
    else:
        os.kill(process.pid, signum)


@pytest.mark.parametrize("command", [["workoff"], ["worker", "--workoff"]], ids=" ".join)
@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [
        (signal.SIGINT, 130, "interrupted by SIGINT (Ctrl-C)"),
        (signal.SIGTERM, 143, "interrupted by SIGTERM"),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_an_interrupted_workoff_says_so_and_exits_128_plus_the_signal(
    tmp_path: Path, command: list[str], signum: int, code: int, said: str
) -> None:
    db, trace = tmp_path / "jobs.db", tmp_path / "trace"
    adapter = SQLiteAdapter(db)
    later = JobManager({"default": adapter}).create_scheduler()
    ids = [later(SLOW, [str(trace), 1.0]) for _ in range(3)]
    process = start(db, *command)
    try:
        wait_for_start(trace, process)
        send(process, signum)
        out, err = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(WAIT)
    assert process.returncode == code, (out, err)
    assert out.startswith("ran 1: 1 succeeded, 0 errored (will retry), 0 failed; ")
    assert said in out and "left for the next run" in out
    assert "Traceback" not in err
    assert (marks(trace, "started"), marks(trace, "done")) == (1, 1)  # it let the job finish
    left = [adapter.get(job_id) for job_id in ids]
    assert [record.state for record in left if record is not None] == ["ready", "ready"]
    adapter.close()


def test_a_second_sigterm_stops_a_single_worker_now_and_still_exits_143(tmp_path: Path) -> None:
    db, trace = tmp_path / "jobs.db", tmp_path / "trace"
    adapter = SQLiteAdapter(db)
    job_id = JobManager({"default": adapter}).create_scheduler()(SLOW, [str(trace), 30.0])
    log = tmp_path / "stderr"
    process = start(db, "worker", "--workoff", stderr=log)
    try:
        wait_for_start(trace, process)
        send(process, signal.SIGTERM)  # after this job...
        deadline = time.monotonic() + WAIT
        while "stopping after the current job" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        send(process, signal.SIGTERM)  # ...no: now
        out, _ = process.communicate(timeout=WAIT)
        err = log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(WAIT)
    assert process.returncode == 143, (out, err)
    assert "interrupted by SIGTERM, then stopped now" in out
    assert marks(trace, "done") == 0
    assert adapter.require(job_id).state in ("running", "ready")  # runs again
    adapter.close()
