"""README's quick start and the shipped systemd units, followed word for word: a "web" process
runs the README's scheduling code, a process started as the unit would start it (its working
directory, environment and command line) runs the jobs. Both must use one database (the unit
used to set a LITEJOBS_DB the web process never saw: its workers never saw the jobs)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import EXE, ROOT, clean_env

UNITS = ["litejobs.service", "litejobs-worker@.service"]
SRV = "/srv/app"


def readme_block(starts_with: str) -> str:
    """The README's Python code block whose first line is ``starts_with``."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return next(b for b in blocks if b.startswith(starts_with))


def unit(name: str) -> dict[str, str]:
    """The ``[Service]`` settings of a shipped unit (``Environment`` lines joined by newlines)."""
    settings: dict[str, str] = {}
    section = ""
    for raw in (ROOT / "packaging" / name).read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            if key == "Environment" and key in settings:
                value = f"{settings[key]}\n{value}"
            settings[key] = value
    return settings


def exec_start(service: dict[str, str], project: Path, instance: str) -> list[str]:
    """``ExecStart=`` as systemd runs it: specifiers (``%i``, ``%%``) and ``$$`` resolved, the
    unit's paths moved to the test's project and venv."""
    line = re.sub(r"%(.)", lambda m: {"%": "%", "i": instance}[m.group(1)], service["ExecStart"])
    line = line.replace("$$", "$").replace(f"{SRV}/.venv/bin/litejobs", str(EXE))
    return shlex.split(line.replace(SRV, str(project)))


@pytest.mark.parametrize("unit_name", UNITS)
def test_readme_quick_start_with_the_shipped_unit(tmp_path: Path, unit_name: str) -> None:
    project = tmp_path / "srv-app"  # the unit's /srv/app
    (project / "myapp").mkdir(parents=True)
    (project / "var").mkdir()
    (project / "myapp" / "__init__.py").write_text("")
    app = readme_block("# myapp/jobs.py")
    (project / "myapp" / "jobs.py").write_text(app)

    # The web app: the README's scheduling code, in the project directory, its own environment.
    web = "from myapp.jobs import *\n" + readme_block("from datetime import UTC, datetime")
    ran = subprocess.run(
        [sys.executable, "-c", web], cwd=project, env=clean_env(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    db = project / "var" / "jobs.db"
    assert states(db) == {"ready": 8, "scheduled": 3}

    service = unit(unit_name)
    env = clean_env(**dict(e.split("=", 1) for e in service["Environment"].splitlines()))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(tmp_path / "notify"))
        notify.settimeout(0.1)
        env["NOTIFY_SOCKET"] = str(tmp_path / "notify")
        worker = subprocess.Popen(
            exec_start(service, project, "0.0"),
            cwd=service["WorkingDirectory"].replace(SRV, str(project)),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            if service["Type"] == "notify":
                assert ready(notify, worker), "the supervisor never said READY=1"
            deadline = time.monotonic() + 60
            while states(db) != {"scheduled": 3} and time.monotonic() < deadline:
                if worker.poll() is not None:
                    break
                time.sleep(0.05)
            assert states(db) == {"scheduled": 3}  # every due job ran, from the web's database
        finally:
            worker.send_signal(getattr(signal, service["KillSignal"]))
            _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "Traceback" not in err
    writable = service["ReadWritePaths"].replace(SRV, str(project))
    assert db.parent == Path(writable)  # the only writable directory holds the database


def ready(notify: socket.socket, process: subprocess.Popen[str]) -> bool:
    """Whether ``READY=1`` arrives (within 30 s, and while the process lives)."""
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        try:
            return notify.recv(1024).startswith(b"READY=1")
        except TimeoutError:
            continue
    return False


def states(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT state, count(*) FROM background_jobs GROUP BY state"))


def test_the_units_never_point_workers_elsewhere() -> None:
    """Both units, one rule: the same directory, app and hardening, and no LITEJOBS_DB."""
    services = [unit(name) for name in UNITS]
    for service in services:
        assert service["WorkingDirectory"] == SRV
        assert "LITEJOBS_DB" not in service["Environment"]
        assert service["ProtectSystem"] == "strict"  # "only the database directory writable"
        assert service["Environment"].splitlines()[0] == "LITEJOBS_APP=myapp.jobs:jobs"
        assert os.path.commonpath([service["ReadWritePaths"], SRV]) == SRV
