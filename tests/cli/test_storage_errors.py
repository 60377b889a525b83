"""Permanent storage errors end a ``workoff`` (exit 3, one line); transient ones are waited out.

Why: ``workoff`` runs from cron. On a corrupt, read-only or too-new database it used to retry
forever, so runs piled up and a kill printed "ran 0" with exit 0. Waiting helps a locked
database or a restarting server, never these: the operator must act, and must be told.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from litejobs import SQLiteAdapter
from tests.cli.conftest import EXE, ROOT, clean_env
from tests.conftest import PG_URL

NOBODY = 65534
BOUND = 30.0  # seconds: far longer than the answer takes, far shorter than "forever"


def litejobs(*args: str, db: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), "--db", str(db), *args],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=BOUND,
        stdin=subprocess.DEVNULL,
    )


def seeded(path: Path) -> Path:
    done = litejobs("enqueue", "tests.cli.app_jobs:record", "--args", "[1]", db=path)
    assert done.returncode == 0, done.stderr
    return path


def assert_permanent(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert done.returncode == 3, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("litejobs: error: ") and words in lines[-1], lines
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["in-process", "pool"])
def test_workoff_on_a_corrupt_database_exits_3(tmp_path: Path, workers: list[str]) -> None:
    db = seeded(tmp_path / "jobs.db")
    conn = apsw.Connection(str(db))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])  # type: ignore[index]
    conn.close()
    with db.open("r+b") as f:  # keep the header, wreck every page after the first
        f.seek(page_size)
        f.write(b"\xff" * (db.stat().st_size - page_size))
    started = time.monotonic()
    done = litejobs("workoff", *workers, db=db)
    assert_permanent(done, "corrupt")
    assert time.monotonic() - started < BOUND


def test_workoff_on_a_file_that_is_no_database_exits_3(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    db.write_bytes(b"this is not a database\n" * 100)
    assert_permanent(litejobs("workoff", db=db), "not a SQLite database")


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A directory holding a seeded database, mounted read-only (even root cannot write)."""
    source, mounted = tmp_path / "src", tmp_path / "ro"
    source.mkdir()
    mounted.mkdir()
    seeded(source / "jobs.db")
    bind = subprocess.run(["mount", "--bind", str(source), str(mounted)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mounted)], check=True)
        yield mounted / "jobs.db"
    finally:
        subprocess.run(["umount", str(mounted)], check=False)


def test_workoff_on_a_read_only_database_exits_3(read_only_mount: Path) -> None:
    before = read_only_mount.read_bytes()
    assert_permanent(litejobs("workoff", db=read_only_mount), "read-only")
    assert read_only_mount.read_bytes() == before


def test_a_database_on_a_read_only_mount_can_be_inspected(read_only_mount: Path) -> None:
    """An operator looks at a copy on read-only media: list, show and status work."""
    listed = litejobs("list", "--json", db=read_only_mount)
    assert listed.returncode == 0, listed.stderr
    [job] = json.loads(listed.stdout)
    shown = litejobs("show", str(job["id"]), db=read_only_mount)
    assert shown.returncode == 0 and "record" in shown.stdout, shown.stderr
    status = litejobs("status", "--json", db=read_only_mount)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["totals"]["ready"] == 1


def test_a_database_from_a_newer_litejobs_is_refused_by_every_command(tmp_path: Path) -> None:
    db = seeded(tmp_path / "jobs.db")
    conn = apsw.Connection(str(db))
    conn.execute("PRAGMA user_version=99")
    conn.close()
    enqueue = ["enqueue", "tests.cli.app_jobs:record", "--args", "[1]"]
    for command in (["list"], ["workoff"], enqueue):
        assert_permanent(litejobs(*command, db=db), "newer litejobs (schema version 99")
    with pytest.raises(Exception, match="newer litejobs"):
        SQLiteAdapter(db).list_jobs()


@pytest.mark.skipif(not PG_URL, reason="no PostgreSQL server")
def test_workoff_on_a_read_only_postgres_session_exits_3() -> None:
    """A hot standby, or a session forced read-only: waiting will not make it writable."""
    assert PG_URL
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-c%20default_transaction_read_only%3Don"
    started = time.monotonic()
    assert_permanent(litejobs("workoff", db=url), "read-only")
    assert time.monotonic() - started < BOUND


@pytest.mark.skipif(not PG_URL, reason="no PostgreSQL server")
def test_a_postgres_schema_from_a_newer_litejobs_is_refused_by_every_command() -> None:
    """The schema's version is checked before anything reads or writes: a litejobs that does
    not know the tables must neither use them nor "migrate" them back."""
    import uuid

    from litejobs.adapters.postgres import SCHEMA_VERSION, PostgresAdapter

    assert PG_URL
    schema = f"newer_{uuid.uuid4().hex[:10]}"
    owner = PostgresAdapter(PG_URL, schema=schema)
    try:
        owner.counts()  # created at this litejobs' version
        owner.connection.execute(f'UPDATE "{schema}".litejobs_meta SET version = 99')
        env = clean_env(LITEJOBS_TEST_PG_URL=PG_URL, LITEJOBS_TEST_PG_SCHEMA=schema)
        enqueue = ["enqueue", "tests.cli.app_jobs:record", "--args", "[1]"]
        for command in (["list"], ["status"], ["workoff"], enqueue):
            done = subprocess.run(
                [str(EXE), "--app", "tests.cli.pg_app:jobs", *command],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=BOUND,
            )  # fmt: skip
            assert_permanent(
                done,
                f"newer litejobs (schema version 99; this litejobs knows up to {SCHEMA_VERSION})",
            )
            if command != ["workoff"]:  # workoff also logs it, as its workers stop
                assert len(done.stderr.splitlines()) == 1
        with pytest.raises(Exception, match="newer litejobs"):
            PostgresAdapter(PG_URL, schema=schema).list_jobs()
        version = owner.connection.execute(f'SELECT version FROM "{schema}".litejobs_meta')
        assert version.fetchall() == [(99,)]
    finally:
        owner.connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        owner.close()
