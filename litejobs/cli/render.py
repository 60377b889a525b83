"""Presenting jobs, counts and workers: stable JSON for scripts, rich tables for people.

The JSON shapes are a public interface (documented in ``docs/cli.md``): field names are the
database columns (``handler`` split into ``name``, ``path``, ``args``, ``kwargs``) plus the derived
``state``; times are ISO 8601 UTC strings (``2030-01-01T00:00:00.000Z``) or ``null``. New fields
may be added; existing ones are not renamed or retyped.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from litejobs.adapters.base import JobRecord
    from litejobs.liveness import WorkerRecord

#: Control characters (C0 but newline and tab, DEL, C1) shown as ``\x1b``-style escapes: a job's
#: arguments or error must not move the cursor, clear the screen or retitle the terminal.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in "\n\t"}


def iso(value: float | None) -> str | None:
    """Epoch seconds → ``2030-01-01T00:00:00.000Z`` (``None`` stays ``None``)."""
    if value is None:
        return None
    moment = datetime.fromtimestamp(value, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def job_json(record: JobRecord, worker_gone: bool = False) -> dict[str, Any]:
    """``worker_gone``: a held job whose worker is gone (it runs again once rescued)."""
    return {
        "id": record.id,
        "state": record.state,
        "worker_gone": worker_gone,
        "queue": record.queue,
        "priority": record.priority,
        "attempts": record.attempts,
        "max_attempts": record.max_attempts,
        "name": record.name,
        "path": record.path,
        "args": record.args,
        "kwargs": record.kwargs,
        "run_at": iso(record.run_at),
        "locked_at": iso(record.locked_at),
        "locked_by": record.locked_by,
        "last_error": record.last_error,
        "failed_at": iso(record.failed_at),
        "unique_key": record.unique_key,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "max_runtime": record.max_runtime,
        "retry": None if record.retry is None else json.loads(record.retry),
        "cancelled_at": iso(record.cancelled_at),
        "finished_at": iso(record.finished_at),
        "keep_until": iso(record.keep_until),
        "keep_result": record.keep_result,
        "result": record.result,
    }


def worker_json(worker: WorkerRecord, now: float, gone: str | None) -> dict[str, Any]:
    """``gone``: why the worker is provably gone (``None`` while it may be alive)."""
    return {
        "name": worker.name,
        "host": worker.host,
        "pid": worker.pid,
        "queues": worker.queues,
        "started_at": iso(worker.started_at),
        "heartbeat_at": iso(worker.heartbeat_at),
        "expires_at": iso(worker.expires_at),
        "seen_seconds_ago": round(max(0.0, now - worker.heartbeat_at), 3),
        "alive": gone is None,
        "gone": gone,
    }


def plain(value: Any) -> Any:
    """A daemon record (dataclass, namedtuple or object) as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif hasattr(value, "_asdict"):
        value = value._asdict()
    elif hasattr(value, "__dict__"):
        value = dict(vars(value))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def print_json(data: Any) -> None:
    write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write(text: str) -> None:
    """Write to stdout; text that is not valid Unicode (a lone surrogate from an undecodable
    byte) is written as a ``\\udcff`` escape (still valid JSON) rather than crash the command."""
    sys.stdout.write(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def text(value: object, style: str = "") -> Text:
    """Data (args, queue names, errors, worker names) as a rich cell that is only ever text:
    ``[b]`` stays ``[b]`` (never markup), ``:smile:`` stays itself, control characters and
    undecodable bytes are shown escaped."""
    from rich.text import Text

    return Text(safe(value), style=style)


def safe(value: object) -> str:
    """``value`` as printable text: control characters and undecodable bytes escaped."""
    return str(value).translate(_CONTROLS).encode("utf-8", "backslashreplace").decode("utf-8")


def console() -> Console:
    """A rich console for stdout; piped output gets wide lines rather than wrapped cells.

    Markup, emoji codes and highlighting are off: everything printed through it that comes from
    the database is data (see :func:`text`)."""
    import os

    from rich.console import Console

    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or 200)
    return Console(highlight=False, soft_wrap=False, width=width, markup=False, emoji=False)


def ago(moment: float | None, now: float) -> str:
    """``12s ago`` / ``in 1m05s`` / ``-``: how an operator reads times in a table."""
    if moment is None:
        return "-"
    delta = moment - now
    text = duration(abs(delta))
    return f"in {text}" if delta > 0.5 else f"{text} ago"


def duration(value: float) -> str:
    seconds = round(value)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def short(text: str | None, width: int = 60) -> str:
    """First line of ``text`` cut to ``width``: arguments and errors in one table cell.

    For ``last_error`` the first line is the one that names the error, ``Type: message``; the
    traceback after it ends by repeating the whole message, whose last line, for a command that
    failed, is merely the last line of its output (``CommandFailed`` keeps the output's tail).
    """
    if not text or not text.strip():
        return ""
    line = text.strip().splitlines()[0]
    return line if len(line) <= width else line[: width - 1] + "…"


def shown_of(shown: int, total: int, newest: bool) -> str:
    """What ``list`` left out: ``showing 100 of 2345 jobs, oldest first (...)``."""
    order, other = ("newest", "oldest") if newest else ("oldest", "newest")
    flag = "without --newest" if newest else "--newest"
    return (
        f"showing {shown} of {total} jobs, {order} first ({flag} for the {other}, "
        "--limit 0 for all)"
    )


