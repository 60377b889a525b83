"""``litejobs init`` and ``litejobs new job`` in a temp project, as a newcomer runs them: the
generated test passes as generated, the generated job runs through ``workoff``, and nothing
is ever overwritten."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import Result, clean_env, litejobs


def run(project: Path, *argv: str) -> Result:
    return litejobs(*argv, cwd=project)


def test_init_new_job_generated_test_and_workoff(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "1"\n')
    first = run(tmp_path, "init")
    assert first.code == 0, first.err
    assert 'set [tool.litejobs] app = "jobs:jobs" in pyproject.toml' in first.out
    assert (tmp_path / "var").is_dir()

    added = run(tmp_path, "new", "job", "send_welcome_email")
    assert added.code == 0, added.err
    test_file = tmp_path / "tests" / "test_send_welcome_email_job.py"
    assert test_file.is_file()

    pytest_run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pytest_run.returncode == 0, pytest_run.stdout + pytest_run.stderr
    assert "1 passed" in pytest_run.stdout

    # The app is found through pyproject.toml, with no --app or --db.
    assert run(tmp_path, "enqueue", "jobs:send_welcome_email", "--args", "[7]").out == "1\n"
    worked = run(tmp_path, "workoff")
    assert worked.code == 0, worked.err
    assert worked.out == "ran 1: 1 succeeded, 0 errored (will retry), 0 failed\n"
    assert (tmp_path / "var" / "jobs.db").is_file()


def test_init_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "jobs.py").write_text("# mine\n")
    refused = run(tmp_path, "init")
    assert refused.code == 2
    assert refused.err.startswith("litejobs: error: ") and "never overwrites" in refused.err
    assert (tmp_path / "jobs.py").read_text() == "# mine\n"
    assert not (tmp_path / "pyproject.toml").exists()  # nothing at all was written

    (tmp_path / "fresh").mkdir()  # a package directory would hide fresh.py
    hidden = run(tmp_path, "init", "--module", "fresh")
    assert hidden.code == 2 and "is a directory" in hidden.err
    (tmp_path / "fresh").rmdir()

    (tmp_path / "pyproject.toml").write_text('[tool.litejobs]\napp = "other:jobs"\n')
    again = run(tmp_path, "init", "--module", "fresh")
    assert again.code == 2 and 'app = "other:jobs"' in again.err
    assert not (tmp_path / "fresh.py").exists()


def test_init_in_a_package_and_an_existing_table(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.litejobs]\n\n[[tool.litejobs.recurring]]\ncron = "0 3 * * *"\njob = "x:y"\n'
    )
    made = run(tmp_path, "init", "--module", "myapp.jobs")
    assert made.code == 0, made.err
    assert (tmp_path / "myapp" / "__init__.py").is_file()
    assert (tmp_path / "myapp" / "jobs.py").is_file()
    assert pyproject.read_text().startswith('[tool.litejobs]\napp = "myapp.jobs:jobs"\n')


def test_new_job_refuses_duplicates_bad_names_and_unknown_queues(tmp_path: Path) -> None:
    assert run(tmp_path, "new", "job", "ping").err.startswith("litejobs: error: no app found")
    assert run(tmp_path, "init").code == 0
    assert run(tmp_path, "new", "job", "ping").code == 0
    module = (tmp_path / "jobs.py").read_text()
    for argv, message in [
        (["ping"], "already defines 'ping'"),
        (["later"], "already defines 'later'"),
        (["2fast"], "not a Python identifier"),
        (["other", "--queue", "sms"], "unknown queue 'sms'"),
    ]:
        result = run(tmp_path, "new", "job", *argv)
        assert result.code == 2, argv
        assert message in result.err and len(result.err.splitlines()) == 1
    assert (tmp_path / "jobs.py").read_text() == module
