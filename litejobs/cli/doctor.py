"""``litejobs doctor``: what this litejobs is made of (see :mod:`litejobs.doctor`) and whether
this project's set-up is sound (see :mod:`litejobs.checks`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .app import settings

if TYPE_CHECKING:
    from litejobs.checks import Check


def doctor(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print it as a JSON object.")] = False,
) -> None:
    """Show versions and check the set-up: pyproject config, app, database.

    Versions: litejobs, Python, SQLite, psycopg, frozen or installed, and glibc ("glibc
    required" is the oldest glibc this build runs on: the highest GLIBC symbol version its own
    native files reference). The versions alone: litejobs --version --verbose.

    Then one verdict (ok, warn, fail) per check: [tool.litejobs] in ./pyproject.toml; the app
    (imports, is a JobManager, its queues and worker groups); the database (opened read-only:
    PRAGMA quick_check, schema version, WAL size). Exits 1 if a check fails.
    """
    from litejobs import doctor as info

    data = info.collect()
    checks = _checks(ctx)
    if as_json:
        data["checks"] = [vars(check) for check in checks]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        width = max(len(check.name) for check in checks)
        lines = [f"  {c.name:<{width}}  {c.verdict:<4}  {c.detail}" for c in checks]
        sys.stdout.write(info.report(data) + "\nchecks:\n" + "\n".join(lines) + "\n")
    if any(check.verdict == "fail" for check in checks):
        raise typer.Exit(1)


def _checks(ctx: typer.Context) -> list[Check]:
    from litejobs.checks import Check, check_app, check_database, check_pyproject

    cfg = settings(ctx)
    try:
        source = cfg.source()
    except Exception as exc:  # an unreadable pyproject.toml or a bad --path
        return [Check("app", "fail", str(exc))]
    app_given = source.spec is not None and not source.origin.startswith("[tool.litejobs]")
    found = [check_pyproject(Path.cwd() / "pyproject.toml", app_given)]
    app, manager = check_app(source, cfg.manager)
    found.append(app)
    if manager is not None:
        found += [check_database(adapter) for adapter in manager.adapters.values()]
    return found


def register(app: typer.Typer) -> None:
    app.command()(doctor)
