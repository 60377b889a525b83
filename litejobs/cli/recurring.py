"""``litejobs recurring``: the recurring schedules the app (or ``pyproject.toml``) defines."""

from __future__ import annotations

from typing import Annotated

import typer

from . import render
from .app import settings


def recurring(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of schedules.")] = False,
) -> None:
    """List recurring schedules: cron, time zone, job, last tick fired and next tick.

    Schedules come from the app (@jobs.job(cron=...), jobs.recurring(...)) and from
    [[tool.litejobs.recurring]] tables in ./pyproject.toml; running workers enqueue their ticks.

    Example: litejobs recurring --json
    """
    from litejobs.recurring import schedule_status

    rows = schedule_status(settings(ctx).manager())
    if as_json:
        render.print_json(
            [
                {
                    **row,
                    "last_tick": render.iso(row["last_tick"]),
                    "next_tick": render.iso(row["next_tick"]),
                }
                for row in rows
            ]
        )
        return
    out = render.console()
    if not rows:
        out.print("no recurring schedules (define them with cron=... or in pyproject.toml)")
        return
    for row in rows:
        out.print(
            f"{row['name']}  [{row['cron']}  {row['timezone']}]  {row['job']}  "
            f"last: {render.iso(row['last_tick']) or 'never'}  "
            f"next: {render.iso(row['next_tick']) or 'never'}",
            markup=False,
        )


def register(app: typer.Typer) -> None:
    app.command()(recurring)
