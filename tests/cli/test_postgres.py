"""The same CLI flow against PostgreSQL (runs when ``$LITEJOBS_TEST_PG_URL`` is set, as in CI)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import drop_schema, reset_schema

from .conftest import EXE, ROOT, clean_env, ran

PG_URL = os.environ.get("LITEJOBS_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="no PostgreSQL (set LITEJOBS_TEST_PG_URL)")


@pytest.fixture
def schema() -> Iterator[str]:
    from litejobs.adapters.postgres import PostgresAdapter

    assert PG_URL
    name = f"cli_{os.getpid()}"
    adapter = PostgresAdapter(PG_URL, schema=name)
    reset_schema(adapter)
    yield name
    drop_schema(adapter)
    adapter.close()


def test_enqueue_list_workoff_on_postgres(schema: str, job_log: Path) -> None:
    assert PG_URL
    env = clean_env(
        LITEJOBS_TEST_LOG=str(job_log), LITEJOBS_TEST_PG_URL=PG_URL, LITEJOBS_TEST_PG_SCHEMA=schema
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EXE), "--app", "tests.cli.pg_app:jobs", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    first = cli("enqueue", "tests.cli.app_jobs:record", "--args", '["pg"]', "--queue", "email")
    assert first.returncode == 0, first.stderr
    later = cli("enqueue", "tests.cli.app_jobs:record", "--args", '["later"]', "--wait", "600")
    assert later.returncode == 0, later.stderr
    refused = cli("enqueue", "tests.cli.app_jobs:record", "--queue", "sms")
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1
    states = {j["id"]: j["state"] for j in json.loads(cli("list", "--json").stdout)}
    assert states == {int(first.stdout): "ready", int(later.stdout): "scheduled"}
    worked = cli("workoff")
    assert worked.returncode == 0, worked.stderr
    assert worked.stdout.strip() == "ran 1: 1 succeeded, 0 errored (will retry), 0 failed"
    assert [e["value"] for e in ran(job_log)] == ["pg"]
    status = json.loads(cli("status", "--json").stdout)
    assert status["totals"]["scheduled"] == 1 and status["totals"]["ready"] == 0
    assert cli("show", "999").returncode == 2


def test_inspecting_a_schema_without_litejobs_tables_creates_nothing(job_log: Path) -> None:
    """``exists()`` asks on a plain connection: ``list`` on a fresh schema is exit 3 and leaves
    no schema behind (it used to create and migrate one)."""
    import psycopg

    assert PG_URL
    schema = f"absent_{os.getpid()}"
    env = clean_env(LITEJOBS_TEST_PG_URL=PG_URL, LITEJOBS_TEST_PG_SCHEMA=schema)
    for argv in (["list"], ["status"], ["show", "1"], ["clear", "--yes"]):
        proc = subprocess.run(
            [str(EXE), "--app", "tests.cli.pg_app:jobs", *argv],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 3, proc.stderr
        assert proc.stderr.startswith("litejobs: error: no database at postgresql://")
        assert f"(schema {schema})" in proc.stderr and len(proc.stderr.splitlines()) == 1
    with psycopg.connect(PG_URL) as conn:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchone()
    assert found == (0,)
