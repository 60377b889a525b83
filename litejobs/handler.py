"""Turning callables into storable ``module:qualname`` paths and back.

A stored job names its function by import path, never by pickle: any worker process, on any host,
with the same code can run it, and a person can read the row.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import sys
from collections.abc import Callable
from typing import Any, cast

from .errors import HandlerNotFoundError, SerializationError, UnimportableJobError

_resolved: dict[str, Callable[..., Any]] = {}

#: The app this process runs, as the CLI found it (``myapp.jobs:jobs (--app)``); forked workers
#: inherit it. It makes a worker's "cannot import" error say what the worker was started with.
_app_label = "none given"


def set_app_label(label: str) -> None:
    global _app_label
    _app_label = label


def import_context() -> str:
    """Where this process looks for job code: its working directory, app and ``sys.path``."""
    import os

    return f"worker cwd {os.getcwd()}, app {_app_label}, sys.path {sys.path}"


def callable_path(func: Callable[..., Any]) -> str:
    """Return the ``module:qualname`` a worker will import ``func`` by.

    Raises :class:`UnimportableJobError` for functions no other process could import: lambdas,
    functions defined inside other functions, and functions of a script run as ``__main__``.
    """
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname:
        raise UnimportableJobError(
            f"{func!r} has no module or qualified name; define the job as a module-level function"
        )
    if "<lambda>" in qualname:
        raise UnimportableJobError(
            "a lambda cannot be a job: workers import jobs by name; use a module-level function"
        )
    bound_to = getattr(func, "__self__", None)
    if inspect.ismethod(func) and not isinstance(bound_to, type):
        raise UnimportableJobError(
            f"{qualname} is a method bound to a {type(bound_to).__name__} object; workers import "
            "jobs by name and cannot rebuild the object: use a module-level function (or a "
            "classmethod / staticmethod) that takes plain data"
        )
    if "<locals>" in qualname:
        raise UnimportableJobError(
            f"{qualname} is defined inside another function, so workers cannot import it; "
            "move it to module level"
        )
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is None or not spec.name or spec.name == "__main__":
            raise UnimportableJobError(
                f"{qualname} lives in a script run as __main__, which workers cannot import; "
                "move it to an importable module (or run the script with python -m)"
            )
        module = spec.name.removesuffix(".__main__")
    return f"{module}:{qualname}"


def resolve(path: str) -> Callable[..., Any]:
    """Import ``module:qualname`` and return the callable (unwrapping decorated jobs).

    Results are cached per process: resolving is on every job's path.
    """
    found = _resolved.get(path)
    if found is not None:
        return found
    module_name, sep, qualname = path.partition(":")
    if not sep or not module_name or not qualname:
        raise HandlerNotFoundError(
            f"{path!r} is not a 'module:function' path; write it like 'myapp.jobs:send_email'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HandlerNotFoundError(
            f"cannot import module {module_name!r} ({exc}); check the name and --path / PYTHONPATH"
        ) from exc
    except (Exception, SystemExit) as exc:  # the module's own code failed (or exited) at import
        hint = (
            'a script? put its top-level code under `if __name__ == "__main__":`'
            if isinstance(exc, SystemExit)
            else "fix the module"
        )
        raise HandlerNotFoundError(
            f"importing module {module_name!r} raised {type(exc).__name__}: {exc}; {hint}"
        ) from exc
    target: Any = module
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise HandlerNotFoundError(
                f"module {module_name!r} has no attribute {qualname!r}; check the spelling"
            ) from None
    func = getattr(target, "func", target) if _is_job(target) else target
    if not callable(func):
        raise HandlerNotFoundError(
            f"{path} is a {type(func).__name__}, not a function; point at a callable"
        )
    _resolved[path] = func
    return cast("Callable[..., Any]", func)


def _is_job(obj: object) -> bool:
    """A :class:`~litejobs.job.Job` (marked, so this module need not import it)."""
    return getattr(type(obj), "is_litejobs_job", False) is True


def _first_unserializable(value: Any) -> Any:
    """Find the innermost value ``json`` rejects, for an error message that names it."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool) and key is not None:
                return key
            bad = _first_unserializable(item)
            if bad is not None:
                return bad
        return None
    if isinstance(value, list | tuple):
        for item in value:
            bad = _first_unserializable(item)
            if bad is not None:
                return bad
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return value  # NaN and infinities are not JSON
    if value is None or isinstance(value, str | int | float | bool):
        return None
    return value


def encode_handler(
    name: str, path: str, args: list[Any] | tuple[Any, ...] | None, kwargs: dict[str, Any] | None
) -> str:
    """Build the stored handler JSON: ``{"name", "path", "args"[, "kwargs"]}``."""
    body: dict[str, Any] = {"name": name, "path": path, "args": list(args or [])}
    if kwargs:
        body["kwargs"] = kwargs
    try:
        return json.dumps(body, separators=(",", ":"), allow_nan=False)
    except RecursionError:
        raise SerializationError(
            "job arguments nest too deeply to encode as JSON (deeper than Python's recursion "
            "limit); pass ids or flatter data"
        ) from None
    except (TypeError, ValueError) as exc:
        bad = _first_unserializable(body)
        if isinstance(bad, float):
            what = f"a non-finite float ({bad!r})"
        else:
            what = f"a value of type {type(bad).__name__} ({exc})"
        raise SerializationError(
            f"job arguments must be JSON-serialisable, but got {what}; "
            "pass ids or plain data and load objects inside the job"
        ) from None


def decode_handler(text: str) -> dict[str, Any]:
    """Parse stored handler JSON."""
    data = json.loads(text)
    if not isinstance(data, dict) or "path" not in data:
        raise HandlerNotFoundError(f"stored handler is not a litejobs handler: {text[:80]!r}")
    return data
