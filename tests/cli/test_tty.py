"""Behaviour that only exists on a terminal: the ``clear`` question and the ``workoff`` bar.

The executable runs on a real pseudo-terminal, so ``isatty()`` is true as for an operator.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

from litejobs import SQLiteAdapter, enqueue

from .conftest import APP, EXE, ROOT, clean_env, ran


def run_on_tty(
    argv: list[str], job_log: Path, *, answer: bytes | None = None, timeout: float = 60
) -> tuple[int, str]:
    """Run with stdin/stdout/stderr on a pty; type ``answer`` once a question (``?``) shows."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(EXE), *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=clean_env(LITEJOBS_TEST_LOG=str(job_log), COLUMNS="100"),
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
                if answer is not None and b"?" in output:
                    os.write(master, answer)
                    answer = None
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, output.decode(errors="replace").replace("\r\n", "\n")


def seed(db_path: Path, count: int) -> None:
    """Enqueue through the library: quicker than ``count`` CLI processes, same rows."""
    adapter = SQLiteAdapter(db_path)
    for value in range(count):
        enqueue("tests.cli.app_jobs:record", [value], db=adapter)
    adapter.close()


def test_clear_asks_on_a_terminal(cli, db_path: Path, job_log: Path) -> None:
    seed(db_path, 2)
    code, out = run_on_tty(["--db", str(db_path), "clear"], job_log, answer=b"n\n")
    assert "Delete all jobs?" in out
    assert code == 1 and "nothing deleted" in out
    assert len(cli("list", "--json").json()) == 2
    code, out = run_on_tty(["--db", str(db_path), "clear"], job_log, answer=b"y\n")
    assert code == 0 and "deleted 2 jobs" in out
    assert cli("list", "--json").json() == []


def test_workoff_on_a_terminal_shows_progress_and_a_summary(
    cli, db_path: Path, job_log: Path
) -> None:
    seed(db_path, 30)
    code, out = run_on_tty(["--db", str(db_path), "--app", APP, "workoff"], job_log)
    assert code == 0, out
    assert "ran 30: 30 succeeded, 0 errored (will retry), 0 failed" in out
    assert "job 1 record started" not in out  # per-job INFO lines would tear the bar
    assert sorted(e["value"] for e in ran(job_log)) == list(range(30))


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_workoff_prints_worker_log_lines_above_the_bar_never_into_it(
    db_path: Path, job_log: Path
) -> None:
    adapter = SQLiteAdapter(db_path)
    failing = []
    for value in range(40):
        if value % 4 == 0:  # a job that fails: its worker logs an ERROR line while the bar runs
            failing.append(enqueue("tests.cli.app_jobs:boom", [f"bad {value}"], db=adapter))
        else:
            enqueue("tests.runtime.jobs:sleep", [0.02], db=adapter)
    adapter.close()
    code, out = run_on_tty(["--db", str(db_path), "--app", APP, "workoff"], job_log)
    assert code == 1, out
    assert "ran 40: 30 succeeded, 0 errored (will retry), 10 failed" in out
    logged = [line for line in out.split("\n") if " ERROR " in line]
    assert len(logged) == len(failing)
    for line in logged:
        shown = ANSI.sub("", line).rsplit("\r", 1)[-1]  # what stays on screen after a \r
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR ", shown), repr(line)
    assert "workoff" in out  # the bar was drawn
