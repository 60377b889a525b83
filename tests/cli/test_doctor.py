"""``litejobs doctor``'s checks through the real executable: one verdict per part of the set-up
(pyproject, app, database), exit 1 when one fails, and the database never changed or created."""

from __future__ import annotations

import json
from pathlib import Path

import apsw

from litejobs import SQLiteAdapter, enqueue

from .conftest import Result, litejobs


def doctor(cwd: Path, *options: str, json_output: bool = False) -> Result:
    return litejobs(*options, "doctor", *(["--json"] if json_output else []), cwd=cwd)


def verdicts(result: Result) -> dict[str, tuple[str, str]]:
    lines = result.out.split("checks:\n", 1)[1].splitlines()
    found = {}
    for line in lines:
        name, verdict, detail = line.split(maxsplit=2)
        found[name] = (verdict, detail)
    return found


def project(root: Path) -> Path:
    (root / "shop.py").write_text(
        "from litejobs import JobManager, SQLiteAdapter, WorkerConfig\n"
        "jobs = JobManager(adapters={'db': SQLiteAdapter('jobs.db')}, queues=['mail', 'bills'],"
        " workers=[WorkerConfig(queue='mail', count=2)])\n"
    )
    (root / "pyproject.toml").write_text('[tool.litejobs]\napp = "shop:jobs"\n')
    return root / "jobs.db"


def test_a_sound_project_is_ok_on_every_line(tmp_path: Path) -> None:
    db = project(tmp_path)
    enqueue("litejobs.builtins:shell", ["true"], db=str(db))
    result = doctor(tmp_path)
    assert result.code == 0, result.err
    assert result.out.startswith("litejobs:")  # the versions come first
    found = verdicts(result)
    assert {name: verdict for name, (verdict, _) in found.items()} == {
        "pyproject": "ok",
        "app": "ok",
        "database": "ok",
    }
    assert 'app = "shop:jobs"' in found["pyproject"][1]
    assert "queues mail, bills; workers 2 on mail" in found["app"][1]
    from litejobs.adapters.sqlite import SCHEMA_VERSION

    assert f"quick_check ok, schema version {SCHEMA_VERSION}, WAL" in found["database"][1]


def test_json_has_the_checks(tmp_path: Path) -> None:
    project(tmp_path)
    result = doctor(tmp_path, json_output=True)
    names = [check["name"] for check in json.loads(result.out)["checks"]]
    assert names == ["pyproject", "app", "database"]


def test_no_app_and_no_pyproject_are_warnings_and_nothing_is_created(tmp_path: Path) -> None:
    db = tmp_path / "later.db"
    result = doctor(tmp_path, "--db", str(db))
    assert result.code == 0, result.err
    found = verdicts(result)
    assert found["pyproject"][0] == "warn" and "litejobs init" in found["pyproject"][1]
    assert found["app"][0] == "warn" and "none found" in found["app"][1]
    assert found["database"] == ("ok", f"{db} does not exist yet (created on first use)")
    assert list(tmp_path.iterdir()) == []


def test_a_broken_app_fails(tmp_path: Path) -> None:
    project(tmp_path)
    (tmp_path / "shop.py").write_text("raise RuntimeError('half-deployed')\n")
    result = doctor(tmp_path)
    assert result.code == 1
    verdict, detail = verdicts(result)["app"]
    assert verdict == "fail" and "half-deployed" in detail
    assert "database" not in verdicts(result)


def test_unknown_pyproject_keys_are_a_warning(tmp_path: Path) -> None:
    project(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.litejobs]\napp = "shop:jobs"\napps = 1\n')
    assert verdicts(doctor(tmp_path))["pyproject"][0] == "warn"


def test_a_newer_schema_and_a_corrupt_file_fail(tmp_path: Path) -> None:
    db = project(tmp_path)
    adapter = SQLiteAdapter(db)
    adapter.counts()  # creates the schema
    adapter.close()
    conn = apsw.Connection(str(db))
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    result = doctor(tmp_path)
    assert result.code == 1
    assert "newer than this litejobs" in verdicts(result)["database"][1]

    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8000)
    result = doctor(tmp_path)
    assert result.code == 1
    verdict, detail = verdicts(result)["database"]
    assert verdict == "fail" and str(db) in detail


def test_a_damaged_page_fails_the_quick_check(tmp_path: Path) -> None:
    db = project(tmp_path)
    adapter = SQLiteAdapter(db)
    for value in range(300):
        enqueue("litejobs.builtins:shell", [f"echo {value} " + "x" * 200], db=adapter)
    adapter.close()
    data = bytearray(db.read_bytes())
    page = 4096
    pages = len(data) // page
    assert pages > 8
    for number in range(2, pages):  # every b-tree page's type byte: not a valid type
        data[number * page] = 0x07
    db.write_bytes(bytes(data))
    result = doctor(tmp_path)
    assert result.code == 1
    verdict, detail = verdicts(result)["database"]
    assert verdict == "fail"
    assert "restore a backup" in detail or "cannot read it" in detail
