"""What a detached supervisor is told: it runs in the operator's directory with the app's own
adapters, so an app's storage is never pinned into a rebuilt ``--db`` (which lost its options)."""

from __future__ import annotations

from pathlib import Path

import pytest

from litejobs import JobManager, SQLiteAdapter
from litejobs.appload import AppSource
from litejobs.cli.app import Settings
from litejobs.cli.run import work_argv


def test_the_apps_storage_is_not_pinned_and_paths_are_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lib").mkdir()
    cfg = Settings(paths=["lib"], verbose=1, log_format="json")
    cfg._source = AppSource("myapp.jobs:jobs", "--app")
    cfg._manager = JobManager(adapters={"sqlite": SQLiteAdapter("var/jobs.db")})
    assert work_argv(cfg, "email:2") == [
        "--app", "myapp.jobs:jobs",
        "--path", str(tmp_path / "lib"),
        "--path", str(tmp_path),
        "--log-format", "json",
        "-v",
        "work", "-n", "email:2",
    ]  # fmt: skip


def test_an_explicit_db_is_passed_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for db in (str(tmp_path / "jobs.db"), "postgresql://u@h/db"):
        cfg = Settings(db=db)  # the global option made it absolute already
        cfg._source = AppSource(None, "default")
        assert work_argv(cfg, None)[:2] == ["--db", db]
