"""Fixtures for the PostgreSQL-only tests: a server URL (skip locally without one, fail in CI),
a fresh schema per test, dropped afterwards, and a server of their own to restart."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from litejobs.adapters.postgres import PostgresAdapter
from tests.conftest import PG_URL
from tests.pg import drop_schema
from tests.postgres.server import Server


def require_pg() -> str:
    """The shared server's URL; skip locally without one, fail in CI."""
    if not PG_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the PostgreSQL tests: LITEJOBS_TEST_PG_URL is not set")
        pytest.skip("no PostgreSQL server (scripts/test starts one; or set LITEJOBS_TEST_PG_URL)")
    return PG_URL


@pytest.fixture
def pg_url() -> str:
    return require_pg()


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A schema name no other test uses; dropped with everything in it after the test."""
    schema = f"pgt_{uuid.uuid4().hex[:12]}"
    yield schema
    admin = PostgresAdapter(pg_url, schema=schema)
    drop_schema(admin)
    admin.close()


@pytest.fixture
def pg(pg_url: str, pg_schema: str) -> Iterator[PostgresAdapter]:
    adapter = PostgresAdapter(pg_url, schema=pg_schema)
    yield adapter
    adapter.close()


@pytest.fixture(scope="session")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of the tests' own, for the tests that restart it or cut it off (the shared one
    stays untouched); one per session, started on first use (~1-2 s)."""
    require_pg()
    server = Server.start(tmp_path_factory.mktemp("own-pg") / "state")
    yield server
    server.stop()
