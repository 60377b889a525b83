"""The ``workoff`` progress bar (only on a terminal).

Workers run in other processes, so the bar watches the queue instead of the workers: it counts
the jobs still ready or running on the worked queues a few times a second. That needs nothing
from the runtime and is right even for jobs other producers add while we work.

Workers (and the jobs in them) write log lines and prints to the terminal the bar is drawn on.
Written straight there, a line lands in the middle of the bar's line. So while the bar shows, the
terminal's file descriptors are pointed at a pipe (forked workers inherit it) and one thread
hands each complete line to the bar's console, which prints it above the bar, as rich's live
display does for its own console.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection
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
        self._relay: LineRelay | None = None

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
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._relay = LineRelay()
        self._progress = Progress(
            "workoff",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=self._relay.terminal, highlight=False),
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        task = self._progress.add_task("jobs", total=total)
        self._progress.start()
        self._relay.start(self._print_above)
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
        if self._relay is not None:
            self._relay.stop()  # every line written meanwhile is printed before the bar goes
        if self._progress is not None:
            self._progress.stop()
        if self._relay is not None:
            self._relay.terminal.close()

    def _print_above(self, line: str) -> None:
        self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)


class LineRelay:
    """Points stderr (and stdout, when it is the same terminal) of this process and of the
    processes it forks at a pipe, and passes each complete line to a callback."""

    def __init__(self) -> None:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        self.fds = [2, *([1] if os.isatty(1) and os.isatty(2) else [])]
        #: The real terminal (a copy of stderr's descriptor): where the bar and lines go.
        self.terminal = os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace")
        self._saved = {fd: os.dup(fd) for fd in self.fds}
        self._read, self._write = os.pipe()
        self._thread: threading.Thread | None = None

    def start(self, emit: Callable[[str], None]) -> None:
        for fd in self.fds:
            os.dup2(self._write, fd)
        self._thread = threading.Thread(
            target=self._pump, args=(emit,), name="litejobs-log-relay", daemon=True
        )
        self._thread.start()

    def _pump(self, emit: Callable[[str], None]) -> None:
        pending = b""
        while chunk := os.read(self._read, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                emit(line.decode("utf-8", "replace"))
        if pending:
            emit(pending.decode("utf-8", "replace"))

    def stop(self) -> None:
        """Put the terminal back; print what is left (the workers have exited, so the pipe
        ends once this process lets go of it; a grandchild still holding it is not waited for
        more than a moment)."""
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
            os.close(saved)
        os.close(self._write)
        if self._thread is not None:
            self._thread.join(timeout=2)
            if not self._thread.is_alive():
                os.close(self._read)
