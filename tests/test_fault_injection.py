"""Storage faults: a lock held for seconds, a read-only file, a full disk.

Why: a queue that is correct only while storage behaves loses jobs on the first bad day. Each
test hurts a real process through the real file system and then checks the same three things:
the error was one clear line (exit 3 from the CLI, never a traceback), ``PRAGMA integrity_check``
is ``ok``, and no job that was reported as enqueued is lost (they all run once storage is back).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from litejobs import SQLiteAdapter, WorkerConfig, enqueue
from litejobs.cli import main as cli_main
from litejobs.errors import StorageError
from litejobs.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
NOBODY = 65534
FAST = WorkerConfig(sleep_delay=0.1, heartbeat_interval=0.5, stale_after=2)


def _spawn(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=ENV,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,  # type: ignore[arg-type]
    )


def _hold_lock(db: Path) -> subprocess.Popen[str]:
    """Another process takes the write lock (``BEGIN IMMEDIATE``) and keeps it until told."""
    SQLiteAdapter(db).list_jobs()  # the schema exists before the lock is taken
    code = (
        "import apsw, sys; c = apsw.Connection(sys.argv[1]); c.execute('BEGIN IMMEDIATE'); "
        "print('locked', flush=True); sys.stdin.readline(); c.execute('COMMIT')"
    )
    proc = _spawn("-c", code, str(db), stdin=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    holder.wait(timeout=10)


def _integrity(db: Path) -> str:
    conn = apsw.Connection(str(db))
    conn.set_busy_timeout(10_000)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])  # type: ignore[index]
    finally:
        conn.close()


def _tokens(log: Path) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def test_a_held_write_lock_makes_writers_wait_then_continue(
    db_path: Path, tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    log = tmp_path / "runs.log"
    adapter = SQLiteAdapter(db_path)
    for i in range(3):
        enqueue("tests.chaos.jobs:work", args=[f"a{i}", str(log)], db=adapter)
    holder = _hold_lock(db_path)
    holders.append(holder)
    # A worker and a producer (the CLI, in another process) start while the lock is held.
    worker = Worker(SQLiteAdapter(db_path), FAST, name="host/litejobs-worker.*.0")
    thread = threading.Thread(target=worker.run, kwargs={"workoff": True}, daemon=True)
    thread.start()
    cli = _spawn(
        "-m", "litejobs", "--db", str(db_path), "enqueue", "tests.chaos.jobs:work",
        "--args", json.dumps(["cli", str(log)]),
    )  # fmt: skip
    with pytest.raises(subprocess.TimeoutExpired):
        cli.wait(timeout=1.0)  # it waits for the lock ...
    assert thread.is_alive() and _tokens(log) == [], "nothing ran while the lock was held"
    _release(holder)
    out, err = cli.communicate(timeout=60)  # ... and then stores its job
    assert cli.returncode == 0, err
    thread.join(timeout=60)
    assert not thread.is_alive()
    Worker(SQLiteAdapter(db_path), FAST).run(workoff=True)  # the CLI's job, if it came late
    assert sorted(_tokens(log)) == ["a0", "a1", "a2", "cli"]
    assert int(out.strip()) > 0
    assert _integrity(db_path) == "ok"


def test_enqueue_during_a_held_lock_waits_before_storing(
    db_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    """The in-process ``enqueue`` waits for the lock (busy timeout) rather than failing."""
    lock_holder = _hold_lock(db_path)
    holders.append(lock_holder)
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(enqueue("tests.sample_jobs:record", args=[1], db=str(db_path)))
    )
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive() and not result, "enqueue must wait while another writer holds the lock"
    _release(lock_holder)
    thread.join(timeout=30)
    assert len(result) == 1 and SQLiteAdapter(db_path).require(result[0]).state == "ready"


def test_a_lock_held_past_the_busy_timeout_is_exit_3_and_stores_nothing(
    db_path: Path,
    holders: list[subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lock_holder = _hold_lock(db_path)
    holders.append(lock_holder)
    with pytest.raises(StorageError, match="locked by another process"):
        enqueue("tests.sample_jobs:record", args=[1], db=SQLiteAdapter(db_path, busy_timeout=0.2))
    # The CLI with a short busy timeout (30 s by default): one line, exit 3, no traceback.
    monkeypatch.setitem(SQLiteAdapter.__init__.__kwdefaults__, "busy_timeout", 0.2)
    code = cli_main(["--db", str(db_path), "enqueue", "tests.sample_jobs:record", "--args", "[1]"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert err.count("\n") == 1 and "locked" in err and "Traceback" not in err, err
    _release(lock_holder)
    monkeypatch.undo()
    assert SQLiteAdapter(db_path).list_jobs() == [], "nothing was stored"
    assert _integrity(db_path) == "ok"


def test_a_worker_survives_a_lock_held_past_its_busy_timeout(
    db_path: Path, tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    log = tmp_path / "runs.log"
    lock_holder = _hold_lock(db_path)
    holders.append(lock_holder)
    impatient = SQLiteAdapter(db_path, busy_timeout=0.1)
    stop = threading.Event()
    ran = threading.Event()
    worker = Worker(impatient, FAST, name="host/litejobs-worker.*.0", stop=stop)
    registered: list[str] = []

    def on_job(job: object, result: object) -> None:
        registered.extend(w.name for w in SQLiteAdapter(db_path).workers())
        ran.set()

    worker.on_job = on_job
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert not ran.wait(0.5) and thread.is_alive(), "the worker waits, it does not die"
    _release(lock_holder)
    enqueue("tests.chaos.jobs:work", args=["late", str(log)], db=str(db_path))
    assert ran.wait(30), "the worker went back to work once the lock was free"
    # It registered (retrying through the outage) before it claimed: without its heartbeat row,
    # any other worker's recovery would take the job it is running.
    assert registered == [worker.name]
    stop.set()
    thread.join(timeout=30)
    assert _tokens(log) == ["late"] and _integrity(db_path) == "ok"


# -- a read-only file ----------------------------------------------------------------------------
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="drops to another user to make permissions bite"
)


def _victim(*args: str, uid: int | None = NOBODY, fsize: int | None = None) -> list[str]:
    cmd = ["-m", "tests.chaos.victim"]
    if uid is not None:
        cmd += ["--uid", str(uid)]
    if fsize is not None:
        cmd += ["--fsize", str(fsize)]
    return [*cmd, *args]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user may write in (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="litejobs-fault-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@needs_root
def test_a_database_made_read_only_mid_run(shared_dir: Path) -> None:
    db, log = shared_dir / "jobs.db", shared_dir / "runs.log"
    SQLiteAdapter(db).list_jobs()
    os.chown(db, NOBODY, -1)
    reported: list[str] = []
    for n in range(3):
        done = subprocess.run(
            [sys.executable, *_victim("enqueue", str(db), json.dumps([f"r{n}", str(log)]))],
            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        reported.append(f"r{n}")
    # Mid-run the file becomes read-only to its user (the other user keeps its open files).
    for path in shared_dir.glob("jobs.db*"):
        path.chmod(0o444)
    refused = subprocess.run(
        [sys.executable, *_victim("enqueue", str(db), json.dumps(["refused", str(log)]))],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 3
    last = refused.stderr.strip().splitlines()[-1]
    assert "read-only" in last and "Traceback" not in refused.stderr
    # A worker started now waits (it cannot even register) instead of dying ...
    worker = _spawn(*_victim("work", str(db), "60"))
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            worker.wait(timeout=1.5)
        assert len(SQLiteAdapter(db).list_jobs(state="ready")) == 3, "nothing ran, nothing lost"
        # ... and once the file is writable again it runs everything (its connection reopened).
        for path in shared_dir.glob("jobs.db*"):
            path.chmod(0o644)
        out, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["succeeded"] == 3
    assert sorted(_tokens(log)) == reported
    assert _integrity(db) == "ok"


# -- a full disk ---------------------------------------------------------------------------------
def _fill_until_full(db: Path, log: Path, fsize: int) -> tuple[list[int], str]:
    """A producer whose files may not grow past ``fsize`` bytes enqueues until refused."""
    done = subprocess.run(
        [sys.executable, *_victim("fill", str(db), str(log), uid=None, fsize=fsize)],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])
    assert lines and lines[-1].startswith("error: "), lines[-3:]
    assert "Traceback" not in done.stderr
    return [int(x) for x in lines[:-1]], lines[-1]


def test_a_full_disk_is_a_clear_error_and_loses_nothing_reported(tmp_path: Path) -> None:
    db, log = tmp_path / "jobs.db", tmp_path / "runs.log"
    SQLiteAdapter(db).list_jobs()
    ids, error = _fill_until_full(db, log, fsize=400_000)
    assert len(ids) > 5, "some jobs fit before the disk filled"
    assert "disk I/O error" in error and "retry" in error, error
    assert _integrity(db) == "ok"
    stored = {r.id for r in SQLiteAdapter(db).list_jobs(limit=None)}
    assert set(ids) <= stored, "a job reported as enqueued is missing"
    stats = Worker(SQLiteAdapter(db), FAST).run(workoff=True)
    assert stats.succeeded == len(stored) and len(_tokens(log)) == len(stored)
    assert _integrity(db) == "ok"


@needs_root
def test_a_full_file_system_workers_wait_until_space_is_freed(tmp_path: Path) -> None:
    """A real ENOSPC: a 4 MB tmpfs filled by another file; producers are refused, workers that
    cannot record an outcome keep it and retry, and everything completes once space is back."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        db, log = mnt / "jobs.db", tmp_path / "runs.log"
        adapter = SQLiteAdapter(db)
        ids = [
            enqueue("tests.chaos.jobs:work", args=[f"f{i}", str(log)], db=adapter)
            for i in range(50)
        ]
        filler = mnt / "filler"
        with filler.open("wb") as f:  # take every free block
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        refused = 0
        for i in range(200):  # until the database's own free pages are used up too
            try:
                ids.append(enqueue("tests.chaos.jobs:work", args=[f"g{i}", str(log)], db=adapter))
            except StorageError as exc:
                assert "disk full" in str(exc), exc
                refused += 1
                break
        assert refused == 1, "the disk never filled"
        stop = threading.Event()
        worker = Worker(SQLiteAdapter(db), FAST, name="host/litejobs-worker.*.0", stop=stop)
        thread = threading.Thread(target=worker.run, kwargs={"workoff": True}, daemon=True)
        thread.start()
        thread.join(timeout=1.0)
        filler.unlink()  # space comes back
        thread.join(timeout=60)
        assert not thread.is_alive()
        Worker(SQLiteAdapter(db), FAST).run(workoff=True)
        assert len(set(_tokens(log))) == len(ids), "every job reported as enqueued ran"
        assert SQLiteAdapter(db).list_jobs() == []
        assert _integrity(db) == "ok"
        adapter.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
