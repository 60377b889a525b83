"""What a running job can know about itself: ``litejobs.current_job()``."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class JobContext:
    """The job being performed: id, attempt number (1 on the first run), args and a logger."""

    id: int
    name: str
    path: str
    queue: str
    priority: int
    attempts: int
    max_attempts: int
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    worker: str = ""
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("litejobs.job"))
    error: BaseException | None = None  # set for after_failure / after_perform hooks


_current: ContextVar[JobContext | None] = ContextVar("litejobs_current_job", default=None)


def current_job() -> JobContext | None:
    """The job this code runs inside, or ``None`` outside a worker (e.g. ``job.perform()``)."""
    return _current.get()
