"""``litejobs init`` and ``litejobs new job NAME`` (the work is in :mod:`litejobs.scaffold`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .app import settings

if TYPE_CHECKING:
    from litejobs.scaffold import Written


def init(
    module: Annotated[
        str,
        typer.Option("--module", metavar="MODULE", help="Dotted name of the jobs module to write."),
    ] = "jobs",
) -> None:
    """Set this directory up for litejobs; never overwrites a file.

    Writes MODULE (a JobManager called jobs, its queues and worker groups, and later), creates
    var/ for the SQLite database and adds [tool.litejobs] app = "MODULE:jobs" to
    ./pyproject.toml, so that a plain `litejobs work` here finds the app.

    Examples:

      litejobs init

      litejobs init --module myapp.jobs
    """
    from litejobs.scaffold import init_project

    _report(init_project(Path.cwd(), module))
    sys.stdout.write("next: litejobs new job send_welcome_email\n")


def new_job(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The job function's name.")],
    queue: Annotated[
        str | None, typer.Option("--queue", metavar="QUEUE", help="The job's queue.")
    ] = None,
) -> None:
    """Add a job function NAME to the app's module, and a test for it.

    The test (tests/test_NAME_job.py) runs the job through litejobs.testing and passes as
    written; make it say what the job should do.

    Example: litejobs new job send_welcome_email --queue email
    """
    from litejobs.errors import ConfigurationError
    from litejobs.scaffold import new_job as add_job

    module, attr, path = _app_module(settings(ctx).source().spec)
    if queue is not None:
        from litejobs.scheduling import check_queue

        check_queue(queue, settings(ctx).manager().queues)
    if path is None:
        raise ConfigurationError(f"cannot find the file of module {module!r}")
    _report(add_job(Path.cwd(), path, module, attr, name, queue))
    sys.stdout.write(f"next: python -m pytest tests/test_{name}_job.py\n")


def _app_module(spec: str | None) -> tuple[str, str, Path | None]:
    """The app's module name, manager attribute and source file."""
    import importlib.util

    from litejobs.errors import ConfigurationError

    if spec is None:
        raise ConfigurationError(
            "no app found (no --app, $LITEJOBS_APP or [tool.litejobs] app in ./pyproject.toml); "
            "run `litejobs init` first"
        )
    module, _, attr = spec.partition(":")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise ConfigurationError(f"cannot find app module {module!r}: {exc}") from None
    origin = found.origin if found is not None else None
    return module, attr, Path(origin) if origin and origin.endswith(".py") else None


def _report(done: list[Written]) -> None:
    sys.stdout.writelines(f"{item.what}\n" for item in done)


def register(app: typer.Typer) -> None:
    app.command()(init)
    new = typer.Typer(
        name="new", help="Add code to the app: litejobs new job NAME.", no_args_is_help=True
    )
    new.command("job")(new_job)
    app.add_typer(new, name="new")
