"""Values for shell completion: queue names and job states.

Completion runs on every Tab press, inside the user's prompt: it must be quick and must never
print an error there. So queue names come from the app's declared queues (no database is
opened), and anything that goes wrong, such as an app that does not import, yields no candidates.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import typer


def queue_option(help: str) -> Any:
    """``--queue QUEUE``, completing the app's queue names."""
    return typer.Option("--queue", metavar="QUEUE", autocompletion=queue_names, help=help)


def state_option(help: str) -> Any:
    """``--state STATE``, completing the job states."""
    return typer.Option("--state", metavar="STATE", autocompletion=job_states, help=help)


def queue_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """The app's queues that start with ``incomplete`` (the global options are honoured)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            names = _declared_queues(ctx.find_root().params)
    except Exception:  # an app that fails to import must not break the user's prompt
        return []
    return [name for name in names if name.startswith(incomplete)]


def _declared_queues(options: dict[str, Any]) -> list[str]:
    from litejobs.appload import extend_import_path, find_app, load_manager

    extend_import_path(options.get("path") or [])
    source = find_app(options.get("app"))
    if source.spec is None:
        return ["default"]
    manager = load_manager(source)
    if manager.queues is not None:
        return sorted(manager.queues)
    found = {"default"} | {job.queue for job in manager.jobs.values()}
    for group in manager.workers:
        found.update(group.queues or ())
    return sorted(found)


def job_states(incomplete: str) -> list[str]:
    """The job states ``--state`` accepts."""
    from litejobs.adapters.base import JOB_STATES

    return [state for state in JOB_STATES if state.startswith(incomplete)]
