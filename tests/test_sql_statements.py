"""The two SQL files define the same statements with the same parameters, except what truly
differs per dialect (the claim's internals, and a few PostgreSQL-only helpers): the rule that
lets :mod:`litejobs.adapters.sqlbase` run one storage rule by name on either database.

Why: a statement added to one file only (or with a parameter the other lacks) fails on one
database at run time, possibly only in production; this says so at test time.
"""

from __future__ import annotations

from litejobs.adapters.sql import _PARAM, _load

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
