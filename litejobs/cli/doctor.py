"""``litejobs doctor``: print what this litejobs is made of (see :mod:`litejobs.doctor`)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print it as a JSON object.")] = False,
) -> None:
    """Show versions (litejobs, Python, SQLite, psycopg), frozen or installed, and glibc.

    "glibc required" is the oldest glibc this build runs on: the highest GLIBC symbol version
    that its own native files reference. Same as: litejobs --version --verbose
    """
    from litejobs import doctor as info

    data = info.collect()
    sys.stdout.write((json.dumps(data, indent=2) if as_json else info.report(data)) + "\n")


def register(app: typer.Typer) -> None:
    app.command()(doctor)
