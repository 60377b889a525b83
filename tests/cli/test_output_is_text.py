"""Job data is printed as text, never interpreted: markup-looking args, queue names, errors and
worker names print literally in ``list``, ``show`` and ``status`` (they used to exit 1 with a
MarkupError, or turn ``[b]x[/b]`` bold); control characters are shown escaped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from litejobs import SQLiteAdapter, enqueue

from .conftest import EXE, ROOT, clean_env

J = "tests.cli.app_jobs:record"
BOOM = "tests.cli.app_jobs:boom"


def seed(db_path: Path) -> None:
    adapter = SQLiteAdapter(db_path)
    try:
        # Never run (no worker serves q[/x]): stored as given, past the signature check.
        enqueue(J, ["a[/b]", "[b]bold[/b]", ":smile:"], queue="q[/x]", db=adapter, check=False)
        enqueue(BOOM, ["[red]red[/red] \x1b[2Jgone"], queue="errors", db=adapter)
    finally:
        adapter.close()


def test_list_and_show_print_markup_and_controls_literally(cli, db_path: Path) -> None:
    seed(db_path)
    worked = cli("workoff", "-n", "errors:1")  # the default manager: 24 attempts, so it retries
    assert worked.code == 1, worked.err

    listed = cli("list")
    assert listed.code == 0, listed.err
    assert 'record("a[/b]", "[b]bold[/b]", ":smile:")' in listed.out
    assert "q[/x]" in listed.out
    assert "ValueError: [red]red[/red] \\x1b[2J" in listed.out  # cut at the column's width
    assert "\x1b" not in listed.out

    shown = cli("show", "1")
    assert shown.code == 0, shown.err
    assert '["a[/b]", "[b]bold[/b]", ":smile:"]' in shown.out and "q[/x]" in shown.out
    failed = cli("show", "2")
    assert failed.code == 0, failed.err
    assert "ValueError: [red]red[/red] \\x1b[2Jgone" in failed.out
    assert "\x1b" not in failed.out
    assert json.loads(cli("show", "2", "--json").out)["last_error"].startswith(
        "ValueError: [red]red[/red] \x1b[2Jgone"
    )


def test_status_prints_queue_and_worker_names_literally(db_path: Path, tmp_path: Path) -> None:
    seed(db_path)
    env = clean_env(LITEJOBS_TEST_LOG=os.devnull)
    proc = subprocess.Popen(
        [str(EXE), "--db", str(db_path), "work", "-n", "w[/b]:1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            status = subprocess.run(
                [str(EXE), "--db", str(db_path), "status"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            if "litejobs-worker.w[/b].0" in status.stdout:
                break
            time.sleep(0.1)
        assert status is not None and status.returncode == 0, status and status.stderr
        assert "litejobs-worker.w[/b].0" in status.stdout, (status.stdout, proc.poll())
        assert "queues w[/b]" in status.stdout
        assert any(line.startswith("q[/x] ") for line in status.stdout.splitlines())
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err


def test_show_prints_each_line_of_the_error_whole_however_narrow_the_terminal(
    cli, db_path: Path
) -> None:
    """A traceback's lines (paths, long messages) are printed as they are, never broken in two
    by the console: the terminal wraps them for the eye, and a copy keeps them whole."""
    message = "path/" * 30 + "end"
    adapter = SQLiteAdapter(db_path)
    try:
        job_id = enqueue(BOOM, [message], db=adapter)
    finally:
        adapter.close()
    assert cli("workoff").code == 1
    shown = subprocess.run(
        [str(EXE), "--db", str(db_path), "show", str(job_id)],
        cwd=ROOT, env=clean_env(COLUMNS="60"), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert f"ValueError: {message}" in lines
    assert any(line.startswith('  File "') and line.endswith(", in boom") for line in lines)
