"""Commands that put jobs in and look at them: enqueue, list, show, retry, delete, clear, status.

Each one parses its input, hands validation to the library (``litejobs.scheduling``), calls one
adapter method and prints. Nothing here decides how jobs behave.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import complete, render
from .app import Settings, settings

if TYPE_CHECKING:
    from litejobs.adapters.base import Adapter, JobRecord, JobState
    from litejobs.daemon import DaemonInfo
    from litejobs.liveness import WorkerRecord
    from litejobs.manager import Scheduler

QueueFilter = Annotated[str | None, complete.queue_option("Only this queue.")]


def _json_arg(text: str | None, option: str, kind: type) -> Any:
    from litejobs.errors import ValidationError

    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{option} is not valid JSON ({exc.msg} at character {exc.pos}): {text!r}"
        ) from None
    except RecursionError:
        raise ValidationError(f"{option} nests too deeply to parse (about 1,000 levels)") from None
    if not isinstance(value, kind):
        want, example = (
            ("a JSON array", "'[1, \"a\"]'")
            if kind is list
            else ("a JSON object", "'{\"key\": 1}'")
        )
        raise ValidationError(
            f"{option} must be {want}, e.g. {option} {example}; got {type(value).__name__}"
        )
    return value


def _check_queue_filter(queue: str | None) -> None:
    """A ``--queue`` filter must be a name storage can compare (valid UTF-8, not empty)."""
    from litejobs.scheduling import check_queue

    if queue is not None:
        check_queue(queue, None)


def _check_job_id(job_id: int) -> None:
    from litejobs.bounds import check_job_id

    check_job_id(job_id)


def _wait_until(text: str | None) -> datetime | None:
    from litejobs.errors import InvalidWaitError

    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidWaitError(
            f"--wait-until {text!r} is not an ISO 8601 time; e.g. 2030-01-01T09:00:00Z "
            "(without an offset it is local time)"
        ) from None


# The options of `enqueue`, declared once here so the command itself reads as what it does.
JobArg = Annotated[str | None, typer.Argument(metavar="MODULE:FUNC", help="The function to run.")]
ShellOpt = Annotated[
    str | None,
    typer.Option("--shell", metavar="CMD", help="Run CMD with /bin/sh instead of a function."),
]
ArgsOpt = Annotated[
    str | None, typer.Option("--args", metavar="JSON", help="Positional args, a JSON array.")
]
KwargsOpt = Annotated[
    str | None, typer.Option("--kwargs", metavar="JSON", help="Keyword args, a JSON object.")
]
QueueOpt = Annotated[str | None, complete.queue_option("Queue [default: the job's, else default].")]
PriorityOpt = Annotated[
    int | None,
    typer.Option("--priority", metavar="N", help="1 (first) .. 100 (last) [default: 50]."),
]
WaitOpt = Annotated[
    float | None, typer.Option("--wait", metavar="SECONDS", help="Run no sooner than this.")
]
WaitUntilOpt = Annotated[
    str | None,
    typer.Option("--wait-until", metavar="ISO8601", help="Run no sooner than this time."),
]
MaxAttemptsOpt = Annotated[
    int | None,
    typer.Option("--max-attempts", metavar="N", help="Override the worker's max attempts."),
]
MaxRuntimeOpt = Annotated[
    float | None,
    typer.Option("--max-runtime", metavar="SECONDS", help="This job's own hard timeout (seconds)."),
]
RetryOpt = Annotated[
    str | None,
    typer.Option(
        "--retry",
        metavar="S,S,...",
        help="This job's own retry intervals, seconds after attempt 1, 2, ... (the last "
        "one repeats), e.g. 10,60,600.",
    ),
]
UniqueKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--unique-key",
        metavar="KEY",
        help="While a job with KEY is waiting or running, print its id and store nothing.",
    ),
]
UniqueForOpt = Annotated[
    float | None,
    typer.Option(
        "--unique-for",
        metavar="SECONDS",
        help="Also hold the key this long after enqueue, once its job succeeded (without "
        "--unique-key: the key is the function and its arguments).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the stored row as JSON.")]


def enqueue(
    ctx: typer.Context,
    job: JobArg = None,
    shell: ShellOpt = None,
    args: ArgsOpt = None,
    kwargs: KwargsOpt = None,
    queue: QueueOpt = None,
    priority: PriorityOpt = None,
    wait: WaitOpt = None,
    wait_until: WaitUntilOpt = None,
    max_attempts: MaxAttemptsOpt = None,
    max_runtime: MaxRuntimeOpt = None,
    retry: RetryOpt = None,
    unique_key: UniqueKeyOpt = None,
    unique_for: UniqueForOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Schedule MODULE:FUNC and print the new job's id.

    Everything is checked before anything is stored: the function must import and be callable,
    --args a JSON array, --kwargs a JSON object, the queue one the app declares.

    Examples:

      litejobs enqueue myapp.jobs:send_email --args '[42]'

      litejobs enqueue reports:nightly --kwargs '{"day": "2030-01-01"}' --queue reports

      litejobs enqueue myapp.jobs:ping --wait-until 2030-01-01T09:00:00Z --priority 10

      litejobs enqueue --shell 'pg_dump mydb > /backups/mydb.sql' --queue backups

      litejobs enqueue myapp.jobs:sync --args '[42]' --max-runtime 30 --retry 10,60,600

      litejobs enqueue myapp.jobs:digest --args '[42]' --unique-key digest:42 --unique-for 3600
    """
    from litejobs.errors import InvalidWaitError

    target, args = _target(job, shell, args, kwargs)
    parsed_args = _json_arg(args, "--args", list)
    parsed_kwargs = _json_arg(kwargs, "--kwargs", dict)
    if wait is not None and wait_until is not None:
        raise InvalidWaitError("give either --wait or --wait-until, not both")
    if wait is not None and not math.isfinite(wait):
        raise InvalidWaitError(f"--wait must be a finite number of seconds, got {wait}")
    when = _wait_until(wait_until)
    scheduler = _scheduler_for(target, settings(ctx))
    new = scheduler.build(
        target,
        parsed_args,
        kwargs=parsed_kwargs,
        queue=queue,
        priority=priority,
        wait=wait,
        wait_until=when,
        max_attempts=max_attempts,
        max_runtime=max_runtime,
        retry=_intervals(retry),
        unique_key=unique_key,
        unique_for=unique_for,
    )
    job_id = scheduler.adapter.enqueue(new)
    if as_json:
        render.print_json(render.job_json(scheduler.adapter.require(job_id)))
    else:
        sys.stdout.write(f"{job_id}\n")