def call_text(record: JobRecord) -> str:
    parts = [json.dumps(a, ensure_ascii=False) for a in record.args]
    parts += [f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in record.kwargs.items()]
    return f"{record.path.partition(':')[2] or record.path}({', '.join(parts)})"


def jobs_table(records: Iterable[JobRecord], now: float, stranded: set[int] | None = None) -> None:
    """One line per job. On a narrow terminal only JOB and LAST ERROR are shortened (with …):
    the short columns keep their full width so ids and states are never cut. A held job whose
    worker is gone (``stranded``) says so in its state."""
    from rich.table import Table

    rows: list[tuple[str, ...]] = []
    for r in records:
        when = {"failed": r.failed_at, "running": r.locked_at, "cancelled": r.cancelled_at}.get(
            r.state, r.run_at
        )
        state = f"{r.state} (worker gone)" if stranded and r.id in stranded else r.state
        if r.state == "running" and r.cancelled_at is not None:
            state = f"{state} (cancelling)"
        cells = (
            str(r.id),
            state,
            r.queue,
            str(r.priority),
            str(r.attempts),
            short(call_text(r), 60),
            ago(when, now),
            short(r.last_error, 80),
        )
        rows.append(tuple(safe(cell) for cell in cells))  # widths are those of what prints
    if not rows:
        sys.stdout.write("no jobs\n")
        return
    out = console()
    headers = ("ID", "STATE", "QUEUE", "PRI", "TRIES", "JOB", "RUN AT", "LAST ERROR")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    # rich shrinks every column (even to nothing) when a table is too wide: size it ourselves.
    spare = out.width - 2 * (len(headers) - 1) - sum(widths)
    job, error = 5, 7
    while spare < 0 and max(widths[job], widths[error]) > 12:
        widths[job if widths[job] >= widths[error] else error] -= 1  # the wider one first
        spare += 1
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header, width in zip(headers, widths, strict=True):
        table.add_column(
            header,
            justify="right" if header in ("ID", "PRI", "TRIES") else "left",
            no_wrap=True,
            overflow="ellipsis",
            width=width,
        )
    for row in rows:
        table.add_row(*(text(cell) for cell in row))
    out.print(table)


def job_detail(record: JobRecord, now: float) -> None:
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    data = job_json(record)
    for key in ("id", "state", "queue", "priority", "attempts", "max_attempts", "name", "path"):
        table.add_row(key, text("-" if data[key] is None else data[key]))
    if record.max_runtime is not None:
        table.add_row("max_runtime", f"{record.max_runtime:g} s")
    if record.retry is not None:
        table.add_row("retry", text(record.retry))
    table.add_row("args", text(json.dumps(record.args, ensure_ascii=False)))
    if record.kwargs:
        table.add_row("kwargs", text(json.dumps(record.kwargs, ensure_ascii=False)))
    for key, value in (
        ("run_at", record.run_at),
        ("locked_at", record.locked_at),
        ("failed_at", record.failed_at),
        ("cancelled_at", record.cancelled_at),
        ("finished_at", record.finished_at),
        ("keep_until", record.keep_until),
        ("created_at", record.created_at),
        ("updated_at", record.updated_at),
    ):
        if value is not None:
            table.add_row(key, f"{data[key]} ({ago(value, now)})")
    if record.locked_by:
        table.add_row("locked_by", text(record.locked_by))
    if record.unique_key:
        table.add_row("unique_key", text(record.unique_key))
    if record.result_json is not None:
        table.add_row("result", text(json.dumps(record.result, ensure_ascii=False)))
    elif record.keep_result and record.state == "succeeded":
        table.add_row("result", "- (its return value was not JSON: not stored)")
    out = console()
    out.print(table)
    if record.last_error:
        out.print(text("last_error", style="bold"))
        # Each line whole (soft_wrap): the terminal wraps it for the eye; a copied path or
        # message must not come with a line break the console put in.
        out.print(text(record.last_error.rstrip()), soft_wrap=True)


def seconds_text(value: float | None) -> str:
    """A run or wait time for a table: ``850µs``, ``12.5ms``, ``3.20s``, ``4m05s``."""
    if value is None:
        return "-"
    if value < 0.001:
        return f"{value * 1e6:.0f}µs"
    if value < 1:
        return f"{value * 1e3:.1f}ms"
    if value < 60:
        return f"{value:.2f}s"
    return duration(value)


def stats_table(data: dict[str, Any], since: str) -> None:
    """``litejobs stats``: one line per queue, then the total."""
    from rich.table import Table

    kinds = ("succeeded", "errored", "failed", "cancelled")
    out = console()
    out.print(f"since {data['since']} ({since})")
    if not data["queues"]:
        out.print("no outcomes")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("QUEUE")
    for kind in kinds:
        table.add_column(kind.upper(), justify="right")
    table.add_column("RUN p50 / p95 / p99", justify="right")
    table.add_column("WAIT p50 / p95 / p99", justify="right")
    rows = [*data["queues"].items(), ("total", data["total"])]
    for queue, one in rows:
        times = [
            " / ".join(seconds_text(one[series][f"p{p}"]) for p in (50, 95, 99))
            for series in ("run_seconds", "wait_seconds")
        ]
        style = "bold" if queue == "total" else ""
        table.add_row(text(queue, style), *(text(one[k], style) for k in kinds), *times)
    out.print(table)
