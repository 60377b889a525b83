"""Values for shell completion: queue names, job names and job states.

Completion runs on every Tab press, inside the user's prompt: it must be quick and must never
print an error there. So queue and job names come from what the app declares (no database is
opened), and anything that goes wrong, such as an app that does not import, yields no
candidates.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from litejobs.manager import JobManager


def queue_option(help: str) -> Any:
    """``--queue QUEUE``, completing the app's queue names."""
    return typer.Option("--queue", metavar="QUEUE", autocompletion=queue_names, help=help)


def state_option(help: str) -> Any:
    """``--state STATE``, completing the job states."""
    return typer.Option("--state", metavar="STATE", autocompletion=job_states, help=help)


def queue_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """The app's queues that start with ``incomplete`` (the global options are honoured)."""
    return _quietly(lambda: _declared_queues(ctx.find_root().params), incomplete)


def job_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """The names of the app's declared jobs (``@jobs.job``) that start with ``incomplete``."""
    return _quietly(lambda: _declared_job_names(ctx.find_root().params), incomplete)


def _quietly(find: Callable[[], list[str]], incomplete: str) -> list[str]:
    """``find()``'s names that start with ``incomplete``; nothing (and nothing printed into
    the prompt) if the app prints, fails to import or raises."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            names = find()
    except Exception:  # an app that fails to import must not break the user's prompt
        return []
    return [name for name in names if name.startswith(incomplete)]


def _declared_job_names(options: dict[str, Any]) -> list[str]:
    manager = _app_manager(options)
    return [] if manager is None else sorted({job.name for job in manager.jobs.values()})


def _declared_queues(options: dict[str, Any]) -> list[str]:
    manager = _app_manager(options)
    if manager is None:
        return ["default"]
    if manager.queues is not None:
        return sorted(manager.queues)
    found = {"default"} | {job.queue for job in manager.jobs.values()}
    for group in manager.workers:
        found.update(group.queues or ())
    return sorted(found)


def _app_manager(options: dict[str, Any]) -> JobManager | None:
    """The app the command line names (``--app``, ``$LITEJOBS_APP``, ``[tool.litejobs]``, with
    ``--path``), loaded without opening its database; ``None`` when there is no app."""
    from litejobs.appload import extend_import_path, find_app, load_manager

    extend_import_path(options.get("path") or [])
    source = find_app(options.get("app"))
    return None if source.spec is None else load_manager(source)


def job_states(incomplete: str) -> list[str]:
    """The job states ``--state`` accepts."""
    from litejobs.adapters.base import JOB_STATES

    return [state for state in JOB_STATES if state.startswith(incomplete)]
