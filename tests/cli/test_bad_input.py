"""Wrong invocations: each exits 2 (input) or 3 (storage) with exactly one line on stderr, no
traceback, and leaves the database exactly as it was."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from litejobs import SQLiteAdapter, enqueue

from .conftest import APP, EXE, ROOT, clean_env

J = "tests.cli.app_jobs:record"
BIG = "99999999999999999999"  # 20 digits: more than 2**63-1

# (id, argv after the global options, needs --app, expected exit code, part of the message)
CASES: list[tuple[str, list[str], bool, int, str]] = [
    ("malformed-args-json", ["enqueue", J, "--args", "[1,"], False, 2, "--args is not valid JSON"),
    ("args-not-array", ["enqueue", J, "--args", '{"a": 1}'], False, 2, "must be a JSON array"),
    ("args-scalar", ["enqueue", J, "--args", "42"], False, 2, "must be a JSON array"),
    (
        "args-too-deep",
        ["enqueue", J, "--args", "[" * 5000 + "]" * 5000],
        False,
        2,
        "nests too deep",
    ),
    ("malformed-kwargs", ["enqueue", J, "--kwargs", "{a: 1}"], False, 2, "not valid JSON"),
    ("kwargs-not-object", ["enqueue", J, "--kwargs", "[1]"], False, 2, "must be a JSON object"),
    ("unknown-module", ["enqueue", "nosuch.module:f"], False, 2, "cannot import module"),
    ("module-exits", ["enqueue", "tests.cli.app_exits:record"], False, 2, "raised SystemExit: 3"),
    ("unknown-function", ["enqueue", "tests.cli.app_jobs:nope"], False, 2, "no attribute 'nope'"),
    ("not-callable", ["enqueue", "tests.cli.app_jobs:NOT_CALLABLE"], False, 2, "not a function"),
    ("not-a-path", ["enqueue", "record"], False, 2, "not a 'module:function' path"),
    ("unknown-queue-with-app", ["enqueue", J, "--queue", "sms"], True, 2, "unknown queue 'sms'"),
    ("priority-0", ["enqueue", J, "--priority", "0"], False, 2, "priority must be from 1"),
    ("priority-101", ["enqueue", J, "--priority", "101"], False, 2, "priority must be from 1"),
    ("priority-not-int", ["enqueue", J, "--priority", "high"], False, 2, "--priority"),
    ("negative-wait", ["enqueue", J, "--wait", "-5"], False, 2, "wait must be zero or more"),
    ("wait-not-number", ["enqueue", J, "--wait", "soon"], False, 2, "--wait"),
    ("wait-infinite", ["enqueue", J, "--wait", "inf"], False, 2, "finite"),
    ("wait-until-not-iso", ["enqueue", J, "--wait-until", "tomorrow"], False, 2, "not an ISO 8601"),
    (
        "both-waits",
        ["enqueue", J, "--wait", "5", "--wait-until", "2030-01-01"],
        False,
        2,
        "not both",
    ),
    ("args-too-many", ["enqueue", J, "--args", "[1, 2, 3]"], False, 2, "too many positional"),
    ("args-missing", ["enqueue", J], False, 2, "missing a required argument: 'value'"),
    (
        "kwargs-unknown",
        ["enqueue", J, "--args", "[1]", "--kwargs", '{"nope": 1}'],
        False,
        2,
        "unexpected keyword argument 'nope'",
    ),
    ("job-is-a-scheduler", ["enqueue", "tests.cli.app_jobs:later"], False, 2, "is a Scheduler"),
    ("job-is-a-manager", ["enqueue", "tests.cli.app_jobs:jobs"], False, 2, "is a JobManager"),
    ("show-unknown-id", ["show", "999"], False, 2, "no job with id 999"),
    ("retry-unknown-id", ["retry", "999"], False, 2, "no job with id 999"),
    ("delete-unknown-id", ["delete", "999"], False, 2, "no job with id 999"),
    ("show-id-not-int", ["show", "abc"], False, 2, "ID"),
    ("retry-nothing", ["retry"], False, 2, "give a job ID or --failed"),
    ("list-unknown-state", ["list", "--state", "done"], False, 2, "unknown state 'done'"),
    ("unknown-command", ["frobnicate"], False, 2, "No such command"),
    ("unknown-option", ["list", "--colour"], False, 2, "No such option"),
    ("bad-worker-spec", ["workoff", "-n", "email:two"], False, 2, "bad worker count"),
    ("spec-unknown-queue", ["workoff", "-n", "sms:2"], True, 2, "unknown queue 'sms'"),
    ("worker-index-out-of-range", ["worker", "--index", "3"], True, 2, "out of range"),
    ("app-unknown-module", ["--app", "nosuch:jobs", "list"], False, 2, "cannot import app"),
    ("app-not-a-manager", ["--app", J, "list"], False, 2, "not a JobManager"),
    ("path-not-a-dir", ["--path", "/nonexistent-dir", "list"], False, 2, "not a directory"),
    ("bad-log-format", ["--log-format", "xml", "list"], False, 2, "--log-format"),
    # Numbers storage cannot hold (were OverflowError, exit 1 "this is a bug").
    ("max-attempts-huge", ["enqueue", J, "--max-attempts", BIG], False, 2, "<= 1,000,000"),
    ("max-attempts-over-limit", ["enqueue", J, "--max-attempts", "1000001"], False, 2, "<= 1,"),
    ("show-huge-id", ["show", BIG], False, 2, "job id must be a whole number"),
    ("delete-huge-id", ["delete", BIG], False, 2, "job id must be a whole number"),
    ("retry-huge-id", ["retry", BIG], False, 2, "job id must be a whole number"),
    ("list-huge-limit", ["list", "--limit", BIG], False, 2, "limit must be a whole number"),
    ("stop-timeout-nan", ["stop", "--timeout", "nan"], False, 2, "--timeout must be"),
    # Bytes that are not UTF-8 (argv hands them over as lone surrogates; were UnicodeEncodeError).
    ("enqueue-queue-not-utf8", ["enqueue", J, "--queue", "\udcff"], False, 2, "not valid UTF-8"),
    ("list-queue-not-utf8", ["list", "--queue", "\udcff"], False, 2, "not valid UTF-8"),
    ("clear-queue-not-utf8", ["clear", "--yes", "--queue", "x\udcff"], False, 2, "valid UTF-8"),
    ("spec-queue-not-utf8", ["workoff", "-n", "\udcff:1"], False, 2, "not valid UTF-8"),
    ("db-path-not-utf8", ["--db", "/tmp/\udcff.db", "list"], False, 2, "not valid UTF-8"),
    # --db values that are no database litejobs knows (mysql://x was taken for a file path).
    ("db-unknown-scheme", ["--db", "mysql://x/jobs", "list"], False, 2, "unknown database URL"),
    ("db-unknown-scheme-enqueue", ["--db", "redis://h", "enqueue", J], False, 2, "'redis'"),
    # No terminal to ask on: clear refuses instead of deleting everything.
    ("clear-without-yes", ["clear"], False, 2, "add --yes"),
    ("clear-queue-without-yes", ["clear", "--queue", "default"], False, 2, "add --yes"),
    # An explicit --db that is not where the app stores its jobs (was: silently overridden).
    (
        "db-conflicts-with-app",
        ["--app", "tests.cli.app_pinned:jobs", "list"],
        False,
        2,
        "conflicting databases",
    ),
    (
        "db-conflicts-enqueue",
        ["--app", "tests.cli.app_pinned:jobs", "enqueue", J],
        False,
        2,
        "stores jobs in",
    ),
    (
        "db-conflicts-start",
        ["--app", "tests.cli.app_pinned:jobs", "start"],
        False,
        2,
        "conflicting databases",
    ),
]

# (id, how the --db is broken, argv, expected exit code, part of the message)
STORAGE_CASES: list[tuple[str, str, list[str], str]] = [
    ("db-is-directory", "directory", ["list"], "is a directory"),
    ("db-is-text-file", "text", ["enqueue", J, "--args", "[1]"], "not a SQLite database"),
    ("db-in-missing-directory", "missing-dir", ["status"], "does not exist"),
    ("db-read-only-enqueue", "read-only", ["enqueue", J, "--args", "[1]"], "read-only"),
    ("db-read-only-delete", "read-only", ["delete", "1"], "read-only"),
    # A mistyped --db: commands that inspect or edit jobs never create a database.
    ("no-db-list", "absent", ["list"], "no database at"),
    ("no-db-show", "absent", ["show", "1"], "no database at"),
    ("no-db-status", "absent", ["status"], "no database at"),
    ("no-db-recurring", "absent", ["--app", "tests.cli.app_jobs:timed", "recurring"], "no datab"),
    ("no-db-retry", "absent", ["retry", "--failed"], "no database at"),
    ("no-db-delete", "absent", ["delete", "1"], "no database at"),
    ("no-db-clear", "absent", ["clear", "--yes"], "no database at"),
    ("no-db-missing-dir", "missing-dir", ["list"], "no database at"),
]


def dump(db: Path) -> list[str]:
    """Everything in the database, as SQL (WAL content included)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return list(conn.iterdump())


