"""The built package holds everything litejobs reads at run time, not only its Python files.

Every SQL statement lives in ``litejobs/adapters/sql/*.sql``; a wheel without them installs
fine and fails on the first command (``FileNotFoundError: .../sqlite.sql``). Found when the
README session was recorded with litejobs installed from a wheel rather than from the tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_every_file_of_the_package(tmp_path: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.splitlines()  # fmt: skip
    source = tmp_path / "src"  # a copy: building writes build/ and *.egg-info next to it
    for name in listed:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), "."],
        cwd=source, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("litejobs-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packed = {name for name in archive.namelist() if name.startswith("litejobs/")}
    package = {name for name in listed if name.startswith("litejobs/")}
    assert package - packed == set()
    assert {"litejobs/adapters/sql/sqlite.sql", "litejobs/adapters/sql/postgres.sql"} <= packed
