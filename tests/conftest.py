"""Shared fixtures: a real SQLite file per test, a fake clock, and (when a server is running)
the same adapter tests against PostgreSQL."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from litejobs import FakeClock, SQLiteAdapter
from litejobs.adapters.base import Adapter
from tests.pg import reset_schema

# Tests send SIGINT to child processes, as Ctrl-C does. A shell that starts the suite in the
# background (`scripts/test &`, nohup) makes it ignore SIGINT, and children inherit that, so
# they would ignore the test's Ctrl-C too. Handling it here gives every child the default again
# (a caught signal is reset to the default in a child at exec; an ignored one is not).
signal.signal(signal.SIGINT, signal.default_int_handler)

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("LITEJOBS_TEST_PG_URL")
ADAPTER_KINDS = ["sqlite", *(["postgres"] if PG_URL else [])]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


def make_adapter(kind: str, tmp_path: Path, clock: FakeClock | None) -> Adapter:
    """A fresh, empty adapter of ``kind`` ("sqlite" or "postgres")."""
    if kind == "sqlite":
        return SQLiteAdapter(tmp_path / "jobs.db", clock=clock)
    from litejobs.adapters.postgres import PostgresAdapter

    assert PG_URL
    # One schema per test process, emptied by reset(): creating a schema per Hypothesis example
    # (DDL) cost more than the example itself. Callers use one adapter at a time.
    adapter = PostgresAdapter(PG_URL, clock=clock, schema=f"t_{os.getpid()}")
    reset_schema(adapter)
    return adapter


@pytest.fixture(params=ADAPTER_KINDS)
def adapter(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Adapter]:
    """The same contract tests run against every adapter available (SQLite always)."""
    made = make_adapter(request.param, tmp_path, clock)
    yield made
    made.close()


@pytest.fixture
def sqlite_adapter(db_path: Path, clock: FakeClock) -> Iterator[SQLiteAdapter]:
    made = SQLiteAdapter(db_path, clock=clock)
    yield made
    made.close()
