"""The typer application: global options and the shared per-invocation settings.

Commands live in :mod:`litejobs.cli.jobs` (enqueue and inspection) and :mod:`litejobs.cli.run`
(running workers); they all reach the manager and its adapter through :class:`Settings`, which
loads the app only when a command first needs it, so ``--help`` never imports user code.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperArgument, TyperGroup

if TYPE_CHECKING:
    from litejobs.adapters.base import Adapter
    from litejobs.appload import AppSource
    from litejobs.manager import JobManager

HELP = """Background jobs for Python in one SQLite file.

Examples:

  litejobs enqueue myapp.jobs:send_email --args '[42]' --wait 60

  litejobs workoff                     # run everything due now, then exit

  litejobs work -n default:2,email:1   # attached workers; Ctrl-C stops them

  litejobs list --state failed   ·   litejobs retry --failed   ·   litejobs status

  litejobs cancel 42   ·   litejobs pause email   ·   litejobs resume email
"""


@dataclasses.dataclass
class Settings:
    """Global options of one invocation, and the manager built from them on first use.

    Where jobs are stored follows :mod:`litejobs.location`: ``--db`` is ``LITEJOBS_DB`` for this
    command (and every process it starts), so it fills in what the app leaves open, and an app
    whose adapters store jobs elsewhere is refused (exit 2) rather than overridden.
    """

    db: str | None = None
    app: str | None = None
    paths: list[str] = dataclasses.field(default_factory=list)
    verbose: int = 0
    quiet: int = 0
    log_format: str = "text"
    _manager: JobManager | None = None
    _source: AppSource | None = None
    _config_errors: list[Exception] = dataclasses.field(default_factory=list)

    def source(self) -> AppSource:
        from litejobs.appload import extend_import_path, find_app

        if self._source is None:
            extend_import_path(self.paths)
            self._source = find_app(self.app)
        return self._source

    def manager(self, *, running: bool = False) -> JobManager:
        """The app's manager. A bad ``[[tool.litejobs.recurring]]`` entry is skipped with a
        warning, so the operator can still inspect; commands that run workers (``running``)
        refuse it instead, naming the entry: they would silently never fire it."""
        from litejobs.appload import load_manager

        if self._manager is None:
            self._manager = load_manager(
                self.source(), self.db, on_config_error=self._config_errors.append
            )
            if not running:
                for error in self._config_errors:
                    warn(f"{error}; skipped (work, workoff and start refuse it)")
        if running and self._config_errors:
            raise self._config_errors[0]
        return self._manager

    def adapter(self, *, existing: bool = False, looking: bool = False) -> Adapter:
        """The manager's adapter; ``existing``: for commands that change what is there, which
        must never create a database behind a mistyped ``--db`` (exit 3); ``looking``: for
        commands that only read, which also work on a database they cannot write."""
        adapter = self.manager().adapter()
        if existing or looking:
            require_database(adapter)
        if looking:
            adapter.inspect_only()
        return adapter


def require_database(adapter: Adapter) -> None:
    """Raise :class:`~litejobs.errors.StorageError` ("no database at ...") unless it exists."""
    import os

    from litejobs.errors import StorageError
    from litejobs.location import place_of

    exists = getattr(adapter, "exists", None)
    if exists is None or exists():
        return
    where = place_of(adapter).label
    why = ""
    if adapter.name == "sqlite" and not os.path.isdir(os.path.dirname(where)):
        why = f" (directory {os.path.dirname(where)} does not exist)"
    raise StorageError(
        f"no database at {where}{why}; check --db / LITEJOBS_DB and the app's adapter "
        "(only enqueue and the worker commands create one)"
    )


def warn(message: str, kind: str = "warning") -> None:
    """One ``litejobs: warning: ...`` (or ``note``) line on stderr; the command goes on."""
    import sys

    sys.stderr.write(f"litejobs: {kind}: {' '.join(message.split())}\n")


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_object(Settings)
    if obj is None:  # pragma: no cover - the callback always sets it
        obj = ctx.obj = Settings()
    return obj


def _version(value: bool) -> None:
    if value:
        from litejobs import __version__

        typer.echo(f"litejobs {__version__}")
        raise typer.Exit(0)


def _options(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="LITEJOBS_DB",
            metavar="PATH|URL",
            help="SQLite file or postgresql:// URL [default: the user data dir's jobs.db].",
        ),
    ] = None,
    app: Annotated[
        str | None,
        typer.Option(
            "--app",
            envvar="LITEJOBS_APP",
            metavar="MODULE:ATTR",
            help="Your JobManager, e.g. myapp.jobs:jobs [default: [tool.litejobs] app "
            "in ./pyproject.toml, else a manager for all queues].",
        ),
    ] = None,
    path: Annotated[
        list[str] | None,
        typer.Option("--path", metavar="DIR", help="Extra import directory (repeatable)."),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, show_default=False, help="More log output (DEBUG)."
        ),
    ] = 0,
    quiet: Annotated[
        int,
        typer.Option(
            "--quiet",
            "-q",
            count=True,
            show_default=False,
            help="Less log output (-qq: errors only).",
        ),
    ] = 0,
    log_format: Annotated[
        str,
        typer.Option("--log-format", metavar="text|json", help="Log line format."),
    ] = "text",
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print version."),
    ] = False,
) -> None:
    from litejobs.errors import ConfigurationError
    from litejobs.logconfig import setup_logging

    if log_format not in ("text", "json"):
        raise ConfigurationError(f"--log-format must be 'text' or 'json', got {log_format!r}")
    db = _pin_db(ctx, db or None)
    ctx.obj = Settings(
        db=db,
        app=app or None,
        paths=list(path or []),
        verbose=verbose,
        quiet=quiet,
        log_format=log_format,
    )
    setup_logging(verbose=verbose, quiet=quiet, fmt=log_format)  # type: ignore[arg-type]


def _pin_db(ctx: typer.Context, db: str | None) -> str | None:
    """Check ``--db`` and make it ``$LITEJOBS_DB`` while the command runs, for this process and
    those it starts (workers, detached supervisors, jobs that enqueue), a relative path made
    absolute: the app's ``SQLiteAdapter()`` then uses it with all its options, and any manager
    storing jobs elsewhere fails as it is built, naming both places (:mod:`litejobs.location`).
    The environment is restored when the command ends (``main()`` may run in a caller's
    process)."""
    import os

    from litejobs.location import DB_ENV, POSTGRES_SCHEMES, check_db_url, sqlite_path

    if db is None:
        return None
    check_db_url(db)
    if not db.startswith(POSTGRES_SCHEMES):
        db = os.path.abspath(sqlite_path(db))
    before = os.environ.get(DB_ENV)
    os.environ[DB_ENV] = db

    def restore() -> None:
        if before is None:
            os.environ.pop(DB_ENV, None)
        else:
            os.environ[DB_ENV] = before

    ctx.call_on_close(restore)
    return db


#: The module of :mod:`litejobs.cli` that defines each command, in the order ``--help`` lists
#: them. A command's module is imported (and its typer signature turned into a click command)
#: only when that command runs: ``litejobs list`` pays for ``list`` alone, not for the runtime
#: behind ``work`` or the scaffolding behind ``init``.
COMMAND_MODULES = {
    "enqueue": "jobs",
    "list": "jobs",
    "show": "jobs",
    "retry": "jobs",
    "cancel": "control",
    "delete": "jobs",
    "clear": "jobs",
    "pause": "control",
    "resume": "control",
    "status": "jobs",
    "prune": "history",
    "stats": "history",
    "metrics": "history",
    "work": "run",
    "workoff": "run",
    "worker": "run",
    "start": "run",
    "stop": "run",
    "restart": "run",
    "recurring": "recurring",
    "doctor": "doctor",
    "init": "scaffold",
    "new": "scaffold",
}


class LazyGroup(TyperGroup):
    """The top-level group: builds a command from its module on first lookup."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = self.commands.get(cmd_name)
        if found is None and cmd_name in COMMAND_MODULES:
            found = self.commands[cmd_name] = _load_command(cmd_name)
        return found


