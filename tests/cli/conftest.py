"""Running the real ``litejobs`` executable against a temp database.

Every CLI test goes through :func:`run`: a subprocess of ``.venv/bin/litejobs`` with a clean
environment (no inherited ``LITEJOBS_*``), the repo root as working directory (so
``tests.cli.app_jobs`` imports), and a bounded timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).with_name("litejobs")
APP = "tests.cli.app_jobs:jobs"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEJOBS_")}
    env.update(extra)
    return env


def litejobs(*argv: str, cwd: Path = ROOT, timeout: float = 60, **env: str) -> Result:
    """The real executable in ``cwd`` with a clean environment (plus ``env``), no stdin."""
    proc = subprocess.run(
        [str(EXE), *argv],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def job_log(tmp_path: Path) -> Path:
    return tmp_path / "ran.jsonl"


@pytest.fixture
def cli(db_path: Path, job_log: Path) -> Callable[..., Result]:
    """``cli("list", "--json")``: run litejobs with ``--db`` set to this test's database."""

    def run(*args: str, app: bool = False, cwd: Path = ROOT, timeout: float = 60) -> Result:
        argv = [str(EXE), "--db", str(db_path), *(["--app", APP] if app else []), *args]
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=clean_env(LITEJOBS_TEST_LOG=str(job_log)),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


def ran(job_log: Path) -> list[dict[str, Any]]:
    """What the jobs recorded, in order."""
    if not job_log.exists():
        return []
    return [json.loads(line) for line in job_log.read_text().splitlines()]