def snapshot(path: Path) -> object:
    """What must not change: the SQL dump of a database, else the bytes or the listing."""
    if path.is_dir():
        return sorted(p.name for p in path.iterdir())
    if not path.exists():
        return None
    if path.read_bytes()[:16] == b"SQLite format 3\x00":
        return dump(path)
    return path.read_bytes()


def run(argv: list[str], *, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), "--db", str(db), *argv],
        cwd=ROOT,
        env=clean_env(LITEJOBS_TEST_LOG=os.devnull),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def assert_clean_failure(proc: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    lines = proc.stderr.splitlines()
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("litejobs: error: "), lines
    assert message in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""


@pytest.fixture
def seeded_db(db_path: Path) -> Path:
    """A database with one job in it, so "unchanged" means something."""
    adapter = SQLiteAdapter(db_path)
    enqueue(J, [1], db=adapter)
    adapter.close()
    return db_path


def test_there_are_at_least_twenty_cases() -> None:
    assert len(CASES) + len(STORAGE_CASES) >= 20


@pytest.mark.parametrize(("argv", "app", "code", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input(seeded_db: Path, argv: list[str], app: bool, code: int, message: str) -> None:
    before = snapshot(seeded_db)
    proc = run(["--app", APP, *argv] if app else argv, db=seeded_db)
    assert_clean_failure(proc, code, message)
    assert snapshot(seeded_db) == before


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable, even for root (who ignores permission bits)."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o600)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a file read-only")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i not supported here: {made.stderr!r}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.parametrize(("kind", "argv", "message"), [c[1:] for c in STORAGE_CASES],
                         ids=[c[0] for c in STORAGE_CASES])  # fmt: skip
def test_storage_unavailable(
    tmp_path: Path, seeded_db: Path, kind: str, argv: list[str], message: str
) -> None:
    with contextlib.ExitStack() as stack:
        if kind == "directory":
            db = tmp_path / "a-directory"
            db.mkdir()
        elif kind == "text":
            db = tmp_path / "notes.txt"
            db.write_text("these are not the jobs you are looking for\n")
        elif kind == "missing-dir":
            db = tmp_path / "missing" / "jobs.db"
        elif kind == "absent":
            db = tmp_path / "jbos.db"  # a typo next to the real one
        else:
            db = seeded_db
            stack.enter_context(read_only(db))
        before = snapshot(db)
        proc = run(argv, db=db)
        assert_clean_failure(proc, 3, message)
        assert snapshot(db) == before
    if kind == "missing-dir":
        assert not db.parent.exists()
    if kind == "absent":
        assert not db.exists()


# -- the same bounds in the Python API: typed errors, nothing stored ------------------------------
API_CASES: list[tuple[str, dict[str, object], str]] = [
    ("max-attempts-huge", {"max_attempts": 10**20}, "<= 1,000,000"),
    ("queue-not-utf8", {"queue": "\udcff"}, "not valid UTF-8"),
    ("unique-key-not-utf8", {"unique_key": "user:\udcff"}, "not valid UTF-8"),
    # Stored on SQLite, refused by PostgreSQL text: refused on both, so jobs move unchanged.
    ("queue-with-nul", {"queue": "a\x00b"}, "contains a NUL character"),
    ("unique-key-with-nul", {"unique_key": "k\x00"}, "contains a NUL character"),
]


@pytest.mark.parametrize(("options", "message"), [c[1:] for c in API_CASES],
                         ids=[c[0] for c in API_CASES])  # fmt: skip
def test_api_bounds_are_typed_errors(
    seeded_db: Path, options: dict[str, object], message: str
) -> None:
    from litejobs import JobManager
    from litejobs.errors import ValidationError

    before = snapshot(seeded_db)
    adapter = SQLiteAdapter(seeded_db)
    later = JobManager(adapters={"sqlite": adapter}).create_scheduler()
    try:
        with pytest.raises(ValidationError, match=message):
            later(J, [1], **options)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match=message):
            enqueue(J, [1], db=adapter, **options)  # type: ignore[arg-type]
    finally:
        adapter.close()
    assert snapshot(seeded_db) == before


def test_missing_psycopg_names_the_install_command(tmp_path: Path) -> None:
    """Without psycopg (shadowed here by a package that cannot be imported, as in an install
    without the extra), a PostgreSQL URL is one line naming ``pip install 'litejobs[postgres]'``
    (it was "unexpected ModuleNotFoundError ... this is a bug", exit 1)."""
    shadow = tmp_path / "shadow" / "psycopg"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'psycopg'\", name='psycopg')\n"
    )
    env = clean_env(PYTHONPATH=str(shadow.parent))
    url = "postgresql://jobs@db.internal/app"
    for argv in (["--db", url, "list"], ["--db", url, "enqueue", J], ["--db", url, "workoff"],
                 ["--app", "tests.cli.pg_app:jobs", "list"]):  # fmt: skip
        proc = subprocess.run(
            [str(EXE), *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert_clean_failure(proc, 2, "pip install 'litejobs[postgres]'")


# -- one bad [[tool.litejobs.recurring]] entry: commands that run workers refuse, naming it ------
BAD_RECURRING = """
[[tool.litejobs.recurring]]
job = "tests.cli.app_jobs:record"
args = ["hourly"]
cron = "0 * * * *"

[[tool.litejobs.recurring]]
job = "tests.cli.app_jobs:record"
args = ["never"]
name = "broken"
cron = "61 * * * *"
"""
RUNNERS = [["work"], ["workoff"], ["worker"], ["start", "-n", "1"], ["restart"]]


@pytest.mark.parametrize("argv", RUNNERS, ids=[a[0] for a in RUNNERS])
def test_runners_refuse_a_bad_recurring_entry(
    tmp_path: Path, seeded_db: Path, argv: list[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(BAD_RECURRING)
    before = snapshot(seeded_db)
    state = ["--state-dir", str(tmp_path / "state")] if argv[0] in ("start", "restart") else []
    proc = subprocess.run(
        [str(EXE), "--db", str(seeded_db), "--path", str(ROOT), *argv, *state],
        cwd=project, env=clean_env(LITEJOBS_TEST_LOG=os.devnull),
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert_clean_failure(proc, 2, "recurring entry 2: invalid cron expression '61 * * * *'")
    assert snapshot(seeded_db) == before
    assert not (tmp_path / "state").exists() or not list((tmp_path / "state").glob("*.pid"))
