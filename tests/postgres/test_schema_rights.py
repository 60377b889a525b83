"""Who may do what to litejobs' schema: a DBA-made schema serves a user who may not create
schemas; a missing one is an error that says what a DBA can do; inspection never creates one
and works on a read-only session.

The migration used to run ``CREATE SCHEMA IF NOT EXISTS`` every time, which PostgreSQL refuses
(permission denied for database) to a user without CREATE on the database even when the schema
is there: the set-up docs/postgres.md offers (a DBA creates the schema) could not work.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from litejobs.adapters.base import NewJob
from litejobs.adapters.postgres import PostgresAdapter
from litejobs.errors import StorageError
from tests.cli.conftest import EXE, ROOT, clean_env

HANDLER = json.dumps({"name": "record", "path": "tests.sample_jobs:record", "args": [1]})


def as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{user}@{parts.netloc.rpartition('@')[2]}").geturl()


def admin(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.fixture
def role(pg_url: str) -> Iterator[str]:
    """A login role with no rights beyond PostgreSQL's defaults (no CREATE on the database)."""
    name = f"app_{uuid.uuid4().hex[:10]}"
    admin(pg_url, f'CREATE ROLE "{name}" LOGIN')
    with psycopg.connect(pg_url) as conn:
        query = "SELECT has_database_privilege(%s, current_database(), 'CREATE')"
        assert conn.execute(query, (name,)).fetchone() == (False,)
    yield name
    admin(pg_url, f'DROP OWNED BY "{name}" CASCADE', f'DROP ROLE "{name}"')


@pytest.mark.parametrize(
    "grant",
    [
        'CREATE SCHEMA "{schema}" AUTHORIZATION "{role}"',
        'CREATE SCHEMA "{schema}"; GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{role}"',
    ],
    ids=["owned-by-the-user", "granted-to-the-user"],
)
def test_a_schema_a_dba_made_serves_a_user_who_cannot_create_schemas(
    pg_url: str, role: str, pg_schema: str, grant: str
) -> None:
    admin(pg_url, *grant.format(schema=pg_schema, role=role).split("; "))
    adapter = PostgresAdapter(as_user(pg_url, role), schema=pg_schema)
    try:
        job_id = adapter.enqueue(NewJob(handler=HANDLER))  # creates the tables, migrates
        assert [job.id for job in adapter.list_jobs()] == [job_id]
    finally:
        adapter.close()


def test_a_missing_schema_the_user_may_not_create_says_what_to_do(
    pg_url: str, role: str, pg_schema: str
) -> None:
    adapter = PostgresAdapter(as_user(pg_url, role), schema=pg_schema)
    try:
        with pytest.raises(StorageError) as info:
            adapter.enqueue(NewJob(handler=HANDLER))
    finally:
        adapter.close()
    assert info.value.permanent
    message = str(info.value)
    assert "\n" not in message
    assert f"the schema does not exist and user '{role}' may not create it" in message
    assert f'CREATE SCHEMA "{pg_schema}" AUTHORIZATION "{role}"' in message
    database = urlsplit(pg_url).path.lstrip("/")
    assert f'GRANT CREATE ON DATABASE "{database}" TO "{role}"' in message


def read_only(url: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-c%20default_transaction_read_only%3Don"


def test_list_and_status_work_on_a_read_only_session(pg: PostgresAdapter, pg_url: str) -> None:
    """A hot standby, or a user whose sessions are read-only: inspection reads and writes
    nothing (no migration, no schema, no stand-in rows)."""
    job_id = pg.enqueue(NewJob(handler=HANDLER))
    env = clean_env(LITEJOBS_TEST_PG_URL=read_only(pg_url), LITEJOBS_TEST_PG_SCHEMA=pg.schema)

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EXE), "--app", "tests.cli.pg_app:jobs", *argv],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [job["id"] for job in json.loads(listed.stdout)] == [job_id]
    status = cli("status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["totals"]["ready"] == 1
    refused = cli("retry", "--failed")  # a command that writes is told where to go
    assert refused.returncode == 3 and "read-only" in refused.stderr, refused.stderr
