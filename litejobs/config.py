"""Worker group configuration: how many workers, on which queues, with which limits."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import ConfigurationError
from .retry import RetryPolicy, as_policy

#: The longest ``heartbeat_interval`` accepted (see :data:`litejobs.liveness.ORPHAN_GRACE`).
MAX_HEARTBEAT_INTERVAL = 120.0
#: The longest ``max_runtime`` accepted (10 years): beyond ~292 years the timer overflows.
MAX_RUNTIME_LIMIT = 315_360_000


@dataclass(frozen=True)
class WorkerConfig:
    """One group of identical workers.

    ``queue`` is a queue name, a list of names, or ``"*"`` for every queue. A job's own
    ``max_attempts`` overrides the worker's. ``stale_after`` is how long a worker may be silent
    (no heartbeat) before another worker takes back its jobs; ``heartbeat_interval`` how often a
    worker says it is alive. ``batch_size`` caps how many short jobs one claim may take.
    """

    adapter: str | None = None
    queue: str | Sequence[str] = "*"
    count: int = 1
    max_attempts: int = 24
    max_runtime: float = 14_400
    delete_failed_jobs: bool = False
    delete_successful_jobs: bool = True
    sleep_delay: float = 5
    logger: logging.Logger | None = None
    stale_after: float = 60
    heartbeat_interval: float = 10
    batch_size: int = 100
    retry: RetryPolicy | Sequence[float] | Callable[[int], float] | None = None

    @property
    def retry_policy(self) -> RetryPolicy:
        """The group's :class:`~litejobs.retry.RetryPolicy` (default: ``attempts ** 4`` s)."""
        return as_policy(self.retry)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigurationError(f"WorkerConfig.count must be at least 1, got {self.count}")
        if self.max_attempts < 1:
            raise ConfigurationError(
                f"WorkerConfig.max_attempts must be at least 1, got {self.max_attempts}"
            )
        # Written so NaN fails too; the cap is what the in-process timer (setitimer) accepts,
        # with room to spare: "no limit" is spelled as a long time, e.g. 30 days.
        if not 0 < self.max_runtime <= MAX_RUNTIME_LIMIT:
            raise ConfigurationError(
                f"WorkerConfig.max_runtime must be more than 0 and at most {MAX_RUNTIME_LIMIT:g} s "
                f"(10 years), got {self.max_runtime!r}"
            )
        if not self.sleep_delay >= 0:
            raise ConfigurationError(
                f"WorkerConfig.sleep_delay must be 0 or more seconds, got {self.sleep_delay!r}"
            )
        if self.heartbeat_interval <= 0 or self.stale_after <= self.heartbeat_interval:
            raise ConfigurationError(
                "WorkerConfig.stale_after must be longer than heartbeat_interval (both > 0)"
            )
        if self.heartbeat_interval > MAX_HEARTBEAT_INTERVAL:
            # A worker whose row was deleted re-creates it with its next heartbeat; observers
            # wait ORPHAN_GRACE before touching its jobs, so a beat must come well before that.
            raise ConfigurationError(
                f"WorkerConfig.heartbeat_interval must be at most {MAX_HEARTBEAT_INTERVAL:g} s, "
                f"got {self.heartbeat_interval!r}"
            )
        if self.batch_size < 1:
            raise ConfigurationError(
                f"WorkerConfig.batch_size must be at least 1, got {self.batch_size}"
            )
        as_policy(self.retry)  # a bad policy fails here, not at the first error
        if not self.queues_label:
            raise ConfigurationError("WorkerConfig.queue must name at least one queue, or '*'")

    @property
    def queues(self) -> list[str] | None:
        """The queue names, or ``None`` for every queue."""
        names = [self.queue] if isinstance(self.queue, str) else list(self.queue)
        return None if "*" in names else names

    @property
    def queues_label(self) -> str:
        """How the queues appear in worker names: ``email-default`` or ``*``."""
        names = [self.queue] if isinstance(self.queue, str) else list(self.queue)
        return "*" if "*" in names else "-".join(n for n in names if n)


def worker_name(config: WorkerConfig, worker_id: int) -> str:
    """``litejobs-worker.<queues>.<id>``: the process title and, host-qualified, ``locked_by``."""
    return f"litejobs-worker.{config.queues_label}.{worker_id}"
