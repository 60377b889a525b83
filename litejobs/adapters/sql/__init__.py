"""The SQL litejobs runs, in readable files, loaded by statement name.

Every statement stands under a ``-- name: <statement>`` line, with named parameters written
``:param``. ``common.sql`` holds the statements that read the same on SQLite and PostgreSQL
(``{s}.`` marks where PostgreSQL's schema goes); ``sqlite.sql`` and ``postgres.sql`` hold what
each dialect writes its own way, under the same names with the same parameters (but for each
dialect's claim internals and a few PostgreSQL helpers, listed in
``tests/test_sql_statements.py``). So the dialect-neutral code in
:mod:`litejobs.adapters.sqlbase` runs a statement by name on either database, and a reviewer
can read, diff and ``EXPLAIN`` each one. (The layout follows procrastinate's ``queries.sql``.)
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

_NAME = re.compile(r"^-- name: (\w+)\s*$")
#: ``:param`` but not the ``::type`` of a PostgreSQL cast.
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _parse(filename: str) -> dict[str, str]:
    text = files(__name__).joinpath(filename).read_text(encoding="utf-8")
    statements: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in [*text.splitlines(), "-- name: _end"]:
        match = _NAME.match(line)
        if match:
            if name is not None:
                statements[name] = "\n".join(lines).strip().rstrip(";")
            name, lines = match.group(1), []
        elif name is not None and not line.lstrip().startswith("--"):
            lines.append(line)
    return statements


@cache
def _load(dialect: str) -> dict[str, str]:
    """The dialect's statements: ``common.sql``'s and its own file's (a name in both is a
    mistake: which one runs would depend on the load order)."""
    common, own = _parse("common.sql"), _parse(f"{dialect}.sql")
    if both := sorted(common.keys() & own.keys()):
        raise RuntimeError(f"{dialect}.sql redefines statements of common.sql: {both}")
    if dialect == "sqlite":
        common = {name: sql.replace("{s}.", "") for name, sql in common.items()}
    return common | own


def sqlite_queries() -> dict[str, str]:
    """SQLite's statements, with ``:param`` placeholders (apsw binds them from a dict)."""
    return _load("sqlite")


def postgres_queries(schema: str) -> dict[str, str]:
    """PostgreSQL's statements for ``schema`` (already quoted), with psycopg's ``%(param)s``."""
    return {
        name: _PARAM.sub(r"%(\1)s", sql.replace("%", "%%")).replace("{s}", schema)
        for name, sql in _load("postgres").items()
    }


def statement_names(dialect: str) -> set[str]:
    """Every statement name of ``dialect`` (tests check the two files define the same ones)."""
    return set(_load(dialect))
