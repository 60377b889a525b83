"""``litejobs recurring``: the recurring schedules the app (or ``pyproject.toml``) defines."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Annotated, Any

import typer

from . import render
from .app import require_database, settings


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

    manager = settings(ctx).manager()
    if manager.schedules:  # their last ticks are read from storage, which must exist
        for adapter in manager.adapters.values():
            require_database(adapter)
    rows = schedule_status(manager)
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
    if not rows:
        render.console().print(
            "no recurring schedules (define them with cron=... or in pyproject.toml)"
        )
        return
    _table(rows, settings(ctx).adapter().clock.now())


def _table(rows: list[dict[str, Any]], now: float) -> None:
    """One line per schedule; on a narrow terminal NAME, TIME ZONE and JOB are shortened (with
    …) while CRON and the times keep their width, so 80 columns show every column."""
    from rich.table import Table

    headers = ("NAME", "CRON", "TIME ZONE", "JOB", "LAST", "NEXT")
    cells = [
        tuple(
            render.safe(cell)  # data is printed as text, never markup
            for cell in (
                row["name"],
                row["cron"],
                row["timezone"],
                row["job"],
                "never" if row["last_tick"] is None else render.ago(row["last_tick"], now),
                "never" if row["next_tick"] is None else render.ago(row["next_tick"], now),
            )
        )
        for row in rows
    ]
    out = render.console()
    widths = fit_widths(headers, cells, out.width, shrinkable=("NAME", "TIME ZONE", "JOB"))
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header, width in zip(headers, widths, strict=True):
        table.add_column(header, no_wrap=True, overflow="ellipsis", width=width)
    for line in cells:
        table.add_row(*line)
    out.print(table)


def fit_widths(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    shrinkable: Collection[str],
    narrowest: int = 8,
) -> list[int]:
    """Column widths for a table with two-space gaps in ``width`` columns: each column as wide
    as its widest cell, then the widest ``shrinkable`` one narrowed a character at a time until
    the table fits (or they are all ``narrowest``). rich would shrink every column instead,
    ids and times included."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    spare = width - 2 * (len(headers) - 1) - sum(widths)
    candidates = [i for i, h in enumerate(headers) if h in shrinkable]
    while spare < 0 and candidates:
        widest = max(candidates, key=lambda i: widths[i])
        if widths[widest] <= narrowest:
            break
        widths[widest] -= 1
        spare += 1
    return widths


def register(app: typer.Typer) -> None:
    app.command()(recurring)
