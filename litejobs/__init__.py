"""litejobs: background jobs for Python that need nothing but a file."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import errors

if TYPE_CHECKING:
    from .adapters import Adapter, SQLiteAdapter
    from .clock import FakeClock, SystemClock
    from .config import WorkerConfig
    from .context import JobContext, current_job
    from .job import Job
    from .manager import JobManager, Scheduler
    from .outcomes import Cancel, Discard, Snooze
    from .retry import RetryPolicy
    from .scheduling import Wait
    from .worker import Worker, WorkerStats

# The public names load on first use (PEP 562): `litejobs --version`, `--help` and usage errors
# never touch the engine, and importing it (asyncio, apsw, ...) is most of the CLI's start-up.
_LAZY = {
    "Adapter": ".adapters",
    "SQLiteAdapter": ".adapters",
    "FakeClock": ".clock",
    "SystemClock": ".clock",
    "WorkerConfig": ".config",
    "JobContext": ".context",
    "current_job": ".context",
    "Job": ".job",
    "JobManager": ".manager",
    "Scheduler": ".manager",
    "Cancel": ".outcomes",
    "Discard": ".outcomes",
    "Snooze": ".outcomes",
    "RetryPolicy": ".retry",
    "Worker": ".worker",
    "WorkerStats": ".worker",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'litejobs' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__version__ = "0.1.0"

__all__ = [
    "Adapter",
    "Cancel",
    "Discard",
    "FakeClock",
    "Job",
    "JobContext",
    "JobManager",
    "RetryPolicy",
    "SQLiteAdapter",
    "Scheduler",
    "Snooze",
    "SystemClock",
    "Worker",
    "WorkerConfig",
    "WorkerStats",
    "__version__",
    "current_job",
    "enqueue",
    "errors",
]

_adapters: dict[str | None, Adapter] = {}


def _adapter(db: str | Adapter | None) -> Adapter:
    from .adapters import Adapter, adapter_for_url

    if isinstance(db, Adapter):
        return db
    adapter = _adapters.get(db)
    if adapter is None:
        adapter = _adapters[db] = adapter_for_url(db)
    return adapter


def enqueue(
    job: str | Callable[..., Any],
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    *,
    db: str | Adapter | None = None,
    queue: str | None = None,
    priority: int | None = None,
    wait: Wait | None = None,
    wait_until: datetime | None = None,
    max_attempts: int | None = None,
    unique_key: str | None = None,
    unique: bool = False,
    keep_result: bool = False,
    check: bool = True,
    max_runtime: float | timedelta | None = None,
    retry: RetryPolicy | Sequence[float] | None = None,
    unique_for: float | timedelta | None = None,
    unique_states: Sequence[str] | None = None,
) -> int:
    """Schedule any importable function without defining a manager; returns the job id.

    ``job`` is a ``"module:func"`` path or a module-level function. A job declared on a
    :class:`JobManager` (``@jobs.job``) is stored where that manager stores it, as ``later()``
    would; ``db=`` may only name that same place. Otherwise ``db`` is a SQLite path, a
    ``postgresql://`` URL or an adapter (default: ``$LITEJOBS_DB`` or the default file).
    ``check=False`` skips importing the function (for a producer without the job's code), so
    the job's manager is not known either: ``db`` decides. ``keep_result=True`` stores what the
    job returns (JSON) for ``jobs.result(id)``, as ``@jobs.job(keep_result=True)`` does. The
    other options are ``later``'s (:class:`~litejobs.manager.Scheduler`).
    """
    from .manager import declared_scheduler
    from .scheduling import build_new_job

    options: dict[str, Any] = {
        "wait": wait,
        "wait_until": wait_until,
        "queue": queue,
        "priority": priority,
        "max_attempts": max_attempts,
        "unique_key": unique_key,
        "unique": unique,
        "max_runtime": max_runtime,
        "retry": retry,
        "unique_for": unique_for,
        "unique_states": unique_states,
        "keep_result": keep_result or None,
    }
    declared = declared_scheduler(job, check_import=check)
    if declared is not None:
        if db is not None:
            from .location import check_same

            check_same(_adapter(db), declared.adapter, f"job {job!r}")
        return declared(job, args, kwargs=kwargs, **options)
    adapter = _adapter(db)
    new = build_new_job(job, args, kwargs, now=adapter.clock.now(), check_import=check, **options)
    return adapter.enqueue(new)
