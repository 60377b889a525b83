"""Start-up time of the ``litejobs`` command: what a health check, a cron line or a shell loop
pays on every call, beside the floor (the same Python importing apsw, and nothing else).

Each command runs in a fresh process against a temporary database, as an operator would run it,
with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed: an installed package has its
``.pyc`` files) after one warm-up run; the figure is the median wall time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .common import median

#: (label, argv after ``litejobs``, with ``DB`` standing for the temporary database's path);
#: the label is the key in the results.
COMMANDS: list[tuple[str, list[str]]] = [
    ("litejobs --version", ["--version"]),
    ("litejobs list", ["--db", "DB", "list"]),
    ("litejobs list --json", ["--db", "DB", "list", "--json"]),
    ("litejobs status", ["--db", "DB", "status"]),
    (
        "litejobs enqueue",
        ["--db", "DB", "enqueue", "litejobs.builtins:shell", "--args", '["true"]'],
    ),
    ("litejobs --help", ["--help"]),
]
FLOOR = "python -c 'import apsw'"


def startup_ms(folder: Path, runs: int) -> dict[str, float]:
    """Median wall milliseconds of each command (and of the floor) over ``runs`` runs."""
    exe = str(Path(sys.executable).with_name("litejobs"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env = {k: v for k, v in env.items() if not k.startswith("LITEJOBS_")}
    db = str(folder / "jobs.db")
    argvs = {FLOOR: [sys.executable, "-c", "import apsw"]}
    for label, argv in COMMANDS:
        argvs[label] = [exe, *(db if arg == "DB" else arg for arg in argv)]
    results: dict[str, list[float]] = {label: [] for label in argvs}
    _run(argvs["litejobs enqueue"], folder, env)  # creates the database (list never does)
    for argv in argvs.values():
        _run(argv, folder, env)  # warm-up: writes bytecode
    for _ in range(runs):  # interleaved, so load from elsewhere hits every command alike
        for label, argv in argvs.items():
            started = time.perf_counter()
            _run(argv, folder, env)
            results[label].append((time.perf_counter() - started) * 1000)
    return {label: median(values) for label, values in results.items()}


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60
    ).check_returncode()
