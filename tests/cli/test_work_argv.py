"""What a detached supervisor is told: it runs from ``/``, so nothing may stay relative."""

from __future__ import annotations

from pathlib import Path

import pytest

from litejobs import JobManager, SQLiteAdapter
from litejobs.appload import AppSource
from litejobs.cli.app import Settings
from litejobs.cli.run import work_argv


def test_relative_paths_are_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lib").mkdir()
    cfg = Settings(paths=["lib"], verbose=1, log_format="json")
    cfg._source = AppSource("myapp.jobs:jobs", "--app")
    cfg._manager = JobManager(adapters={"sqlite": SQLiteAdapter("var/jobs.db")})
    assert work_argv(cfg, "email:2") == [
        "--db", str(tmp_path / "var" / "jobs.db"),
        "--app", "myapp.jobs:jobs",
        "--path", str(tmp_path / "lib"),
        "--path", str(tmp_path),
        "--log-format", "json",
        "-v",
        "work", "-n", "email:2",
    ]  # fmt: skip


def test_an_explicit_db_wins_and_urls_stay_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = Settings(db="jobs.db")
    cfg._source = AppSource(None, "default")
    assert work_argv(cfg, None)[:2] == ["--db", str(tmp_path / "jobs.db")]
    cfg = Settings(db="postgresql://u@h/db")
    cfg._source = AppSource(None, "default")
    assert work_argv(cfg, None)[:2] == ["--db", "postgresql://u@h/db"]
