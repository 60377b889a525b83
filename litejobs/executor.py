"""Running one claimed job: resolve its function, call it, turn the result into an outcome.

The executor never lets a job's exception escape: an unimportable handler, bad arguments, a
timeout or any error the job raises becomes a recorded error with type, message and traceback.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .adapters.base import ClaimedJob
from .context import JobContext, _current
from .errors import HandlerNotFoundError, JobTimeoutError
from .handler import decode_handler, import_context, resolve
from .hooknames import HOOK_NAMES as HOOK_NAMES  # re-exported: the worker imports them here
from .hooknames import Hook as Hook


@dataclass(frozen=True, slots=True)
class Execution:
    """The result of running a job once."""

    ok: bool
    error: str | None
    duration: float
    exception: BaseException | None = None
    timed_out: bool = False


def format_error(exc: BaseException) -> str:
    """``Type: message`` then the traceback: what ``last_error`` keeps."""
    head = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(exc))
    return f"{head}\n\n{tb}"


try:  # the C function: signal.getsignal's enum conversion costs more than a no-op job
    from _signal import getsignal as _getsignal  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - not CPython
    _getsignal = signal.getsignal


def _raise_timeout(signum: int, frame: Any) -> None:
    raise JobTimeoutError("timed out")


class Executor:
    """Runs jobs in the calling thread, with an in-band timeout where the platform allows.

    In the main thread a ``SIGALRM`` timer interrupts a job that overruns ``max_runtime``;
    async jobs are bounded with :func:`asyncio.wait_for` on a loop kept for the worker's life.
    Jobs that ignore the interruption are the worker's watchdog's business.
    """

    def __init__(
        self,
        *,
        logger: logging.Logger | None = None,
        hooks: Mapping[str, Sequence[Hook]] | None = None,
        job_hooks: Callable[[str], Mapping[str, Sequence[Hook]]] | None = None,
    ) -> None:
        self.logger = logger or logging.getLogger("litejobs.worker")
        self.hooks = {name: list((hooks or {}).get(name, ())) for name in HOOK_NAMES}
        self._job_hooks = job_hooks
        self._loop: asyncio.AbstractEventLoop | None = None
        self._is_async: dict[Callable[..., Any], bool] = {}
        self._previous_alarm: Any = None  # SIGALRM handler to restore in close()

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        if self._previous_alarm is not None:
            signal.signal(signal.SIGALRM, self._previous_alarm)
            self._previous_alarm = None

    def execute(
        self, job: ClaimedJob, *, max_runtime: float, max_attempts: int, worker: str = ""
    ) -> Execution:
        start = time.perf_counter()
        try:
            handler = decode_handler(job.handler)
            path = handler["path"]
            args = handler.get("args") or []
            kwargs = handler.get("kwargs") or {}
            func = resolve(path)
        except Exception as exc:  # unimportable handler: an ordinary job error
            if isinstance(exc, HandlerNotFoundError):  # say where this worker looked
                exc = HandlerNotFoundError(f"{exc} ({import_context()})")
            return Execution(False, format_error(exc), time.perf_counter() - start, exc)
        ctx = JobContext(
            id=job.id,
            name=str(handler.get("name", path)),
            path=path,
            queue=job.queue,
            priority=job.priority,
            attempts=job.attempts,
            max_attempts=max_attempts,
            args=args,
            kwargs=kwargs,
            worker=worker,
            logger=self.logger,
        )
        hooks = self._hooks_for(path)
        token = _current.set(ctx)
        try:
            self._run_hooks(hooks, "before_perform", ctx)
            try:
                self._call(func, args, kwargs, max_runtime)
            except SystemExit as exc:
                # The job's own sys.exit() (a CLI's main() reused as a job, say): the worker's
                # stop-now is a KeyboardInterrupt, so this never stops the worker. Exit status
                # 0/None is a success, as for a process; anything else is a job error.
                if exc.code not in (0, None):
                    return self._failed(hooks, ctx, exc, start, max_runtime)
            except BaseException as exc:
                if not isinstance(exc, Exception | JobTimeoutError):
                    raise  # KeyboardInterrupt: the worker is being stopped now
                return self._failed(hooks, ctx, exc, start, max_runtime)
            self._run_hooks(hooks, "after_perform", ctx)
            self._run_hooks(hooks, "after_success", ctx)
            return Execution(True, None, time.perf_counter() - start)
        finally:
            _current.reset(token)

    def _failed(
        self,
        hooks: Mapping[str, Sequence[Hook]],
        ctx: JobContext,
        exc: BaseException,
        start: float,
        max_runtime: float,
    ) -> Execution:
        """A job error (or timeout): run the failure hooks, describe it for ``last_error``."""
        timed_out = isinstance(exc, JobTimeoutError | asyncio.TimeoutError)
        if timed_out:
            exc = JobTimeoutError(f"timed out after {max_runtime:g} s")
        failed = ctx if not hooks else _with_error(ctx, exc)
        self._run_hooks(hooks, "after_perform", failed)
        self._run_hooks(hooks, "after_failure", failed)
        error = format_error(exc) if not timed_out else f"JobTimeoutError: {exc}"
        return Execution(False, error, time.perf_counter() - start, exc, timed_out)

    def _call(
        self, func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], limit: float
    ) -> None:
        is_async = self._is_async.get(func)
        if is_async is None:
            is_async = self._is_async[func] = inspect.iscoroutinefunction(func)
        if is_async:
            loop = self._loop
            if loop is None or loop.is_closed():
                loop = self._loop = asyncio.new_event_loop()
            loop.run_until_complete(asyncio.wait_for(func(*args, **kwargs), limit))
            return
        timer = threading.current_thread() is threading.main_thread() and hasattr(
            signal, "setitimer"
        )
        if timer:
            # The handler stays installed between jobs (put back by close(), or re-installed
            # if a job replaced it): installing it per job cost more than a no-op job.
            if _getsignal(signal.SIGALRM) is not _raise_timeout:
                previous = signal.signal(signal.SIGALRM, _raise_timeout)
                if self._previous_alarm is None:
                    self._previous_alarm = previous if previous is not None else signal.SIG_DFL
            signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            result = func(*args, **kwargs)
            if result is not None and inspect.isawaitable(result):  # sync fn returned a coroutine
                loop = self._loop
                if loop is None or loop.is_closed():
                    loop = self._loop = asyncio.new_event_loop()
                loop.run_until_complete(asyncio.wait_for(_await(result), limit))
        finally:
            if timer:
                signal.setitimer(signal.ITIMER_REAL, 0)

    def _hooks_for(self, path: str) -> dict[str, list[Hook]]:
        own = self._job_hooks(path) if self._job_hooks else {}
        if not own and not any(self.hooks.values()):
            return {}
        return {name: [*self.hooks[name], *own.get(name, ())] for name in HOOK_NAMES}

    def _run_hooks(self, hooks: Mapping[str, Sequence[Hook]], name: str, ctx: JobContext) -> None:
        for hook in hooks.get(name, ()):
            try:
                hook(ctx)
            except Exception:
                self.logger.exception("%s hook %r failed for job %s", name, hook, ctx.id)


def _with_error(ctx: JobContext, exc: BaseException) -> JobContext:
    from dataclasses import replace

    return replace(ctx, error=exc)


async def _await(awaitable: Any) -> Any:
    return await awaitable
