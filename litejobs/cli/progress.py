"""The ``workoff`` progress bar (only on a terminal).

Workers run in other processes, so the bar watches the queue instead of the workers: it counts
the jobs still ready or running on the worked queues a few times a second. That needs nothing
from the runtime and is right even for jobs other producers add while we work.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litejobs.adapters.base import Adapter

POLL_SECONDS = 0.2

# Held while the bar's thread queries the database, and across every fork (the supervisor forks
# workers while the bar runs): a child never inherits a connection in the middle of a query, whose
# held mutexes it could never release (its clean-up of the copied connection would hang).
_QUERYING = threading.Lock()
os.register_at_fork(
    before=_QUERYING.acquire,
    after_in_parent=_QUERYING.release,
    after_in_child=_QUERYING.release,
)


class WorkoffProgress:
    """``with WorkoffProgress(adapter, queues, enabled=...):`` around the blocking workoff."""

    def __init__(self, adapter: Adapter, queues: Collection[str] | None, *, enabled: bool) -> None:
        self.adapter = adapter
        self.queues = None if queues is None else set(queues)
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress: Any = None

    def remaining(self) -> int:
        total = 0
        for queue, counts in self.adapter.counts().items():
            if self.queues is None or queue in self.queues:
                total += counts.get("ready", 0) + counts.get("running", 0)
        return total

    def __enter__(self) -> WorkoffProgress:
        if not self.enabled:
            return self
        total = self.remaining()
        if total == 0:
            return self
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._progress = Progress(
            "workoff",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
        )
        task = self._progress.add_task("jobs", total=total)
        self._progress.start()
        self._thread = threading.Thread(
            target=self._poll, args=(task, total), name="litejobs-progress", daemon=True
        )
        self._thread.start()
        return self

    def _poll(self, task: Any, total: int) -> None:
        done = 0
        while not self._stop.wait(POLL_SECONDS):
            try:
                with _QUERYING:
                    left = self.remaining()
            except Exception:  # the bar is cosmetic: never let it break the run
                continue
            done = max(done, total - left)
            total = max(total, done + left)
            self._progress.update(task, completed=done, total=total)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._progress is not None:
            self._progress.stop()
