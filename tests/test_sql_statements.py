"""The two SQL files define the same statements with the same parameters, except what truly
differs per dialect (the claim's internals, and a few PostgreSQL-only helpers): the rule that
lets :mod:`litejobs.adapters.sqlbase` run one storage rule by name on either database.

Why: a statement added to one file only (or with a parameter the other lacks) fails on one
database at run time, possibly only in production; this says so at test time.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from litejobs import SQLiteAdapter
from litejobs.adapters.base import Adapter
from litejobs.adapters.sql import _PARAM, _load, _parse

#: Statements only SQLite has: its claim runs one index seek per queue from Python.
SQLITE_ONLY = {
    "claim_candidates_any",
    "claim_candidates_queue",
    "claim_take",
    "claim_take_one",
    "held_in_queue",
    "promote_due",
}
#: Statements only PostgreSQL has: its claim is one statement (after ``claim_prepare``), plus
#: its notifications, advisory locks and multi-row inserts.
POSTGRES_ONLY = {
    "advisory_lock",
    "claim_any",
    "claim_prepare",
    "claim_queues",
    "insert_many",
    "insert_unique",
    "notify",
}


def test_both_dialects_define_the_same_statements_but_their_own() -> None:
    sqlite, postgres = _load("sqlite"), _load("postgres")
    assert set(sqlite) - set(postgres) == SQLITE_ONLY
    assert set(postgres) - set(sqlite) == POSTGRES_ONLY


def test_shared_statements_take_the_same_parameters() -> None:
    sqlite, postgres = _load("sqlite"), _load("postgres")
    differ = {
        name: set(_PARAM.findall(sqlite[name])) ^ set(_PARAM.findall(postgres[name]))
        for name in set(sqlite) & set(postgres)
    }
    # insert_job: PostgreSQL announces the new job in the same statement (its channel).
    assert {name: d for name, d in differ.items() if d} == {"insert_job": {"channel"}}


#: What only one dialect understands; ``common.sql`` must use none of it (each statement there
#: runs on both databases, so one dialect's syntax would fail on the other, maybe in production).
DIALECT_ONLY = re.compile(
    r"::|\bFOR\s+UPDATE\b|\bSKIP\s+LOCKED\b|\bjson_each\b|\bANY\s*\(|\bsqlite_\w+|\bpg_\w+"
    r"|\bILIKE\b|\bjulianday\b|\bstrftime\b|\bnow\s*\(",
    re.IGNORECASE,
)


def test_common_statements_use_nothing_only_one_dialect_knows() -> None:
    found = {
        name: DIALECT_ONLY.findall(sql)
        for name, sql in _parse("common.sql").items()
        if DIALECT_ONLY.search(sql)
    }
    assert found == {}


def test_a_statement_is_written_once_common_or_per_dialect() -> None:
    common = _parse("common.sql").keys()
    assert common & _parse("sqlite.sql").keys() == set()
    assert common & _parse("postgres.sql").keys() == set()
    assert not any(name.startswith("migration") for name in common)  # schemas differ by type


def test_every_statement_compiles_on_its_database(adapter: Adapter) -> None:
    """Each statement, by name, is accepted by the database it is written for (EXPLAIN plans
    it without running it): a typo or a column a migration lacks fails here, not the first
    time a rarely used path runs."""
    adapter.counts()  # opens and migrates
    if isinstance(adapter, SQLiteAdapter):
        queries, explain = _load("sqlite"), _explain_sqlite(adapter)
    else:
        queries, explain = adapter.queries, _explain_postgres(adapter)  # type: ignore[attr-defined]
    failed = {}
    for name, sql in queries.items():
        if name.startswith("migration") or name in NOT_EXPLAINABLE:
            continue
        try:
            explain(sql)
        except Exception as exc:  # every failure is reported by name
            failed[name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    assert failed == {}


#: Statements EXPLAIN cannot take: they are not plannable queries.
NOT_EXPLAINABLE = {"claim_prepare"}


def _explain_sqlite(adapter: SQLiteAdapter) -> Callable[[str], object]:
    def explain(sql: str) -> object:
        params = dict.fromkeys(_PARAM.findall(sql))
        return list(adapter.connection.execute(f"EXPLAIN {sql}", params))

    return explain


def _explain_postgres(adapter: Adapter) -> Callable[[str], object]:
    conn = adapter.connection  # type: ignore[attr-defined]

    def explain(sql: str) -> object:
        params = dict.fromkeys(re.findall(r"%\((\w+)\)s", sql))
        with conn.transaction(force_rollback=True):
            return conn.execute(f"EXPLAIN {sql}", params).fetchall()

    return explain