def _target(
    job: str | None, shell: str | None, args: str | None, kwargs: str | None
) -> tuple[str, str | None]:
    """What ``enqueue`` runs, and its ``--args``: MODULE:FUNC, or for ``--shell CMD`` the
    built-in job ``litejobs.builtins:shell`` with CMD as its argument."""
    from litejobs.errors import ValidationError

    if shell is None:
        if job is None:
            raise ValidationError("missing MODULE:FUNC to run (or --shell CMD)")
        return job, args
    if job is not None or args is not None or kwargs is not None:
        raise ValidationError("give either MODULE:FUNC (with --args/--kwargs) or --shell CMD")
    if not shell.strip():
        raise ValidationError("--shell needs a command, e.g. --shell 'echo hello'")
    return "litejobs.builtins:shell", json.dumps([shell])


def _intervals(text: str | None) -> list[float] | None:
    """``--retry 10,60,600`` as a list of seconds."""
    from litejobs.errors import ValidationError

    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ValidationError(
            f"--retry takes seconds separated by commas, e.g. --retry 10,60,600; got {text!r}"
        ) from None


def _scheduler_for(job: str, cfg: Settings) -> Scheduler:
    """The app's ``later``; for a job declared on another manager, that manager's, as for
    ``litejobs.enqueue`` (without ``--app``), or the app's if both store jobs in one place."""
    from litejobs.location import check_same
    from litejobs.manager import declared_scheduler

    scheduler = cfg.manager().create_scheduler()
    declared = declared_scheduler(job)
    if declared is None or declared.manager is scheduler.manager:
        return scheduler
    source = cfg.source()
    if source.spec is None:
        return declared
    check_same(scheduler.adapter, declared.adapter, f"job {job!r}", f"the app {source.spec}")
    return scheduler


