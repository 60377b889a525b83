"""Logging for the command line: readable lines for people, JSON lines for log shippers.

Everything litejobs says goes through the standard ``logging`` module under the ``litejobs``
logger (workers log each job's start, success and error at INFO/WARNING/ERROR; idle polls only at
DEBUG), so an application can route it anywhere. The CLI only decides the format and the level:
``-v`` shows DEBUG, ``-q`` only warnings, ``-qq`` only errors. Logs go to stderr, so stdout stays
clean for ``--json`` output and job ids that scripts capture.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any, Literal

LogFormat = Literal["text", "json"]

#: Attributes every LogRecord has; anything else was passed through ``extra=`` and is kept in JSON.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO 8601 UTC), ``level``, ``logger``, ``message``,
    ``pid``, any ``extra=`` fields, and ``exc`` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                body[key] = value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str, ensure_ascii=False)


#: The fields of a job's log lines in JSON (``litejobs.worker`` sets them on its own lines).
JOB_FIELDS = ("job_id", "job", "queue", "attempt", "worker", "duration_ms", "outcome")


class JobFields(logging.Filter):
    """Gives a line logged inside a running job (the app's own ``logging.getLogger("myapp")``,
    a hook's) the job's fields, so a log shipper can join it to the worker's lines about the
    job. Lines that carry them already (the worker's) are left as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "job_id"):
            from .context import current_job

            ctx = current_job()
            if ctx is not None:
                record.job_id = ctx.id
                record.job = ctx.name
                record.queue = ctx.queue
                record.attempt = ctx.attempts
                record.worker = ctx.worker
                record.duration_ms = None
                record.outcome = None
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s"


def level_for(verbose: int, quiet: int) -> int:
    """``-v`` → DEBUG, default INFO, ``-q`` → WARNING, ``-qq`` → ERROR."""
    if verbose:
        return logging.DEBUG
    return {0: logging.INFO, 1: logging.WARNING}.get(quiet, logging.ERROR)


def setup_logging(
    *, verbose: int = 0, quiet: int = 0, fmt: LogFormat = "text", stream: Any = None
) -> logging.Handler:
    """Attach one stderr handler to the ``litejobs`` logger (replacing one we added before).

    The root logger is left alone so an application's own logging setup still applies to its
    loggers; ``propagate`` is switched off only for ``litejobs`` to avoid printing lines twice.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("litejobs-cli")
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
        handler.addFilter(JobFields())
    else:
        formatter = logging.Formatter(TEXT_FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
        handler.setFormatter(formatter)
    log = logging.getLogger("litejobs")
    for old in list(log.handlers):
        if old.get_name() == "litejobs-cli":
            log.removeHandler(old)
    log.addHandler(handler)
    log.setLevel(level_for(verbose, quiet))
    log.propagate = False
    return handler


def route_app_logs(loggers: Iterable[logging.Logger]) -> None:
    """Show the application's own log lines like litejobs' (same handler, format and level)
    under ``work``/``workoff``/``worker``/``start``: loggers used inside jobs and hooks
    (``logging.getLogger("myapp")``), ``JobManager(logger=...)`` and ``WorkerConfig(logger=...)``.

    Unless the app configured logging itself (the root logger has handlers once the app is
    imported), the root logger gets the CLI's handler and level, as ``logging.basicConfig``
    would; otherwise an app's INFO lines vanished (Python's last resort prints only warnings,
    unformatted). ``loggers`` the app configured apart (``propagate=False``, no handler) get
    the handler too.
    """
    cli = logging.getLogger("litejobs")
    handler = next((h for h in cli.handlers if h.get_name() == "litejobs-cli"), None)
    if handler is None:
        return
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)
        root.setLevel(cli.level)
    for logger in loggers:
        if logger.name.startswith("litejobs") or logger.hasHandlers():
            continue
        logger.addHandler(handler)
        if logger.level == logging.NOTSET:
            logger.setLevel(cli.level)
