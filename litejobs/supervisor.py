"""The worker pool behind ``litejobs work``, ``workoff -n N`` and ``start``: one process per worker.

Why processes, and why a supervisor at all: a job can crash its interpreter, leak memory or
ignore every polite request to stop. The supervisor keeps the pool whole (a worker that dies is
replaced under the same name; its jobs are rescued as soon as it is reaped, its pid being
provably gone),
turns Ctrl-C / SIGTERM into "finish the current job, then exit" (a second signal: "stop now"),
does the periodic housekeeping (``adapter.maintenance()``: the WAL checkpoint) and collects every
worker's :class:`~litejobs.worker.WorkerStats` so ``workoff -n 4`` can print one summary.

Children are forked (``multiprocessing`` with an explicit "fork" context): the application's
manager, job functions and hooks are already imported in the parent and cannot, in general, be
pickled for a fresh interpreter. The supervisor holds no open database connection when it forks
(it closes its own after each use), so no child ever inherits one.

Workers watch their parent: when the supervisor disappears (``kill -9``, OOM killer) each worker
finishes its current job and exits, so nothing is orphaned and no job is left half done.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TYPE_CHECKING, Any

from .adapters.base import Rescued
from .config import WorkerConfig, worker_name
from .errors import ConfigurationError, StopNow, StorageError
from .liveness import Observer
from .proctitle import set_title
from .worker import EXIT_STUCK, WorkerStats, qualified_name

if TYPE_CHECKING:
    from .adapters.base import Adapter
    from .manager import JobManager

logger = logging.getLogger("litejobs.supervisor")

EventHook = Callable[[str, dict[str, Any]], None]

#: Seconds between ``adapter.maintenance()`` calls (WAL checkpoint) in a running pool.
MAINTENANCE_INTERVAL = 30.0
#: A worker that ran at least this long before dying is restarted at once; quicker deaths in a
#: row back off exponentially (``RESTART_BACKOFF * 2**n``, capped) so a crash loop cannot spin.
STABLE_AFTER = 30.0
RESTART_BACKOFF = 0.25
MAX_RESTART_DELAY = 30.0
#: After "stop now", workers that have not exited after this long are killed.
KILL_AFTER = 5.0
#: What the supervisor sends a worker for "stop now" (SIGTERM always means "after this job").
STOP_NOW_SIGNAL = signal.SIGUSR1
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, STOP_NOW_SIGNAL}
#: How often a worker checks for a stop request and that its supervisor is still there.
STOP_POLL = 0.1
#: Exit status of a workoff worker process that met a permanent storage error.
EXIT_STORAGE = 73


@dataclass
class _Slot:
    """One position in the pool: a (group, id) pair whose process is replaced when it dies."""

    config: WorkerConfig
    worker_id: int
    name: str  # host-qualified, as in ``locked_by``
    process: BaseProcess | None = None
    conn: Connection | None = None
    started: float = 0.0  # monotonic
    quick_deaths: int = 0
    next_start: float = 0.0  # monotonic; back-off after a crash
    done: bool = False  # workoff: finished normally, or stopping: exited
    told: int = 0  # the stop level (1 graceful, 2 now) this process has been signalled
    stats: WorkerStats = field(default_factory=WorkerStats)

    @property
    def title(self) -> str:
        return worker_name(self.config, self.worker_id)


def run_workers(
    manager: JobManager,
    groups: Sequence[WorkerConfig],
    *,
    workoff: bool = False,
    worker_ids: Sequence[Sequence[int]] | None = None,
    install_signal_handlers: bool = True,
    on_event: EventHook | None = None,
    maintenance_interval: float = MAINTENANCE_INTERVAL,
) -> WorkerStats:
    """Run ``sum(g.count)`` worker processes and block until they are done.

    ``workoff``: until every worker found nothing eligible (a worker that dies is not replaced;
    its jobs are released for the next run). Otherwise until SIGINT/SIGTERM: the first lets
    running jobs finish, the second stops now. Returns the merged stats of all workers.
    Each worker takes its slot's name, or the next free one when a live worker (another
    runner) holds it.
    """
    supervisor = Supervisor(
        manager,
        groups,
        workoff=workoff,
        worker_ids=worker_ids,
        on_event=on_event,
        maintenance_interval=maintenance_interval,
    )
    return supervisor.run(install_signal_handlers=install_signal_handlers)


def run_single_worker(
    manager: JobManager,
    config: WorkerConfig,
    worker_id: int,
    *,
    workoff: bool = False,
    clear: bool = False,
    on_event: EventHook | None = None,
) -> WorkerStats:
    """One worker in this process, for systemd and other process managers.

    ``clear``: delete every job in the group's storage and return (Redwood's ``--clear``).
    Signals: the first SIGINT/SIGTERM finishes the current job, the second raises
    :class:`~litejobs.errors.StopNow` (stop now: the running job is released at once). A job
    that ignores its timeout makes this process exit with :data:`~litejobs.worker.EXIT_STUCK`
    for the process manager to restart it. ``on_event("stopping", {"now", "signal"})`` is
    called on each stop signal (from the signal handler: keep it short).
    """
    adapter = manager.adapter(config.adapter)
    if clear:
        count = adapter.clear()
        logger.info("cleared %s job(s)", count)
        return WorkerStats()
    set_title(worker_name(config, worker_id))
    worker = manager.worker(config, worker_id=worker_id, exit_on_stuck=True)
    watch = _StopWatch(worker)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if on_event is not None:
            on_event("stopping", {"now": watch.asked, "signal": signum})
        if watch.asked:
            raise StopNow
        watch.asked = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    watch.start()
    try:
        return worker.run(workoff=workoff)
    finally:
        watch.done = True
        for signum, handler in old.items():
            signal.signal(signum, handler)


class Supervisor:
    """The parent process's state: slots, signals, housekeeping. Use :func:`run_workers`."""

    def __init__(
        self,
        manager: JobManager,
        groups: Sequence[WorkerConfig],
        *,
        workoff: bool = False,
        worker_ids: Sequence[Sequence[int]] | None = None,
        on_event: EventHook | None = None,
        maintenance_interval: float = MAINTENANCE_INTERVAL,
    ) -> None:
        if not groups:
            raise ConfigurationError("no worker groups to run")
        if worker_ids is not None and len(worker_ids) != len(groups):
            raise ConfigurationError(
                f"worker_ids has {len(worker_ids)} entries for {len(groups)} worker group(s)"
            )
        self.manager = manager
        self.workoff = workoff
        self.on_event = on_event
        self.maintenance_interval = maintenance_interval
        self.slots: list[_Slot] = []
        for index, config in enumerate(groups):
            ids = list(worker_ids[index]) if worker_ids is not None else range(config.count)
            for worker_id in ids:
                if worker_id < 0:
                    raise ConfigurationError(f"worker ids must be 0 or more, got {worker_id}")
                name = qualified_name(worker_name(config, worker_id))
                self.slots.append(_Slot(config, worker_id, name))
        names = [s.name for s in self.slots]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigurationError(
                f"two workers would share the name {dupes[0].split('/', 1)[1]}; give groups on "
                "the same queues distinct worker ids"
            )
        self.adapters: list[Adapter] = []
        for config in groups:
            adapter = manager.adapter(config.adapter)
            if all(adapter is not a for a in self.adapters):
                self.adapters.append(adapter)
        self.stopping = 0  # 0 running, 1 graceful stop asked, 2 stop now
        #: A workoff worker met a permanent storage error: the pool stops and raises it.
        self.storage_error: StorageError | None = None
        self._stop_now_at = 0.0
        self._ctx = multiprocessing.get_context(
            "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        )

    # -- the loop ---------------------------------------------------------------------------
    def run(self, *, install_signal_handlers: bool = True) -> WorkerStats:
        old: dict[int, Any] = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._housekeeping()
            next_housekeeping = time.monotonic() + self.maintenance_interval
            self._start_due()
            notify_ready()
            while not self._finished():
                self._start_due()
                timeout = self._wait_timeout(next_housekeeping)
                waitables: list[Any] = [s.process.sentinel for s in self._alive() if s.process]
                waitables += [s.conn for s in self.slots if s.conn is not None]
                ready = multiprocessing.connection.wait(waitables, timeout) if waitables else []
                if not waitables:
                    time.sleep(timeout)
                if ready:
                    self._collect()
                self._reap()
                self._relay()
                if self.stopping == 2 and time.monotonic() >= self._stop_now_at:
                    self._kill_all(signal.SIGKILL)
                if time.monotonic() >= next_housekeeping:
                    self._housekeeping()
                    next_housekeeping = time.monotonic() + self.maintenance_interval
        except BaseException:
            # Something went wrong in the supervisor itself: do not leave workers behind.
            self._kill_all(signal.SIGTERM)
            raise
        finally:
            for signum, handler in old.items():
                signal.signal(signum, handler)
            for slot in self.slots:
                if slot.conn is not None:
                    slot.conn.close()
                    slot.conn = None
        if self.storage_error is not None:
            raise self.storage_error
        total = WorkerStats()
        for slot in self.slots:
            total.merge(slot.stats)
        self._event("stopped", {"stats": total})
        return total

    def _finished(self) -> bool:
        if any(s.process is not None for s in self.slots):
            return False
        if self.stopping:
            return True
        return all(s.done for s in self.slots)

    def _alive(self) -> list[_Slot]:
        return [s for s in self.slots if s.process is not None]

    def _wait_timeout(self, next_housekeeping: float) -> float:
        now = time.monotonic()
        timeout = max(0.0, next_housekeeping - now)
        pending = [s.next_start for s in self.slots if s.process is None and not s.done]
        if pending and not self.stopping:
            timeout = min(timeout, max(0.0, min(pending) - now))
        if self.stopping == 2:
            timeout = min(timeout, max(0.0, self._stop_now_at - now))
        # Signal handlers run between waits; bound the wait so a signal is acted on promptly.
        return min(timeout, 0.5)

    def _start_due(self) -> None:
        if self.stopping:
            return
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is None and not slot.done and slot.next_start <= now:
                self._start(slot)

    def _start(self, slot: _Slot) -> None:
        for adapter in self.adapters:
            _close(adapter)  # never fork with an open connection
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=_child_main,
            args=(self.manager, slot.config, slot.worker_id, self.workoff, writer, os.getpid()),
            name=slot.title,
            daemon=False,
        )
        # A signal between the fork and the child's own handlers would run the supervisor's
        # handler in the child: keep them pending until the child is ready for them.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        writer.close()
        slot.process, slot.conn, slot.started = process, reader, time.monotonic()
        slot.told = 0
        logger.debug("started %s (pid %s)", slot.title, process.pid)
        self._event("worker_started", {"name": slot.name, "pid": process.pid})

    def _collect(self) -> None:
        """Read what children sent (their stats when they stop)."""
        for slot in self.slots:
            conn = slot.conn
            if conn is None:
                continue
            try:
                while conn.poll():
                    message = conn.recv()
                    if isinstance(message, WorkerStats):
                        slot.stats.merge(message)
                    elif isinstance(message, StorageError) and self.storage_error is None:
                        self.storage_error = StorageError(str(message), permanent=True)
            except (EOFError, OSError):
                conn.close()
                slot.conn = None

    def _reap(self) -> None:
        for slot in self._alive():
            process = slot.process
            assert process is not None
            if process.exitcode is None:
                continue
            process.join()
            self._collect()
            code = process.exitcode
            slot.process = None
            if slot.conn is not None:
                slot.conn.close()
                slot.conn = None
            self._exited(slot, code)

    def _exited(self, slot: _Slot, code: int) -> None:
        self._event("worker_exited", {"name": slot.name, "exitcode": code})
        if code == EXIT_STORAGE and self.storage_error is not None:
            slot.done = True
            if not self.stopping:
                logger.error("%s; stopping", self.storage_error)
                self.stopping = 1
                self._relay()
            return
        rescued = self._rescue(slot) if code != 0 else Rescued()
        if self.stopping or (code == 0 and self.workoff):
            slot.done = True
            logger.debug("%s exited (status %s)", slot.title, code)
            return
        if code == 0:
            # Someone stopped this one worker (SIGTERM to its pid): the pool stays whole.
            logger.info("%s stopped on its own; starting it again", slot.title)
            slot.next_start = time.monotonic()
            self._event("worker_restarting", {"name": slot.name, "delay": 0.0, "exitcode": 0})
            return
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        if code == EXIT_STUCK:
            logger.warning(
                "%s abandoned a job that did not stop (past its timeout, or cancelled); "
                "replacing it",
                slot.title,
            )
        else:
            logger.error("%s died (%s)", slot.title, how)
        if self.workoff:
            # Not replaced in workoff; what it held was rescued above, so the next run needs
            # no wait. The job it was running counts (workoff exits 1): crashed, and failed if
            # that was its last attempt, else errored (it will run again).
            slot.stats.crashed += rescued.released + rescued.failed
            slot.stats.failed += rescued.failed
            slot.stats.errored += rescued.released
            slot.stats.cancelled += rescued.cancelled
            jobs = ", ".join(str(i) for i in rescued.job_ids) or "none running"
            slot.stats.errors.append(f"worker {slot.title} died ({how}); job(s): {jobs}")
            slot.done = True
            return
        lived = time.monotonic() - slot.started
        if code == EXIT_STUCK or lived >= STABLE_AFTER:
            slot.quick_deaths = 0
            delay = 0.0
        else:
            n = slot.quick_deaths
            delay = 0.0 if n == 0 else min(RESTART_BACKOFF * 2 ** (n - 1), MAX_RESTART_DELAY)
            slot.quick_deaths += 1
        slot.next_start = time.monotonic() + delay
        if delay:
            logger.warning("restarting %s in %.2f s", slot.title, delay)
        self._event("worker_restarting", {"name": slot.name, "delay": delay, "exitcode": code})

    def _rescue(self, slot: _Slot) -> Rescued:
        """Rescue the jobs of a worker process that died, now: its pid is provably gone, so
        nothing waits for a heartbeat to go stale or for a replacement to start."""
        adapter = self.manager.adapter(slot.config.adapter)
        config = slot.config
        observer = Observer(
            max_attempts=config.max_attempts, delete_failed=config.delete_failed_jobs
        )
        try:
            return adapter.rescue(observer)
        except StorageError as exc:
            logger.warning("could not rescue the jobs of %s: %s", slot.title, exc)
            return Rescued()
        finally:
            _close(adapter)

    def _housekeeping(self) -> None:
        for adapter in self.adapters:
            try:
                adapter.maintenance()
            except StorageError as exc:
                logger.warning("maintenance of %r skipped: %s", adapter, exc)
            finally:
                _close(adapter)
        self._event("maintenance", {})

    # -- signals ----------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = min(self.stopping + 1, 2)
        if self.stopping == 1:
            logger.warning(
                "stopping: workers finish their current job (%s again to stop now)",
                "Ctrl-C" if signum == signal.SIGINT else "signal",
            )
        else:
            logger.warning("stopping now")
            self._stop_now_at = time.monotonic() + KILL_AFTER
        self._event("stopping", {"now": self.stopping == 2, "signal": signum})
        self._relay()

    def _relay(self) -> None:
        """Pass the stop request on to every worker not yet told (also one forked meanwhile).

        Workers ignore SIGINT (a terminal sends it to the whole group) and treat any number of
        SIGTERMs as "graceful" (systemd may signal the whole cgroup as well as us); "now" is a
        distinct signal only the supervisor sends.
        """
        level = self.stopping
        for slot in self._alive():
            if slot.told < level and slot.process is not None and slot.process.pid is not None:
                slot.told = level
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.process.pid, signal.SIGTERM if level == 1 else STOP_NOW_SIGNAL)

    def _kill_all(self, signum: int) -> None:
        for slot in self._alive():
            pid = slot.process.pid if slot.process is not None else None
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            try:
                self.on_event(kind, data)
            except Exception:
                logger.exception("on_event hook failed for %s", kind)


