"""PostgreSQL schema upkeep for tests and benchmarks (not part of the library's API)."""

from __future__ import annotations

from litejobs.adapters.postgres import PostgresAdapter


def reset_schema(adapter: PostgresAdapter) -> None:
    """Empty the schema as if dropped and created again: no jobs, workers or ticks, ids from
    1. Opening the connection has created or migrated the schema already, so emptying its
    tables is enough, and is several times cheaper than DDL (the suite resets once per
    Hypothesis example)."""
    conn = adapter.connection
    s = adapter._s
    sql = (
        f"DELETE FROM {s}.background_jobs; DELETE FROM {s}.litejobs_workers; "
        f"DELETE FROM {s}.litejobs_recurring_ticks; DELETE FROM {s}.litejobs_queues; "
        f"DELETE FROM {s}.litejobs_unique_keys; DELETE FROM {s}.litejobs_stats; "
        f"SELECT setval(pg_get_serial_sequence('{s}.background_jobs', 'id'), 1, false);"
    )

    def run() -> None:
        with conn.transaction():
            conn.execute(sql)  # no parameters: one round trip for all four statements

    adapter._guard(run)


def drop_schema(adapter: PostgresAdapter) -> None:
    """Drop the schema and everything in it (throwaway schemas of tests and benchmarks)."""
    conn = adapter.connection
    adapter._guard(lambda: conn.execute(f"DROP SCHEMA IF EXISTS {adapter._s} CASCADE"))
    adapter._schema_ready = False
