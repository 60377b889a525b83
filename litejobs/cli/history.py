"""Commands about what already ran: prune, stats, metrics.

Each parses its input, calls one adapter method (or :mod:`litejobs.prometheus`) and prints.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from . import complete, render
from .app import settings


def prune(
    ctx: typer.Context,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Finished jobs that finished longer ago than this (30d, 12h, 90m, or seconds), "
            "whatever their retention [default: only those whose retention ran out].",
        ),
    ] = None,
    state: Annotated[
        str | None,
        complete.state_option(
            "With --older-than: only jobs in this finished state (failed, succeeded, cancelled)."
        ),
    ] = None,
) -> None:
    """Delete finished jobs, a small batch per transaction (workers never wait long).

    Without options: the jobs whose retention ran out (keep_succeeded / keep_failed), as
    workers do every minute. Jobs still to run are never touched.

    Examples:

      litejobs prune

      litejobs prune --older-than 30d --state failed

      litejobs prune --older-than 0      # every finished job
    """
    from litejobs.adapters.base import FINISHED_STATES, JobState
    from litejobs.durations import parse_duration
    from litejobs.errors import ValidationError

    if state is not None and state not in FINISHED_STATES:
        raise ValidationError(
            f"--state must be a finished state ({', '.join(FINISHED_STATES)}), got {state!r}"
        )
    if state is not None and older_than is None:
        raise ValidationError(
            "--state goes with --older-than, e.g. --older-than 30d --state failed"
        )
    age = None if older_than is None else parse_duration(older_than, "--older-than")
    adapter = settings(ctx).adapter(existing=True)
    if age is None:
        count = 0
        while (batch := adapter.prune_expired()) > 0:
            count += batch
    else:
        states: list[JobState] | None = None if state is None else [state]
        count = adapter.prune(adapter.clock.now() - age, states)
    sys.stdout.write(f"pruned {count} finished job{'s' if count != 1 else ''}\n")


def stats(
    ctx: typer.Context,
    since: Annotated[
        str,
        typer.Option("--since", metavar="DURATION", help="The window: 15m, 1h, 1d, or seconds."),
    ] = "1h",
    as_json: Annotated[
        bool, typer.Option("--json", help="Per queue, and per minute, as JSON.")
    ] = False,
) -> None:
    """Outcomes per queue over a window: how many succeeded, errored (will retry), failed and
    were cancelled, and run and wait times (p50, p95, p99), from every worker and host.

    Per-minute statistics are kept a day (JobManager(keep_stats=...)); totals forever.

    Examples:

      litejobs stats

      litejobs stats --since 15m --json | jq '.queues.email'
    """
    from litejobs.durations import parse_duration
    from litejobs.metrics import summarize

    window = parse_duration(since, "--since")
    adapter = settings(ctx).adapter(looking=True)
    now = adapter.clock.now()
    start = now - window
    rows = adapter.stats_rows(start)
    queues = summarize(r[1:] for r in rows)
    total = summarize(("total", *r[2:]) for r in rows).get("total")
    data: dict[str, Any] = {
        "since": render.iso(start),
        "until": render.iso(now),
        "queues": {q: s.as_dict() for q, s in queues.items()},
        "total": None if total is None else total.as_dict(),
    }
    if as_json:
        data["minutes"] = _minutes(rows)
        render.print_json(data)
    else:
        render.stats_table(data, since)


def _minutes(rows: list[tuple[float, str, str, int, int, float]]) -> list[dict[str, Any]]:
    from litejobs.metrics import summarize

    by_minute: dict[float, list[tuple[str, str, int, int, float]]] = {}
    for minute, queue, series, bucket, count, seconds in rows:
        by_minute.setdefault(minute, []).append((queue, series, bucket, count, seconds))
    return [
        {"minute": render.iso(minute), "queue": queue, **one.as_dict()}
        for minute, part in sorted(by_minute.items())
        for queue, one in summarize(part).items()
    ]


def metrics(ctx: typer.Context) -> None:
    """Print the Prometheus text exposition: jobs per queue and state, workers, outcome
    counters and run/wait-time histograms (needs pip install 'litejobs[metrics]').

    Examples:

      litejobs metrics

      litejobs metrics > /var/lib/node_exporter/textfile/litejobs.prom   # node_exporter
    """
    from litejobs.prometheus import exposition, require_client

    require_client()  # a missing extra is exit 2 before anything is opened
    adapter = settings(ctx).adapter(looking=True)
    sys.stdout.write(exposition(adapter).decode("utf-8"))


def register(app: typer.Typer) -> None:
    app.command()(prune)
    app.command()(stats)
    app.command()(metrics)