def list_jobs(
    ctx: typer.Context,
    queue: QueueFilter = None,
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            metavar="STATE",
            autocompletion=complete.job_states,
            help="scheduled, ready, reserved, running, failed, succeeded (kept jobs) or "
            "cancelled; repeat for several.",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            metavar="NAME",
            autocompletion=complete.job_names,
            help="Only jobs of this function (its name, e.g. send_welcome_email).",
        ),
    ] = None,
    newest: Annotated[
        bool, typer.Option("--newest", help="Newest first (default: oldest first).")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", help="At most this many (0: all).")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of jobs.")] = False,
) -> None:
    """List jobs, oldest first (--newest: newest first), at most 100 unless --limit says.
    When there are more, a last line on stderr says how many: "showing 100 of 2345 jobs".

    Examples:

      litejobs list --state failed --newest

      litejobs list --state ready --state scheduled --name send_welcome_email

      litejobs list --queue email --json | jq '.[].id'
    """
    states = _check_states(state)
    _check_list_limit(limit)
    _check_queue_filter(queue)
    _check_name_filter(name)
    adapter = settings(ctx).adapter(looking=True)
    records = adapter.list_jobs(
        queue=queue, state=states, name=name, newest=newest, limit=limit or None
    )
    stranded = _stranded(adapter, records)
    if as_json:
        render.print_json([render.job_json(r, r.id in stranded) for r in records])
        return
    render.jobs_table(records, adapter.clock.now(), stranded)
    if limit and len(records) == limit:
        total = adapter.count_jobs(queue=queue, state=states, name=name)
        if total > limit:
            sys.stderr.write(render.shown_of(limit, total, newest) + "\n")


def _check_states(given: list[str] | None) -> list[JobState] | None:
    """``--state`` values, each a known state; repeats folded, in the states' own order."""
    from litejobs.adapters.base import JOB_STATES
    from litejobs.errors import ValidationError

    if not given:
        return None
    for one in given:
        if one not in JOB_STATES:
            raise ValidationError(f"unknown state {one!r}; use one of {', '.join(JOB_STATES)}")
    return [s for s in JOB_STATES if s in given]


def _check_list_limit(limit: int) -> None:
    from litejobs.bounds import check_limit
    from litejobs.errors import ValidationError

    if limit < 0:
        raise ValidationError(f"--limit must be 0 (all) or more, got {limit}")
    check_limit(limit)


def _check_name_filter(name: str | None) -> None:
    """A ``--name`` filter must be text storage can compare: valid UTF-8, not empty."""
    from litejobs.bounds import check_text
    from litejobs.errors import ValidationError

    if name is None:
        return
    if not name.strip():
        raise ValidationError("--name needs a job's function name, e.g. --name send_email")
    check_text(name, "--name")


def show(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json", help="The job as a JSON object.")] = False,
) -> None:
    """Show one job, with its last error in full.

    Example: litejobs show 42
    """
    _check_job_id(job_id)
    adapter = settings(ctx).adapter(looking=True)
    record = adapter.require(job_id)
    if as_json:
        render.print_json(render.job_json(record))
    else:
        render.job_detail(record, adapter.clock.now())


def retry(
    ctx: typer.Context,
    job_id: Annotated[int | None, typer.Argument(metavar="ID", show_default=False)] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Retry every failed job.")] = False,
    queue: Annotated[str | None, complete.queue_option("With --failed: only this queue.")] = None,
) -> None:
    """Make a failed or scheduled job ready now (attempts start again for a failed job).

    Examples:

      litejobs retry 42

      litejobs retry --failed --queue email
    """
    from litejobs.errors import ValidationError

    if (job_id is None) == (not failed):
        raise ValidationError("give a job ID or --failed (one of them)")
    if queue is not None and not failed:
        raise ValidationError("--queue only goes with --failed")
    if job_id is not None:
        _check_job_id(job_id)
    _check_queue_filter(queue)
    adapter = settings(ctx).adapter(existing=True)
    if failed:
        count = adapter.retry_failed(queue)
        sys.stdout.write(f"retried {count} failed job{'s' if count != 1 else ''}\n")
        return
    assert job_id is not None
    before = adapter.require(job_id)
    if before.state in ("ready", "running"):
        sys.stdout.write(f"job {job_id} is {before.state}; nothing to retry\n")
        return
    if not adapter.retry(job_id):
        adapter.require(job_id)  # deleted in between: the same clear error
    sys.stdout.write(f"job {job_id} is ready (was {before.state})\n")


