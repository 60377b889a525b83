"""Finding the application's :class:`~litejobs.JobManager` for the command line.

The CLI runs in the operator's project directory, not inside the application, so it has to find
the manager the way the application defines it: ``--app module:attr``, else ``$LITEJOBS_APP``, else
``[tool.litejobs] app = "..."`` in ``./pyproject.toml``. With none of those, a default manager (the
SQLite file at the default path, every queue, one worker) is enough to enqueue any importable
function and to inspect or work the queue.

Where jobs are stored follows one rule (:mod:`litejobs.location`): the app's adapters, with
``--db`` / ``LITEJOBS_DB`` filling in only what the app leaves open; a ``--db`` that names
another place than the app's adapters is an error, never a silent override.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Callable, Sequence
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


def load_manager(
    source: AppSource,
    db: str | None = None,
    *,
    on_config_error: Callable[[ConfigurationError], None] | None = None,
) -> Any:
    """The :class:`~litejobs.JobManager` named by ``source`` (or the default one).

    ``db``: a ``--db`` value (path or URL). It is where the default manager stores jobs; an
    app's own adapters are kept as they are (every option), and ``db`` must name the place
    one of them stores jobs (:mod:`litejobs.location`). ``on_config_error``: receives a bad
    ``[[tool.litejobs.recurring]]`` entry instead of raising (which skips it).
    """
    from .adapters import adapter_for_url
    from .manager import JobManager

    if source.spec is None:
        manager = JobManager(adapters={"default": adapter_for_url(db)})
    else:
        manager = _import_attr(source)
        if not isinstance(manager, JobManager):
            raise ConfigurationError(
                f"{source.spec} ({source.origin}) is a {type(manager).__name__}, not a "
                "JobManager; point it at the JobManager your jobs are defined with"
            )
        if db is not None:
            from .location import check_agrees

            check_agrees(manager.adapters, db)
    return _with_config_schedules(manager, on_config_error)


def _with_config_schedules(
    manager: Any, on_error: Callable[[ConfigurationError], None] | None
) -> Any:
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
            add_from_config(manager, entries, str(pyproject), on_error)
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
        from .adapters import lacks_postgres, missing_postgres

        if lacks_postgres(exc):
            raise ConfigurationError(
                f"cannot import app module {module_name!r} ({source.origin}): {missing_postgres()}"
            ) from exc
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
