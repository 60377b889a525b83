"""Commands that control jobs and queues: cancel, pause, resume.

Each one validates its input, calls one adapter method per job or queue and says, in one line
each, what happened. What a cancel or a pause means is storage's business
(:meth:`litejobs.adapters.base.Adapter.cancel`, ``pause``, ``resume``).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from . import complete
from .app import settings

if TYPE_CHECKING:
    from litejobs.adapters.base import Adapter, JobState

#: How long ``cancel`` waits, by default, for the workers to stop running jobs.
CANCEL_WAIT = 5.0


def cancel(
    ctx: typer.Context,
    job_ids: Annotated[list[int], typer.Argument(metavar="ID...", help="Jobs to cancel.")],
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            help="How long to wait for running jobs to stop (0: do not wait).",
        ),
    ] = CANCEL_WAIT,
) -> None:
    """Cancel jobs: one that has not started never starts; a running one is stopped by its
    worker (within about a second) and its after_cancel hooks run. Cancelled jobs are kept,
    like failed ones: `litejobs retry ID` runs one again. A finished job is left as it is.

    Exits 2 if an ID is unknown (the others are still cancelled).

    Examples:

      litejobs cancel 42

      litejobs cancel 42 43 44 --wait 0

      litejobs list --state cancelled
    """
    from litejobs.bounds import check_job_id
    from litejobs.errors import JobNotFoundError, ValidationError

    if not wait >= 0:
        raise ValidationError(f"--wait must be 0 or more seconds, got {wait}")
    for job_id in job_ids:
        check_job_id(job_id)
    adapter = settings(ctx).adapter(existing=True)
    asked: list[int] = []
    unknown: list[int] = []
    for job_id in job_ids:
        before = adapter.cancel(job_id)
        if before is None:
            unknown.append(job_id)
        elif before == "running":
            asked.append(job_id)
        else:
            sys.stdout.write(_cancel_line(job_id, before) + "\n")
    for line in _await_stops(adapter, asked, wait):
        sys.stdout.write(line + "\n")
    if unknown:
        ids = ", ".join(str(i) for i in unknown)
        raise JobNotFoundError(f"no job with id {ids}; `litejobs list` shows the ids")


def _cancel_line(job_id: int, before: JobState) -> str:
    if before in ("scheduled", "ready", "reserved"):
        return f"job {job_id} cancelled (was {before})"
    return f"job {job_id} is {before}; nothing to cancel"


def _await_stops(adapter: Adapter, job_ids: list[int], wait: float) -> list[str]:
    """Wait up to ``wait`` s for the workers to stop ``job_ids``; one line per job."""
    pending = list(job_ids)
    deadline = time.monotonic() + wait
    lines: dict[int, str] = {}
    while pending:
        for job_id in list(pending):
            record = adapter.get(job_id)
            if record is None or record.state != "running":
                pending.remove(job_id)
                lines[job_id] = _stopped_line(job_id, None if record is None else record.state)
        remaining = deadline - time.monotonic()
        if not pending or remaining <= 0:
            break
        adapter.wait_for_change(min(remaining, 0.05))
    for job_id in pending:
        lines[job_id] = (
            f"job {job_id}: cancel requested; its worker stops it when it next looks"
            + (f" (still running after {wait:g} s)" if wait else "")
        )
    return [lines[job_id] for job_id in job_ids]


def _stopped_line(job_id: int, state: str | None) -> str:
    if state == "cancelled":
        return f"job {job_id} cancelled (was running; stopped by its worker)"
    what = "and was deleted" if state is None else f"({state})"
    return f"job {job_id} finished before it could be stopped {what}"


#: The queues `pause` and `resume` act on.
QueuesArg = Annotated[
    list[str],
    typer.Argument(metavar="QUEUE...", autocompletion=complete.queue_names, help="Queues."),
]


def pause(
    ctx: typer.Context,
    queues: QueuesArg,
) -> None:
    """Pause queues: no worker on any host claims their jobs until `litejobs resume`; jobs
    already running finish. Stored in the database, so it outlives restarts and deploys;
    `litejobs status` lists paused queues.

    Examples:

      litejobs pause email

      litejobs pause email reports && litejobs status
    """
    adapter, names = _queues(ctx, queues)
    for queue in names:
        if adapter.pause(queue):
            sys.stdout.write(f"paused queue {queue!r}; running jobs finish\n")
        else:
            sys.stdout.write(f"queue {queue!r} was already paused\n")


def resume(
    ctx: typer.Context,
    queues: QueuesArg,
) -> None:
    """Resume paused queues: workers claim their jobs again at once.

    Example: litejobs resume email
    """
    adapter, names = _queues(ctx, queues)
    for queue in names:
        if adapter.resume(queue):
            sys.stdout.write(f"resumed queue {queue!r}\n")
        else:
            sys.stdout.write(f"queue {queue!r} was not paused\n")


def _queues(ctx: typer.Context, queues: list[str]) -> tuple[Adapter, list[str]]:
    """The adapter and the queue names, each one the app declares (when it declares any)."""
    from litejobs.scheduling import check_queue

    cfg = settings(ctx)
    declared = cfg.manager().queues
    names = [check_queue(queue, declared) for queue in queues]
    return cfg.adapter(existing=True), names


def register(app: typer.Typer) -> None:
    app.command()(cancel)
    app.command()(pause)
    app.command()(resume)
