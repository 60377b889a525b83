"""The built-in command jobs (``litejobs.builtins``): real programs, real signals, real kills."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from litejobs import FakeClock, JobManager, SQLiteAdapter, WorkerConfig, builtins
from litejobs.adapters.base import JobRecord

WAIT = 15.0  # upper bound for anything we wait on; never reached when things work


@pytest.fixture
def jobs(db_path: Path, clock: FakeClock) -> Iterator[JobManager]:
    manager = JobManager(adapters={"default": SQLiteAdapter(db_path, clock=clock)})
    yield manager
    manager.adapter().close()


def kept(jobs: JobManager, job_id: int) -> JobRecord:
    record = jobs.adapter().get(job_id)
    assert record is not None
    return record


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie awaiting its reaper counts as exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return True
    return fields[0] in ("Z", "X")


def wait_for(predicate: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- called directly ------------------------------------------------------------------------------
def test_run_and_shell_return_zero_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    assert builtins.run("/bin/sh", "-c", f"echo argv > {target}") == 0
    assert target.read_text() == "argv\n"
    assert builtins.run(["/bin/sh", "-c", f"echo list >> {target}"]) == 0
    assert builtins.shell(f"echo piped | tr a-z A-Z >> {target}") == 0
    assert target.read_text() == "argv\nlist\nPIPED\n"


def test_failure_reports_status_and_both_tails() -> None:
    with pytest.raises(builtins.CommandFailed) as caught:
        builtins.shell("echo to-stdout; echo to-stderr >&2; exit 3")
    error = caught.value
    assert error.returncode == 3
    text = str(error)
    assert (
        text.splitlines()[0]
        == "/bin/sh -c 'echo to-stdout; echo to-stderr >&2; exit 3': exit status 3"
    )
    assert "to-stderr" in error.stderr and "to-stdout" in error.stdout
    assert text.index("--- stderr") < text.index("--- stdout")  # stderr first: usually the reason


def test_only_the_tail_of_a_huge_output_is_kept() -> None:
    with pytest.raises(builtins.CommandFailed) as caught:
        builtins.shell("head -c 3000000 /dev/zero | tr '\\0' x; echo; echo THE-END; exit 1")
    out = caught.value.stdout
    assert out.rstrip().endswith("THE-END")
    assert len(out) == builtins.TAIL_CHARS


def test_killed_by_signal_is_named() -> None:
    with pytest.raises(builtins.CommandFailed, match="killed by SIGTERM"):
        builtins.shell("kill -TERM $$")


def test_missing_program_is_an_ordinary_error() -> None:
    with pytest.raises(FileNotFoundError):
        builtins.run("/nonexistent/program")


@pytest.mark.parametrize(
    "argv",
    [(), ([],), ("ls", 3), ([1, 2],), ({"a": 1},)],
    ids=["none", "empty", "int", "ints", "d"],
)
def test_bad_argv_is_rejected_before_anything_runs(argv: tuple[object, ...]) -> None:
    with pytest.raises(TypeError, match="program and its arguments as strings"):
        builtins.run(*argv)  # type: ignore[arg-type]


def test_bad_shell_command_and_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        builtins.shell("  ")
    with pytest.raises(TypeError, match="env must be"):
        builtins.shell("true", env={"A": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="cwd must be"):
        builtins.shell("true", cwd=3)  # type: ignore[arg-type]


def test_env_and_cwd_reach_the_child(tmp_path: Path) -> None:
    builtins.shell(
        'test "$LJ_EXTRA" = yes && pwd > here', cwd=str(tmp_path), env={"LJ_EXTRA": "yes"}
    )
    assert (tmp_path / "here").read_text().strip() == str(tmp_path)


# -- the environment a frozen litejobs passes on ---------------------------------------------------
FROZEN_ENV = {
    "PATH": "/usr/bin:/bin",
    "LD_LIBRARY_PATH": "/tmp/_MEIabc123:/opt/lib",
    "LD_LIBRARY_PATH_ORIG": "/opt/lib",
    "_PYI_APPLICATION_HOME_DIR": "/tmp/_MEIabc123",
    "_PYI_PARENT_PROCESS_LEVEL": "1",
    "_MEIPASS2": "/tmp/_MEIabc123",
    "PYINSTALLER_RESET_ENVIRONMENT": "1",
}


def test_frozen_environment_is_cleaned_and_ld_library_path_restored() -> None:
    env = builtins.clean_env(FROZEN_ENV, {"EXTRA": "1"}, frozen=True)
    assert env == {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": "/opt/lib", "EXTRA": "1"}


def test_frozen_environment_without_an_original_ld_library_path_drops_it() -> None:
    base = {k: v for k, v in FROZEN_ENV.items() if k != "LD_LIBRARY_PATH_ORIG"}
    assert builtins.clean_env(base, frozen=True) == {"PATH": "/usr/bin:/bin"}


def test_cleaning_twice_keeps_the_operators_own_ld_library_path() -> None:
    once = builtins.clean_env(FROZEN_ENV, frozen=True)
    assert (
        builtins.clean_env(once, frozen=True)
        == once
        == {
            "PATH": "/usr/bin:/bin",
            "LD_LIBRARY_PATH": "/opt/lib",
        }
    )


def test_the_binarys_start_up_cleans_what_a_jobs_own_subprocesses_inherit(tmp_path: Path) -> None:
    """What packaging/entry.py does first: afterwards ``subprocess`` and ``os.system`` in a
    user's job see the operator's environment, not the bundle's (the binary smoke test checks
    the real bundle)."""
    code = (
        "import os, subprocess, sys\n"
        "from litejobs.bundle import scrub_process_environment\n"
        "scrub_process_environment()\n"
        "subprocess.run(['env'], stdout=open(sys.argv[1], 'w'), check=True)\n"
        "os.system('env > ' + sys.argv[2])\n"
    )
    seen = [tmp_path / "subprocess.env", tmp_path / "system.env"]
    environ = {**FROZEN_ENV, "PATH": os.environ["PATH"]}
    subprocess.run([sys.executable, "-c", code, *map(str, seen)], env=environ, check=True)
    for path in seen:
        lines = set(path.read_text().splitlines())
        assert "LD_LIBRARY_PATH=/opt/lib" in lines
        assert "PYINSTALLER_RESET_ENVIRONMENT=1" in lines  # litejobs' own, for its children
        assert not [
            line for line in lines if line.startswith(("_PYI_", "_MEIPASS", "LD_LIBRARY_PATH_ORIG"))
        ]


def test_installed_litejobs_passes_the_environment_through() -> None:
    assert builtins.clean_env(FROZEN_ENV, frozen=False) == FROZEN_ENV
    assert not getattr(sys, "frozen", False)
    assert builtins.clean_env() == dict(os.environ)


# -- through a worker -----------------------------------------------------------------------------
def test_shell_job_runs_in_a_worker(jobs: JobManager, tmp_path: Path) -> None:
    target = tmp_path / "done.txt"
    job_id = jobs.create_scheduler()(builtins.shell, [f"echo ran > {target}"])
    stats = jobs.workoff()
    assert (stats.ran, stats.succeeded) == (1, 1)
    assert target.read_text() == "ran\n"
    assert jobs.adapter().get(job_id) is None  # succeeded and deleted, as configured by default


def test_failed_command_lands_in_last_error(jobs: JobManager) -> None:
    job_id = jobs.create_scheduler()(
        builtins.run, ["/bin/sh", "-c", "echo 'disk full' >&2; exit 28"]
    )
    stats = jobs.workoff()
    assert (stats.ran, stats.errored) == (1, 1)
    record = kept(jobs, job_id)
    assert record.last_error is not None
    assert record.last_error.startswith(
        "CommandFailed: /bin/sh -c 'echo '\"'\"'disk full'\"'\"' >&2; exit 28': exit status 28"
    )
    assert "disk full" in record.last_error
    assert record.state == "scheduled"  # retried like any failed job


def test_hard_timeout_kills_the_whole_process_group(jobs: JobManager, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    job_id = jobs.create_scheduler()(builtins.shell, [f"sleep 60 & echo $$ $! > {pids}; wait"])
    stats = jobs.workoff(WorkerConfig(max_runtime=0.5))
    assert (stats.ran, stats.errored) == (1, 1)
    record = kept(jobs, job_id)
    assert record.last_error is not None
    assert record.last_error.startswith("JobTimeoutError: timed out after 0.5 s")
    shell_pid, sleeper_pid = map(int, pids.read_text().split())
    wait_for(lambda: gone(shell_pid) and gone(sleeper_pid), "the shell and its background child")


#: Two descendants that leave the command's session and ignore SIGTERM: one started with
#: ``setsid`` (its parent waits for it), one a daemon's double fork (its parent is gone at once).
ESCAPERS = (
    "setsid sh -c 'trap \"\" TERM; echo $$ >> {pids}; exec sleep 300' & "
    "(setsid sh -c 'trap \"\" TERM; echo $$ >> {pids}; exec sleep 300' &); "
    "wait"
)


def _pids(path: Path, count: int) -> list[int]:
    wait_for(lambda: path.exists() and len(path.read_text().split()) == count, "the children")
    return [int(pid) for pid in path.read_text().split()]


def _kill_leftovers(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_hard_timeout_kills_descendants_that_left_the_session(
    jobs: JobManager, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    jobs.create_scheduler()(builtins.shell, [ESCAPERS.format(pids=pids)])
    started: list[int] = []
    try:
        stats = jobs.workoff(WorkerConfig(max_runtime=1))
        assert stats.errored == 1
        started = _pids(pids, 2)
        assert all(os.getsid(pid) == pid for pid in started if not gone(pid))  # own sessions
        wait_for(lambda: all(gone(pid) for pid in started), "the escaped descendants to die")
    finally:
        _kill_leftovers(started or [int(p) for p in pids.read_text().split()])


def test_a_command_ignoring_sigterm_is_killed_before_the_watchdog_gives_up(
    tmp_path: Path,
) -> None:
    """max_runtime 1 s: the in-band timeout fires at 1 s, the command ignores SIGTERM, SIGKILL
    follows 2 s later; the worker's watchdog must not abandon the job (and exit, leaving the
    command behind) before that."""
    from tests.runtime.conftest import FAST, Pool

    pids = tmp_path / "pids"
    db = SQLiteAdapter(tmp_path / "jobs.db")
    command = f"trap '' TERM; sleep 300 & echo $! > {pids}; wait"
    job_id = JobManager({"default": db}).create_scheduler()(builtins.shell, [command])
    pool = Pool(tmp_path / "jobs.db", tmp_path / "pool.log", {**FAST, "max_runtime": 1})
    sleeper = 0
    try:
        wait_for(lambda: pids.exists() and pids.read_text().strip(), "the command")
        sleeper = int(pids.read_text())
        wait_for(lambda: db.require(job_id).last_error is not None, "the timeout to be recorded")
        # In-band, not "(the job did not stop; worker restarted)":
        assert db.require(job_id).last_error == "JobTimeoutError: timed out after 1 s"
        wait_for(lambda: gone(sleeper), "the command to be killed")
        assert "replacing it" not in pool.log_text()  # the worker was not abandoned
    finally:
        os.killpg(pool.pid, signal.SIGKILL)
        pool.process.wait(WAIT)
        if sleeper:
            _kill_leftovers([sleeper])
        db.close()


def test_command_dies_with_a_worker_killed_by_sigkill(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from litejobs.builtins import shell; shell(sys.argv[1])",
            f"echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile} && exec sleep 60",
        ]
    )
    try:
        wait_for(pidfile.exists, "the command to start")
        child = int(pidfile.read_text())
        assert not gone(child)
        worker.send_signal(signal.SIGKILL)
        worker.wait(WAIT)
        wait_for(lambda: gone(child), "the orphaned command to be killed")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(WAIT)


# -- the command line: enqueue --shell, doctor ---------------------------------------------------
EXE = Path(sys.executable).with_name("litejobs")


def litejobs(db_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LITEJOBS_")}
    return subprocess.run(
        [str(EXE), "--db", str(db_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, **env},
        stdin=subprocess.DEVNULL,
        cwd="/",
    )


def test_cli_enqueue_shell_then_workoff(db_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "cli.txt"
    enqueued = litejobs(db_path, "enqueue", "--shell", f"echo from-cli | tr a-z A-Z > {target}")
    assert enqueued.returncode == 0, enqueued.stderr
    shown = litejobs(db_path, "show", enqueued.stdout.strip(), "--json")
    assert '"litejobs.builtins:shell"' in shown.stdout
    done = litejobs(db_path, "-q", "workoff")
    assert (done.returncode, target.read_text()) == (0, "FROM-CLI\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shell", " "], "--shell needs a command"),
        ([], "missing MODULE:FUNC to run (or --shell CMD)"),
        (["tests.sample_jobs:record", "--shell", "ls"], "give either MODULE:FUNC"),
        (["--shell", "ls", "--args", "[1]"], "give either MODULE:FUNC"),
    ],
)
def test_cli_enqueue_shell_bad_input(db_path: Path, args: list[str], message: str) -> None:
    result = litejobs(db_path, "enqueue", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("litejobs: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_doctor_reports_versions_and_glibc(db_path: Path) -> None:
    import apsw

    result = litejobs(db_path, "doctor", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["frozen"] is False
    assert data["sqlite"].startswith(apsw.sqlite_lib_version())
    assert data["python"].endswith(".".join(map(str, sys.version_info[:3])))
    assert data["glibc_available"] == os.confstr("CS_GNU_LIBC_VERSION").split()[-1]
    required = tuple(map(int, data["glibc_required"].split(".")))
    assert (2, 2) <= required <= tuple(map(int, data["glibc_available"].split(".")))
    for flags in (["--version", "--verbose"], ["-v", "-V"], ["--db", str(db_path), "-V", "-vv"]):
        verbose = subprocess.run([str(EXE), *flags], capture_output=True, text=True, timeout=60)
        assert verbose.returncode == 0 and "glibc required:" in verbose.stdout


def test_glibc_requirement_is_the_highest_symbol_version(tmp_path: Path) -> None:
    from litejobs import doctor

    old, new, text = tmp_path / "old.so", tmp_path / "new.so", tmp_path / "notes.txt"
    old.write_bytes(b"\x7fELF" + b"\0" * 100 + b"GLIBC_2.2.5\0GLIBC_2.17\0")
    new.write_bytes(b"\x7fELF" + b"x" * (1 << 20) + b"GLIBC_2.9\0GLIBC_2.34\0GLIBC_PRIVATE\0")
    text.write_bytes(b"GLIBC_2.99\0")  # not an ELF file: ignored
    assert doctor.glibc_required([old, new, text]) == ("2.34", "new.so")
    assert doctor.glibc_required([old]) == ("2.17", "old.so")
    assert doctor.glibc_required([text, tmp_path / "missing"]) == (None, None)


def test_litejobs_path_makes_user_modules_importable(db_path: Path, tmp_path: Path) -> None:
    mods, out = tmp_path / "mods", tmp_path / "out.txt"
    mods.mkdir()
    (mods / "userjob_h.py").write_text(
        "def write(path):\n    open(path, 'w').write('from LITEJOBS_PATH')\n"
    )
    search = f"{tmp_path / 'empty-but-missing'}{os.pathsep}{mods}"
    bad = litejobs(db_path, "enqueue", "userjob_h:write", LITEJOBS_PATH=search)
    assert bad.returncode == 2 and "$LITEJOBS_PATH entry" in bad.stderr
    search = f"{tmp_path}{os.pathsep}{mods}"
    assert (
        litejobs(
            db_path,
            "enqueue",
            "userjob_h:write",
            "--args",
            json.dumps([str(out)]),
            LITEJOBS_PATH=search,
        ).returncode
        == 0
    )
    assert litejobs(db_path, "-q", "workoff", LITEJOBS_PATH=search).returncode == 0
    assert out.read_text() == "from LITEJOBS_PATH"
