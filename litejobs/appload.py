"""Finding the application's :class:`~litejobs.JobManager` for the command line.

The CLI runs in the operator's project directory, not inside the application, so it has to find
the manager the way the application defines it: ``--app module:attr``, else ``$LITEJOBS_APP``, else
``[tool.litejobs] app = "..."`` in ``./pyproject.toml``. With none of those, a default manager (the
SQLite file at the default path, every queue, one worker) is enough to enqueue any importable
function and to inspect or work the queue.

``--db`` always wins over the app's own storage: an operator pointing the CLI at a file means
that file (with the app's queues, jobs and worker groups kept).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigurationError, LiteJobsError

APP_ENV = "LITEJOBS_APP"
#: Extra import directories, ``os.pathsep``-separated, searched after ``--path`` ones.
PATH_ENV = "LITEJOBS_PATH"


@dataclasses.dataclass(frozen=True)
class AppSource:
    """Where the app reference came from (for error messages): ``--app``, env or pyproject."""

    spec: str | None
    origin: str


def extend_import_path(paths: Sequence[str | os.PathLike[str]] = ()) -> None:
    """Make ``--path`` dirs, ``$LITEJOBS_PATH`` and the current directory importable (in that
    order of priority).

    The current directory comes first among defaults because that is where an operator runs
    ``litejobs enqueue myapp.jobs:send``; a console script does not put it on ``sys.path``.
    """
    for path in paths:
        if not Path(path).is_dir():
            raise ConfigurationError(f"--path {path}: not a directory")
    from_env = [p for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
    for path in from_env:
        if not Path(path).is_dir():
            raise ConfigurationError(f"${PATH_ENV} entry {path}: not a directory")
    wanted = [str(Path(p).resolve()) for p in [*paths, *from_env]]
    for entry in reversed([*wanted, os.getcwd()]):
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)


def find_app(explicit: str | None, *, cwd: Path | None = None) -> AppSource:
    """Which app to load: ``--app``, then ``$LITEJOBS_APP``, then ``./pyproject.toml``."""
    if explicit:
        return AppSource(explicit, "--app")
    env = os.environ.get(APP_ENV)
    if env:
        return AppSource(env, f"${APP_ENV}")
    pyproject = (cwd or Path.cwd()) / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read {pyproject}: {exc}") from None
        value = data.get("tool", {}).get("litejobs", {}).get("app")
        if value is not None:
            if not isinstance(value, str) or not value:
                raise ConfigurationError(
                    f'{pyproject}: [tool.litejobs] app must be a "module:attr" string'
                )
            return AppSource(value, f"[tool.litejobs] in {pyproject}")
    return AppSource(None, "default")


def load_manager(source: AppSource, db: str | None = None) -> Any:
    """The :class:`~litejobs.JobManager` named by ``source`` (or the default one).

    ``db``: a ``--db`` value (path or URL) that replaces the app's storage.
    """
    from .adapters import adapter_for_url
    from .manager import JobManager

    if source.spec is None:
        return _with_config_schedules(JobManager(adapters={"default": adapter_for_url(db)}))
    manager = _import_attr(source)
    if not isinstance(manager, JobManager):
        raise ConfigurationError(
            f"{source.spec} ({source.origin}) is a {type(manager).__name__}, not a JobManager; "
            "point it at the JobManager your jobs are defined with"
        )
    if db is not None:
        if len(manager.adapters) != 1:
            raise ConfigurationError(
                f"--db is ambiguous: {source.spec} has several adapters "
                f"({', '.join(manager.adapters)}); configure their storage in the app instead"
            )
        name, old = next(iter(manager.adapters.items()))
        new = adapter_for_url(db)
        new.clock = old.clock
        manager.adapters[name] = new
    return _with_config_schedules(manager)


def _with_config_schedules(manager: Any) -> Any:
    """Add ``[[tool.litejobs.recurring]]`` schedules from ``./pyproject.toml`` (CLI-only users)."""
    pyproject = Path.cwd() / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        from .recurring import add_from_config

        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read {pyproject}: {exc}") from None
        entries = data.get("tool", {}).get("litejobs", {}).get("recurring")
        if entries is not None:
            add_from_config(manager, entries, str(pyproject))
    return manager


def _import_attr(source: AppSource) -> Any:
    spec = source.spec or ""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(
            f"app {spec!r} ({source.origin}) must look like 'module:attr', e.g. 'myapp.jobs:jobs'"
        )
    try:
        target: Any = importlib.import_module(module_name)
    except LiteJobsError:
        raise
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import app module {module_name!r} ({source.origin}): {exc}; "
            "check the name and --path"
        ) from exc
    except Exception as exc:
        raise ConfigurationError(
            f"importing app module {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigurationError(
                f"app module {module_name!r} has no attribute {attr!r} ({source.origin})"
            ) from None
    return target