def _load_command(name: str) -> Any:
    """The click command ``name``: its module registers its commands on a scratch typer app,
    of which only ``name`` is converted (the module stays the authority on its commands)."""
    import importlib

    from typer.main import get_command_name, get_group

    module = importlib.import_module(f"{__package__}.{COMMAND_MODULES[name]}")
    scratch = typer.Typer(rich_markup_mode=None)
    module.register(scratch)
    scratch.registered_commands = [
        info
        for info in scratch.registered_commands
        if (info.name or get_command_name(getattr(info.callback, "__name__", ""))) == name
    ]
    scratch.registered_groups = [g for g in scratch.registered_groups if g.name == name]
    command = get_group(scratch).commands[name]
    _plain_usage(command)
    return command


class _PlainArgument(TyperArgument):
    """An argument shown as its metavar (``ID``, ``[ID]`` when optional) in usage lines, not
    typer's ``{ID}`` for a required one."""

    def make_metavar(self, ctx: Any, *, usage: bool = False) -> str:
        if self.metavar is None:
            return super().make_metavar(ctx, usage=usage)
        return f"[{self.metavar}]" if usage and not self.required else self.metavar


def _plain_usage(command: Any) -> None:
    for sub in getattr(command, "commands", {}).values():
        _plain_usage(sub)
    for param in command.params:
        if type(param) is TyperArgument:
            param.__class__ = _PlainArgument


def build_command() -> Any:
    """The click command behind the typer app (the caller runs it non-standalone).

    Help is plain text (``rich_markup_mode=None``): help strings are shown as written, so
    ``[[tool.litejobs.recurring]]`` or a ``[default: ...]`` needs no escaping.
    """
    app = typer.Typer(
        name="litejobs",
        help=HELP,
        cls=LazyGroup,
        no_args_is_help=True,
        add_completion=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
    app.callback()(_options)
    return typer.main.get_command(app)
