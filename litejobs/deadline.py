"""A job's hard timeout (``max_runtime``): a ``SIGALRM`` timer for sync code, a deadline for async;
and the interruption of a job a person cancelled, through the same two doors.

Only litejobs' own deadline becomes a :class:`~litejobs.errors.JobTimeoutError`. A job that raises
the builtin ``TimeoutError`` itself (a socket, ``urllib``, ``smtplib``, its own
``asyncio.wait_for``) keeps its own error, message and traceback.

The timer is armed around the job's call only, and a job that has returned is a success even if
its alarm fires in the same instant: the handler tells "the job is running" (a frame of the job's
is executing) from "the job has returned" (only this module's frames are left). That test needs
the job to run in Python frames of its own; for a job that is a C function (``os:system``), the
two cannot be told apart, and an alarm in that instant still counts as a timeout.

A cancel comes from another thread (the worker's keeper): it names the run to stop and sends
``SIGALRM`` to the main thread (:func:`interrupt_main`), or cancels the async job's task
(:meth:`AsyncRunner.cancel`). The job then sees :class:`~litejobs.errors.JobCancelledError`, never
a :class:`~litejobs.errors.JobTimeoutError`: a cancelled job ends cancelled, not retried. The run
is named (job id, claim time, attempt), so a signal that arrives late never stops the next job.
"""

from __future__ import annotations

import contextvars
import signal
import sys
import threading
import types
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .errors import JobCancelledError, JobTimeoutError

if TYPE_CHECKING:  # asyncio (~20 ms with ssl) is imported when an async job first runs
    import asyncio

try:  # the C function: signal.getsignal's enum conversion costs more than a no-op job
    from _signal import getsignal as _c_getsignal  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - not CPython
    _c_getsignal = signal.getsignal
#: ``signal.getsignal`` without its enum conversion (asked on every job).
fast_getsignal: Callable[[int], Any] = _c_getsignal

#: How long a command started by a job gets between SIGTERM and SIGKILL when the job is
#: interrupted (:mod:`litejobs.builtins`).
KILL_GRACE = 2.0
#: The least time a job gets, after its hard timeout fires, before the worker's watchdog
#: abandons it: room for the builtins' SIGTERM, :data:`KILL_GRACE`, SIGKILL (and as long again
#: to spare), so the promised SIGKILL reaches a command that ignores SIGTERM even with a short
#: ``max_runtime``.
ABANDON_GRACE_MIN = 2 * KILL_GRACE

_IDLE, _ARMING, _RUNNING = 0, 1, 2


class _Alarm:
    """What the ``SIGALRM`` handler needs to know (one timer per process, main thread only)."""

    phase = _IDLE  # _ARMING: the timer is being set; _RUNNING: the job was called
    c_job = False  # the job is a C function: its return cannot be told from its running
    run: object = None  # the run being called (set around the call)
    cancel: object = None  # the run a cancel was asked for (set from another thread)


def _on_alarm(signum: int, frame: types.FrameType | None) -> None:
    phase = _Alarm.phase
    if phase == _IDLE:
        return  # no job is running: a late alarm, after the job returned
    if phase == _RUNNING and not _Alarm.c_job and frame is not None and frame.f_code in _OURS:
        return  # only our frames are left: the job returned the instant the alarm fired
    if _Alarm.cancel is not None and _Alarm.cancel == _Alarm.run:
        raise JobCancelledError("cancelled while running")
    raise JobTimeoutError("timed out")


def interrupt_main(run: object) -> None:
    """From another thread: stop ``run`` (the sync job in the main thread) with
    :class:`JobCancelledError`, if it is the one running (checked by the handler)."""
    _Alarm.cancel = run
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGALRM)


def _invoke(func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], limit: float) -> Any:
    """Arm the timer and call the job, in a frame of its own (see :func:`_on_alarm`)."""
    _Alarm.phase = _ARMING
    signal.setitimer(signal.ITIMER_REAL, limit)
    _Alarm.phase = _RUNNING
    return func(*args, **kwargs)


