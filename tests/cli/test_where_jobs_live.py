"""Where jobs are stored has one rule for the CLI and Python (``litejobs.location``): the app's
adapters decide; ``--db`` / ``LITEJOBS_DB`` fill in only what the app leaves open; a
disagreement is an error naming both, in every process, never a silent split."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from litejobs import JobManager, SQLiteAdapter
from litejobs.errors import ConfigurationError

from .conftest import EXE, clean_env

APP = '''
import logging
import os

from litejobs import JobManager, SQLiteAdapter

jobs = JobManager(adapters={{"sqlite": SQLiteAdapter({path}durability="full", busy_timeout=120)}})
#: The same storage, with a logger of its own for its workers (JobManager(logger=...)).
logged = JobManager(adapters=jobs.adapters, logger=logging.getLogger("shop.workers"))


@jobs.job(after_success=lambda ctx: logging.getLogger("shop.hooks").info("after job %s", ctx.id))
def greet(name):
    logging.getLogger("shop").info("hello %s", name)


@jobs.job(queue="email")
def hello(name):
    return name


def pragmas():
    """What the worker's own connection says (the app's adapter object, in a worker process)."""
    conn = jobs.adapter().connection
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    busy = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    with open(os.environ["PRAGMA_LOG"], "a") as f:
        f.write(f"{{sync}} {{busy}}\\n")
'''


def project(tmp_path: Path, path: str = '"var/jobs.db", ') -> Path:
    """A project directory with ``shop/jobs.py`` and an empty ``var/``."""
    root = tmp_path / "project"
    (root / "shop").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "jobs.py").write_text(APP.format(path=path))
    return root


def run(root: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), *argv],
        cwd=root, env=clean_env(XDG_DATA_HOME=str(root / "xdg"), **env),
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def python(root: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A "web" process: plain Python in the project directory."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=root, env=clean_env(XDG_DATA_HOME=str(root / "xdg"), PYTHONPATH=str(root), **env),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def rows(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT id, queue FROM background_jobs ORDER BY id"))


def test_enqueue_of_a_declared_job_stores_where_its_manager_does(tmp_path: Path) -> None:
    root = project(tmp_path)
    stored = python(root, "import litejobs; print(litejobs.enqueue('shop.jobs:hello', ['a']))")
    assert stored.returncode == 0, stored.stderr
    by_cli = run(root, "enqueue", "shop.jobs:hello", "--args", '["b"]')  # no --app either
    assert by_cli.returncode == 0, by_cli.stderr
    assert rows(root / "var" / "jobs.db") == [(1, "email"), (2, "email")]
    assert not (root / "xdg").exists()  # the user data dir's default database was not used

    other = python(root, "import litejobs; litejobs.enqueue('shop.jobs:hello', ['c'], db='x.db')")
    assert "ConfigurationError" in other.stderr and f"{root}/var/jobs.db" in other.stderr
    assert f"{root}/x.db" in other.stderr
    same = "import litejobs; print(litejobs.enqueue('shop.jobs:hello', ['d'], db='var/jobs.db'))"
    assert python(root, same).stdout.strip() == "3"
    assert not (root / "x.db").exists()


def test_litejobs_db_that_disagrees_with_the_app_fails_every_process(tmp_path: Path) -> None:
    root = project(tmp_path)
    elsewhere = {"LITEJOBS_DB": "/var/lib/app/jobs.db"}  # e.g. a unit's Environment=
    web = python(root, "import shop.jobs", **elsewhere)
    assert web.returncode == 1
    assert (
        "ConfigurationError: conflicting databases: --db/LITEJOBS_DB is /var/lib/app/jobs.db, "
        f"but the app's adapter 'sqlite' stores jobs in {root}/var/jobs.db" in web.stderr
    )
    worker = run(root, "--app", "shop.jobs:jobs", "workoff", **elsewhere)
    assert worker.returncode == 2 and len(worker.stderr.splitlines()) == 1, worker.stderr
    assert "/var/lib/app/jobs.db" in worker.stderr and f"{root}/var/jobs.db" in worker.stderr
    # The same file, spelled another way, is no conflict.
    for spelling in (f"{root}/var/../var/jobs.db", "var/jobs.db", f"sqlite://{root}/var/jobs.db"):
        same = run(root, "--app", "shop.jobs:jobs", "workoff", LITEJOBS_DB=spelling)
        assert same.returncode == 0, (spelling, same.stderr)


def test_same_place_in_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.setenv("LITEJOBS_DB", str(tmp_path / "link" / "jobs.db"))
    JobManager(adapters={"a": SQLiteAdapter("real/jobs.db")})  # the same file: fine
    JobManager()  # no storage of its own: LITEJOBS_DB
    with pytest.raises(ConfigurationError, match="conflicting databases"):
        JobManager(adapters={"a": SQLiteAdapter("other.db")})
    monkeypatch.setenv("LITEJOBS_DB", "mysql://x")
    with pytest.raises(ConfigurationError, match="unknown database URL scheme 'mysql'"):
        JobManager()


def test_db_fills_in_an_adapter_without_a_path_and_keeps_its_options(tmp_path: Path) -> None:
    """``SQLiteAdapter(durability="full")`` with no path takes ``--db``: its options stay
    (``--db`` used to replace it with a default adapter: synchronous 1, busy timeout 30 s)."""
    root = project(tmp_path, path="")
    db = tmp_path / "given.db"
    log = tmp_path / "pragmas"
    assert run(root, "--db", str(db), "enqueue", "shop.jobs:pragmas").returncode == 0
    worked = run(root, "--db", str(db), "--app", "shop.jobs:jobs", "workoff", PRAGMA_LOG=str(log))
    assert worked.returncode == 0, worked.stderr
    assert log.read_text().split() == ["2", "120000"]  # FULL, the app's 120 s
    assert json.loads(run(root, "--db", str(db), "list", "--json").stdout) == []
    assert not (root / "var" / "jobs.db").exists()


def test_db_is_litejobs_db_only_while_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``litejobs.cli.main`` run in a caller's process (tests, scripts) leaves its environment
    as it was: a later ``JobManager`` must not meet a stale ``LITEJOBS_DB``."""
    from litejobs.cli import main

    monkeypatch.delenv("LITEJOBS_DB", raising=False)
    argv = ["--db", str(tmp_path / "a.db"), "enqueue", "tests.cli.app_jobs:record", "--args", "[1]"]
    assert main(argv) == 0
    assert "LITEJOBS_DB" not in os.environ
    monkeypatch.setenv("LITEJOBS_DB", str(tmp_path / "mine.db"))
    assert main(["--db", str(tmp_path / "nope.db"), "list"]) == 3
    assert os.environ["LITEJOBS_DB"] == str(tmp_path / "mine.db")
    capsys.readouterr()
