"""What workers say when they start: the app they run (or that none was found, and where it was
looked for), a queue that ``-n`` leaves without workers, and where an unimportable job was looked
for."""

from __future__ import annotations

from pathlib import Path

from litejobs import enqueue

from .conftest import APP, ROOT, litejobs


def test_no_app_found_is_said_once_with_where_it_was_looked_for(tmp_path: Path) -> None:
    result = litejobs("--db", str(tmp_path / "jobs.db"), "workoff", cwd=tmp_path)
    assert result.code == 0, result.err
    said = [line for line in result.err.splitlines() if "no app found" in line]
    assert len(said) == 1
    assert "WARNING" in said[0]
    assert f"no [tool.litejobs] app in {tmp_path / 'pyproject.toml'}" in said[0]
    assert "--app" in said[0] and "$LITEJOBS_APP" in said[0]


def test_with_an_app_nothing_is_said(tmp_path: Path) -> None:
    result = litejobs("--db", str(tmp_path / "jobs.db"), "--app", APP, "workoff", cwd=ROOT)
    assert result.code == 0, result.err
    assert "no app found" not in result.err


def test_an_unimportable_job_names_the_workers_cwd_app_and_sys_path(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    job_id = enqueue("nosuch.module:run", [1], db=str(db), check=False)
    result = litejobs("--db", str(db), "--app", APP, "workoff", cwd=ROOT)
    assert result.code == 1
    shown = litejobs("--db", str(db), "show", str(job_id), "--json", cwd=ROOT)
    error = shown.json()["last_error"].splitlines()[0]
    assert error.startswith("HandlerNotFoundError: cannot import module 'nosuch.module'")
    assert f"worker cwd {ROOT}" in error
    assert f"app {APP} (--app)" in error
    assert f"sys.path ['{ROOT}'" in error


def test_a_declared_queue_left_without_workers_is_a_warning(tmp_path: Path) -> None:
    db = str(tmp_path / "jobs.db")
    left = litejobs("--db", db, "--app", APP, "workoff", "-n", "email:1", cwd=ROOT)
    assert left.code == 0, left.err
    assert "-n email:1 leaves queue default without workers" in left.err
    for spec in ("default:1,email:1", "2", ":1"):
        whole = litejobs("--db", db, "--app", APP, "workoff", "-n", spec, cwd=ROOT)
        assert "without workers" not in whole.err, spec