def call_with_alarm(
    func: Callable[..., Any],
    args: list[Any],
    kwargs: dict[str, Any],
    limit: float,
    run: object = None,
) -> Any:
    """Call ``func`` in the main thread with a ``SIGALRM`` after ``limit`` seconds (the
    handler must be installed: :func:`install_alarm_handler`); ``run`` names this run for
    :func:`interrupt_main`."""
    _Alarm.c_job = isinstance(func, types.BuiltinFunctionType)
    _Alarm.run = run
    try:
        return _invoke(func, args, kwargs, limit)
    finally:
        _Alarm.phase = _IDLE  # before disarming: an alarm in between is a late one
        signal.setitimer(signal.ITIMER_REAL, 0)
        _Alarm.run = None
        if _Alarm.cancel == run:
            _Alarm.cancel = None  # carried out (or too late): never meant for another run


_OURS = frozenset({_invoke.__code__, call_with_alarm.__code__})


def alarm_available() -> bool:
    """Whether this thread can use the ``SIGALRM`` timer (signals go to the main thread only)."""
    return threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")


def install_alarm_handler() -> Any:
    """Install the ``SIGALRM`` handler if another one is in place (a job may have replaced it).

    Returns the handler replaced, or ``None`` when ours was already installed. It stays
    installed between jobs: installing it per job costs more than a no-op job.
    """
    if fast_getsignal(signal.SIGALRM) is _on_alarm:
        return None
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    return previous if previous is not None else signal.SIG_DFL


async def bounded(
    awaitable: Awaitable[Any], limit: float, cancelled: Callable[[], bool] | None = None
) -> Any:
    """Await ``awaitable`` for at most ``limit`` seconds; past that, :class:`JobTimeoutError`.
    A cancellation of the task that ``cancelled()`` says was a person's cancel becomes
    :class:`JobCancelledError`.

    ``asyncio.wait_for`` would turn both our deadline and the job's own ``TimeoutError`` into
    the same exception; :func:`asyncio.timeout` says which one it was.
    """
    import asyncio

    deadline = asyncio.timeout(limit)
    try:
        async with deadline:
            return await awaitable
    except TimeoutError:
        if deadline.expired():
            raise JobTimeoutError("timed out") from None
        raise  # the job's own TimeoutError
    except asyncio.CancelledError:
        if cancelled is not None and cancelled():
            raise JobCancelledError("cancelled while running") from None
        raise


class AsyncRunner:
    """Runs coroutines to completion for a sync caller, on an event loop kept for its life.

    When the calling thread already runs an event loop (async code calling ``later()`` under
    ``litejobs.testing.inline``, or a worker started from a coroutine), that loop cannot be
    re-entered: the coroutine runs on a fresh loop in a helper thread instead, with the caller's
    context (``current_job()`` included), and the caller waits for it.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._helper: ThreadPoolExecutor | None = None
        self._task: tuple[asyncio.Task[Any], object] | None = None  # the run on our loop now
        self._cancel: object = None  # the run a cancel was asked for

    def run(self, awaitable: Awaitable[Any], limit: float, run: object = None) -> Any:
        """Run to completion; ``run`` names it for :meth:`cancel`."""
        import asyncio

        coroutine = bounded(awaitable, limit, lambda: run is not None and self._cancel == run)
        if _loop_running_here():
            if self._helper is None:
                self._helper = ThreadPoolExecutor(1, thread_name_prefix="litejobs-async")
            context = contextvars.copy_context()
            return self._helper.submit(context.run, asyncio.run, coroutine).result()
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.new_event_loop()
        task = loop.create_task(coroutine)
        self._task = (task, run)
        try:
            return loop.run_until_complete(task)
        finally:
            self._task = None
            self._cancel = None

    def cancel(self, run: object) -> bool:
        """From another thread: cancel ``run`` if it is the coroutine running on our loop."""
        current, loop = self._task, self._loop
        if current is None or loop is None or current[1] != run:
            return False
        self._cancel = run
        try:
            loop.call_soon_threadsafe(current[0].cancel)
        except RuntimeError:  # the loop was closed meanwhile: nothing runs on it
            return False
        return True

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        if self._helper is not None:
            self._helper.shutdown()
            self._helper = None


def _loop_running_here() -> bool:
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:  # never imported: no event loop can be running
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