# -- in the worker process --------------------------------------------------------------------
def _child_main(
    manager: JobManager,
    config: WorkerConfig,
    worker_id: int,
    workoff: bool,
    conn: Connection,
    parent_pid: int,
) -> None:
    """A worker process: title, signals, parent watch, run, send stats back."""
    set_title(worker_name(config, worker_id))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The slot's id, or the next free one: next to another runner (a second `work`, a cron
    # `workoff`, a web process's `jobs.workoff()`) names never collide, and a dead
    # predecessor's name is taken back (its jobs rescued) since its pid is provably gone.
    worker = manager.worker(
        config,
        worker_id=worker_id,
        pick_free=True,
        exit_on_stuck=True,
        keep_running=lambda: os.getppid() == parent_pid,
    )

    watch = _StopWatch(worker, parent_pid=parent_pid)

    def graceful(signum: int, frame: FrameType | None) -> None:
        watch.asked = True

    def now(signum: int, frame: FrameType | None) -> None:
        watch.asked = True
        signal.signal(STOP_NOW_SIGNAL, signal.SIG_IGN)  # once is enough; let cleanup run
        raise StopNow

    signal.signal(signal.SIGTERM, graceful)
    signal.signal(STOP_NOW_SIGNAL, now)
    watch.start()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked across the fork
    code = 0
    messages: list[object] = []
    try:
        stats = worker.run(workoff=workoff)
    except KeyboardInterrupt:
        # Deregistration released the job it was running (its attempt counts).
        worker.logger.warning("%s stopped now", worker.name)
        stats, code = worker.stats, 130
    except StorageError as exc:
        # Only a workoff gives up, and only on a permanent error: tell the supervisor why.
        stats, code = worker.stats, EXIT_STORAGE
        messages.append(exc)
    with contextlib.suppress(OSError, ValueError):
        for message in [*messages, stats]:
            conn.send(message)
        conn.close()
    if code:
        raise SystemExit(code)