def delete(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="ID")],
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Delete it even while a worker runs it (the worker is not stopped)."
        ),
    ] = False,
) -> None:
    """Delete one job. A job a worker is running is refused: cancel it first (`litejobs cancel
    ID` stops it), or delete it anyway with --force.

    Examples:

      litejobs delete 42

      litejobs cancel 42 && litejobs delete 42
    """
    _check_job_id(job_id)
    adapter = settings(ctx).adapter(existing=True)
    if not adapter.delete(job_id, force=force):
        raise adapter.missing(job_id)
    sys.stdout.write(f"deleted job {job_id}\n")


def clear(
    ctx: typer.Context,
    queue: QueueFilter = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed jobs.")] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask (needed off a terminal).")
    ] = False,
) -> None:
    """Delete all jobs, or one queue's, or only failed ones. Asks first on a terminal;
    elsewhere (cron, scripts) refuses without --yes.

    Examples:

      litejobs clear --failed --yes

      litejobs clear --queue email
    """
    _check_queue_filter(queue)
    what = ("failed jobs" if failed else "jobs") + (f" in queue {queue!r}" if queue else "")
    if not yes and not sys.stdin.isatty():
        from litejobs.errors import ValidationError

        raise ValidationError(
            f"clear deletes all {what}: add --yes to confirm (no terminal to ask on)"
        )
    adapter = settings(ctx).adapter(existing=True)
    if not yes and not typer.confirm(f"Delete all {what}?", default=False):
        sys.stdout.write("nothing deleted\n")
        raise typer.Exit(1)
    count = adapter.clear(queue=queue, failed_only=failed)
    noun = what.replace("jobs", "job" if count == 1 else "jobs", 1)
    sys.stdout.write(f"deleted {count} {noun}\n")


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="The status as a JSON object.")] = False,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", metavar="DIR", help="Where `start` keeps its pid files."),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Detached supervisors of every database and app.")
    ] = False,
) -> None:
    """Jobs per queue and state, paused queues and queue limits, the oldest ready job's age,
    workers and the detached supervisors of this database and app.

    Example: litejobs status --json
    """
    from litejobs.adapters.base import JOB_STATES

    cfg = settings(ctx)
    adapter = cfg.adapter(looking=True)
    now = adapter.clock.now()
    counts = adapter.counts()
    oldest = adapter.oldest_ready_at()
    from litejobs.inspection import gone_workers, orphaned

    daemons = _daemons(cfg, state_dir, all_)
    rows = adapter.workers()
    gone = gone_workers(adapter, rows)
    workers = [
        {**render.worker_json(w, now, gone.get(w.token)), "supervisor": _supervisor_of(w, daemons)}
        for w in rows
    ]
    held = adapter.list_jobs(state=["reserved", "running"], limit=None)
    totals = {s: sum(q.get(s, 0) for q in counts.values()) for s in JOB_STATES}
    controls = adapter.queue_controls()
    data = {
        "queues": {q: {s: c.get(s, 0) for s in JOB_STATES} for q, c in sorted(counts.items())},
        "totals": totals,
        "queue_controls": {
            q: {"paused": c.paused, "paused_at": render.iso(c.paused_at), "limit": c.limit}
            for q, c in controls.items()
        },
        "oldest_ready_at": render.iso(oldest),
        "oldest_ready_age_seconds": None if oldest is None else round(max(0.0, now - oldest), 3),
        "workers": workers,
        "held_by_gone_workers": sorted(orphaned(held, rows, gone)),
        "supervisors": [_daemon_json(d) for d in daemons],
    }
    if as_json:
        render.print_json(data)
        return
    _status_tables(data, JOB_STATES)


