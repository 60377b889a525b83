"""Every Python block in README.md runs as written (with, for a fragment, the few names it
assumes defined first): a newcomer copies them, so a broken example is a bug.

A block is matched to its setting by a phrase in it; a new block with no rule fails the test
until one is added here, so no example goes unchecked.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^( *)```python\n(.*?)^\1```", re.M | re.S)

MANAGER = """
from litejobs import JobManager, SQLiteAdapter
jobs = JobManager(adapters={"sqlite": SQLiteAdapter("jobs.db")}, queues=["default", "email"])
later = jobs.create_scheduler()
"""

#: (a phrase that identifies the block, what must be defined before it runs)
FRAGMENTS = {
    "@jobs.job(cron=": MANAGER + "def send_report(kind: str) -> None: ...\n",
    "sentry_sdk.capture_exception": MANAGER
    + """
from types import SimpleNamespace
sentry_sdk = SimpleNamespace(capture_exception=lambda error: None)
def open_span(ctx): ...
def close_span(ctx): ...
def cleanup() -> None: ...
def notify(ctx): ...
def audit(ctx): ...
""",
    'unique_key="sync:42"': MANAGER
    + "from datetime import timedelta\n"
    + "def sync_account(account_id: int) -> None: ...\n"
    + "def rebuild_index(name: str) -> None: ...\n"
    + "def send_digest(user_id: int) -> None: ...\n",
    "PostgresAdapter(": "",
    "queue_limits={": "",
    "keep_result=True, keep_failed": "",
}


def blocks() -> list[tuple[int, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, m.start()) + 1, textwrap.dedent(m.group(2)))
        for m in FENCE.finditer(text)
    ]


def python(*argv: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, *argv], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def app_project(root: Path, source: str) -> Path:
    """A project as the README sets it up: ``myapp/jobs.py`` and ``mkdir var``."""
    (root / "myapp").mkdir(parents=True)
    (root / "myapp" / "__init__.py").write_text("")
    (root / "myapp" / "jobs.py").write_text(source)
    (root / "var").mkdir()
    return root


def find(phrase: str) -> tuple[int, str]:
    [found] = [(line, code) for line, code in blocks() if phrase in code]
    return found


def test_every_block_has_a_rule() -> None:
    known = ["# myapp/jobs.py", "later(send_welcome_email, [42])", "litejobs.enqueue(", *FRAGMENTS]
    known += ["def charge_card", "from litejobs.testing import"]
    for line, code in blocks():
        rules = [phrase for phrase in known if phrase in code]
        assert len(rules) == 1, f"README.md line {line}: add one rule for this block ({rules})"


def test_quick_start_runs_as_written(tmp_path: Path) -> None:
    project = app_project(tmp_path, find("# myapp/jobs.py")[1])
    schedule = find("later(send_welcome_email, [42])")[1]
    python("-c", "from myapp.jobs import *\n" + schedule, cwd=project)
    python("-c", find("litejobs.enqueue(")[1], cwd=project)
    worked = subprocess.run(
        [str(Path(sys.executable).with_name("litejobs")), "--app", "myapp.jobs:jobs", "workoff"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worked.returncode == 0, worked.stderr
    assert worked.stdout.endswith("0 errored (will retry), 0 failed\n")


def test_the_session_app_imports(tmp_path: Path) -> None:
    project = app_project(tmp_path, find("def charge_card")[1])
    python("-c", "import myapp.jobs", cwd=project)


@pytest.mark.parametrize("phrase", list(FRAGMENTS))
def test_fragment_runs_with_its_names_defined(phrase: str, tmp_path: Path) -> None:
    line, code = find(phrase)
    module = f"readme_line_{line}"
    (tmp_path / f"{module}.py").write_text(FRAGMENTS[phrase] + "\n" + code)
    python("-c", f"import {module}", cwd=tmp_path)  # a module: its functions are importable


def test_testing_example_passes_under_pytest(tmp_path: Path) -> None:
    (tmp_path / "test_readme_example.py").write_text(find("from litejobs.testing import")[1])
    out = python(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme_example.py", cwd=tmp_path
    )
    assert "2 passed" in out