class _StopWatch(threading.Thread):
    """Turns stop requests into ``worker.stop.set()`` from a thread of its own.

    Signal handlers only flip :attr:`asked`: calling ``Event.set()`` inside a handler can
    deadlock, because the handler runs in the main thread, which may be holding that very
    event's lock (in ``stop.wait()``) or be inside an earlier handler's ``set()`` when a second
    signal arrives (systemd and the supervisor both sending SIGTERM). With ``parent_pid``, it
    also stops the worker (after its current job) when the supervisor is gone.
    """

    def __init__(self, worker: Any, *, parent_pid: int | None = None) -> None:
        super().__init__(name="litejobs-stopwatch", daemon=True)
        self.worker = worker
        self.parent_pid = parent_pid
        self.asked = False
        self.done = False

    def run(self) -> None:
        worker = self.worker
        while not self.done and not worker.stop.is_set():
            time.sleep(STOP_POLL)
            if self.asked:
                worker.logger.warning("%s: stopping after the current job", worker.name)
                worker.stop.set()
            elif self.parent_pid is not None and os.getppid() != self.parent_pid:
                worker.logger.warning("%s: supervisor gone; stopping after this job", worker.name)
                worker.stop.set()


# -- helpers ----------------------------------------------------------------------------------
#: Set by ``litejobs start``: a file to create once the workers are started, so ``start`` can
#: report success (or the supervisor's early death) without guessing with a fixed sleep.
READY_FILE_ENV = "LITEJOBS_READY_FILE"


def notify_ready() -> None:
    """Say "workers started" to whoever waits: ``litejobs start`` and/or systemd (Type=notify)."""
    ready_file = os.environ.pop(READY_FILE_ENV, None)
    if ready_file:
        with contextlib.suppress(OSError), open(ready_file, "w", encoding="ascii") as f:
            f.write(str(os.getpid()))
    address = os.environ.get("NOTIFY_SOCKET")
    if address:
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract socket namespace
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(f"READY=1\nMAINPID={os.getpid()}".encode())


def _close(adapter: Adapter) -> None:
    with contextlib.suppress(Exception):
        adapter.close()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")