def _stranded(adapter: Adapter, records: list[JobRecord]) -> set[int]:
    """Held jobs among ``records`` whose worker is gone (shown as such)."""
    from litejobs.inspection import gone_workers, orphaned

    if not any(r.state in ("reserved", "running") for r in records):
        return set()
    workers = adapter.workers()
    return orphaned(records, workers, gone_workers(adapter, workers))


def _daemons(cfg: Settings, state_dir: Path | None, all_: bool) -> list[DaemonInfo]:
    from litejobs import daemon

    from .run import identity

    return daemon.running(state_dir=state_dir, identity=None if all_ else identity(cfg))


def _supervisor_of(worker: WorkerRecord, daemons: list[DaemonInfo]) -> int | None:
    from litejobs.daemon import supervisor_of

    return supervisor_of(worker.host, worker.pid, daemons)


def _daemon_json(info: DaemonInfo) -> dict[str, Any]:
    data: dict[str, Any] = render.plain(info)
    data["started_at"] = render.iso(info.started_at)
    return data


def _status_tables(data: dict[str, Any], states: tuple[str, ...]) -> None:
    from rich.table import Table

    text = render.text
    out = render.console()
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("QUEUE")
    for s in states:
        table.add_column(s.upper(), justify="right")
    for queue, counts in data["queues"].items():
        table.add_row(text(queue), *(str(counts[s]) for s in states))
    if data["queues"]:
        table.add_row(text("total", "bold"), *(text(data["totals"][s], "bold") for s in states))
        out.print(table)
    else:
        out.print("no jobs")
    _controls_lines(out, data["queue_controls"], data["queues"])
    age = data["oldest_ready_age_seconds"]
    out.print(f"oldest ready job: {'-' if age is None else render.duration(age) + ' old'}")
    stranded = data["held_by_gone_workers"]
    if stranded:
        ids = ", ".join(str(i) for i in stranded[:10]) + (" ..." if len(stranded) > 10 else "")
        out.print(
            f"running jobs whose worker is gone: {len(stranded)} ({ids}); they run again as "
            "soon as any worker looks (litejobs work / workoff)"
        )
    alive = [w for w in data["workers"] if w["alive"]]
    out.print(f"workers alive: {len(alive)}")
    for w in data["workers"]:
        seen = render.duration(w["seen_seconds_ago"])
        mark = "" if w["alive"] else f" (gone: {w['gone']})"
        if w["supervisor"] is not None:
            mark += f" (detached supervisor {w['supervisor']})"
        out.print(text(f"  {w['name']} pid {w['pid']} queues {w['queues']} seen {seen} ago{mark}"))
    if data["supervisors"]:
        out.print(f"detached supervisors: {len(data['supervisors'])}")
        for d in data["supervisors"]:
            argv = " ".join(str(a) for a in d.get("argv", []))
            out.print(text(f"  pid {d.get('pid')}: litejobs {argv}"))
            out.print(text(f"    started {d.get('started_at')}, log {d.get('log_file')}"))


def _controls_lines(out: Any, controls: dict[str, Any], queues: dict[str, Any]) -> None:
    """``paused queues: ...`` and ``queue limits: ...`` (only when there are any)."""
    text = render.text
    paused = [q for q, c in controls.items() if c["paused"]]
    if paused:
        waiting = {q: queues.get(q, {}).get("ready", 0) for q in paused}
        shown = ", ".join(f"{q} ({waiting[q]} ready)" for q in paused)
        out.print(text(f"paused queues: {shown}; `litejobs resume QUEUE` lets them run"))
    limited = {q: c["limit"] for q, c in controls.items() if c["limit"] is not None}
    if limited:
        held = {
            q: sum(queues.get(q, {}).get(s, 0) for s in ("reserved", "running")) for q in limited
        }
        shown = ", ".join(f"{q} {held[q]}/{n} held" for q, n in limited.items())
        out.print(text(f"queue limits: {shown}"))


def register(app: typer.Typer) -> None:
    app.command()(enqueue)
    app.command("list")(list_jobs)
    app.command()(show)
    app.command()(retry)
    app.command()(delete)
    app.command()(clear)
    app.command()(status)
