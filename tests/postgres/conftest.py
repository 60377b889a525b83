"""Fixtures for the PostgreSQL-only tests: a server URL (skip locally without one, fail in CI)
and a fresh schema per test, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from litejobs.adapters.postgres import PostgresAdapter
from tests.conftest import PG_URL
from tests.pg import drop_schema


@pytest.fixture
def pg_url() -> str:
    if not PG_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the PostgreSQL tests: LITEJOBS_TEST_PG_URL is not set")
        pytest.skip("no PostgreSQL server (scripts/test starts one; or set LITEJOBS_TEST_PG_URL)")
    return PG_URL


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
