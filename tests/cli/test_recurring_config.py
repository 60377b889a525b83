"""One bad ``[[tool.litejobs.recurring]]`` entry does not lock the operator out: commands that
inspect or edit jobs warn (one line naming the entry) and go on; the good entries still count.
(Every command used to exit 2. The refusal of work/workoff/start is in test_bad_input.)"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from litejobs import SQLiteAdapter, enqueue

from .conftest import EXE, ROOT, clean_env
from .test_bad_input import BAD_RECURRING, J

WARNING = (
    "litejobs: warning: {project}/pyproject.toml: recurring entry 2: invalid cron expression "
    "'61 * * * *'"
)
COMMANDS = [
    (["list", "--json"], '"queue": "default"'),
    (["show", "1", "--json"], '"id": 1'),
    (["status", "--json"], '"totals"'),
    (["retry", "1"], "job 1 is ready"),
    (["recurring", "--json"], '"name": "tests.cli.app_jobs:record"'),
    (["enqueue", J, "--args", "[2]"], "2"),
    (["delete", "1"], "deleted job 1"),
    (["clear", "--yes"], "deleted 1 job"),
]


@pytest.mark.parametrize(("argv", "shows"), COMMANDS, ids=[c[0][0] for c in COMMANDS])
def test_inspection_warns_and_goes_on(tmp_path: Path, argv: list[str], shows: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(BAD_RECURRING)
    db = tmp_path / "jobs.db"
    adapter = SQLiteAdapter(db)
    enqueue(J, [1], db=adapter, wait=3600)
    adapter.close()
    proc = subprocess.run(
        [str(EXE), "--db", str(db), "--path", str(ROOT), *argv],
        cwd=project, env=clean_env(LITEJOBS_TEST_LOG=os.devnull),
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(WARNING.format(project=project)) and "skipped" in line
    assert shows in proc.stdout
    if argv[0] == "recurring":
        assert [s["name"] for s in json.loads(proc.stdout)] == ["tests.cli.app_jobs:record"]
