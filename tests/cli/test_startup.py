"""What a command imports decides how fast it starts (the figures are in ``scripts/bench``;
no timing here): the commands on a health check's or a shell loop's path must not load the
worker runtime, asyncio, pydantic, or the modules of other commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, clean_env

PROBE = """
import json, sys
from litejobs.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""

#: Modules a quick command has no use for.
NOT_NEEDED = {
    "pydantic",
    "asyncio",
    "multiprocessing",
    "litejobs.worker",
    "litejobs.executor",
    "litejobs.supervisor",
    "litejobs.scaffold",
    "litejobs.cli.run",
    "litejobs.cli.scaffold",
}


def loaded_by(*argv: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stderr.splitlines()[-1]))


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["list", "--json"],
        ["enqueue", "tests.cli.app_jobs:record", "--args", "[1]"],
        ["enqueue", "--shell", "echo hi"],
        ["show", "1"],
    ],
)
def test_quick_commands_load_only_what_they_use(argv: list[str], tmp_path: Path) -> None:
    modules = loaded_by("--db", str(tmp_path / "jobs.db"), *argv)
    assert "litejobs.cli.jobs" in modules  # the probe really ran the command
    assert not modules & NOT_NEEDED, modules & NOT_NEEDED


def test_version_loads_no_command_framework() -> None:
    modules = loaded_by("--version")
    assert not modules & {"typer", "rich", "apsw", "litejobs.manager"}
