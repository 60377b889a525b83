"""Running one claimed job: resolve its function, call it, turn the result into an outcome.

The executor never lets a job's exception escape: an unimportable handler, bad arguments, a
timeout or any error the job raises becomes a recorded error with type, message and traceback.
Nor does it let a hook's: whatever a lifecycle hook raises (``SystemExit`` and
``KeyboardInterrupt`` included) is logged and changes nothing. Only the worker's own stop-now
(:class:`~litejobs.errors.StopNow`) goes through, and a ``KeyboardInterrupt`` from the job itself
(as before: the job was interrupted, its worker stops).
"""

from __future__ import annotations

import inspect
import logging
import signal
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any

from .adapters.base import ClaimedJob
from .context import JobContext, _current
from .deadline import (
    AsyncRunner,
    alarm_available,
    call_with_alarm,
    fast_getsignal,
    install_alarm_handler,
)
from .errors import HandlerNotFoundError, JobTimeoutError, StopNow
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
    value: Any = None  # what the job returned (a success)


def format_error(exc: BaseException) -> str:
    """``Type: message`` (``Type`` alone without a message) then the traceback: what
    ``last_error`` keeps."""
    message = str(exc)
    head = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    tb = "".join(traceback.format_exception(exc))
    return f"{head}\n\n{tb}"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C while litejobs runs jobs in this process: the worker's own stop-now."""
    raise StopNow


class Executor:
    """Runs jobs in the calling thread, with an in-band timeout where the platform allows.

    In the main thread a ``SIGALRM`` timer interrupts a job that overruns ``max_runtime``;
    async jobs (and async hooks) run under a deadline on a loop kept for the worker's life
    (:mod:`litejobs.deadline`). Jobs that ignore the interruption are the worker's watchdog's
    business.
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
        self._async = AsyncRunner()
        self._is_async: dict[Callable[..., Any], bool] = {}
        self._previous: dict[int, Any] = {}  # signal -> the handler to restore in close()

    def close(self) -> None:
        self._async.close()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

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
        timer = alarm_available()
        if timer:
            self._own_signals()
        token = _current.set(ctx)
        try:
            self._run_hooks(hooks, "before_perform", ctx, max_runtime)
            value = None
            try:
                value = self._call(func, args, kwargs, max_runtime, timer)
            except SystemExit as exc:
                # The job's own sys.exit() (a CLI's main() reused as a job, say): the worker's
                # stop-now is a StopNow, so this never stops the worker. Exit status 0/None is
                # a success, as for a process; anything else is a job error.
                if exc.code not in (0, None):
                    return self._failed(hooks, ctx, exc, start, max_runtime)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise  # the worker is being stopped now
                return self._failed(hooks, ctx, exc, start, max_runtime)
            self._run_hooks(hooks, "after_perform", ctx, max_runtime)
            self._run_hooks(hooks, "after_success", ctx, max_runtime)
            return Execution(True, None, time.perf_counter() - start, value=value)
        finally:
            _current.reset(token)

    def _own_signals(self) -> None:
        """In the main thread: our ``SIGALRM`` handler, and Ctrl-C marked as the worker's own
        stop-now where Python's default handler would raise a plain ``KeyboardInterrupt``."""
        previous = install_alarm_handler()
        if previous is not None:
            self._previous.setdefault(signal.SIGALRM, previous)
        if fast_getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous.setdefault(signal.SIGINT, signal.signal(signal.SIGINT, _interrupt))

    def _failed(
        self,
        hooks: Mapping[str, Sequence[Hook]],
        ctx: JobContext,
        exc: BaseException,
        start: float,
        max_runtime: float,
    ) -> Execution:
        """A job error (or timeout): run the failure hooks, describe it for ``last_error``.

        Only litejobs' own deadline is a timeout; a ``TimeoutError`` the job raised is its
        own error, recorded (and given to the hooks) as it is.
        """
        timed_out = isinstance(exc, JobTimeoutError)
        if timed_out:
            exc = JobTimeoutError(f"timed out after {max_runtime:g} s")
        failed = ctx if not hooks else replace(ctx, error=exc)
        self._run_hooks(hooks, "after_perform", failed, max_runtime)
        self._run_hooks(hooks, "after_failure", failed, max_runtime)
        error = format_error(exc) if not timed_out else f"JobTimeoutError: {exc}"
        return Execution(False, error, time.perf_counter() - start, exc, timed_out)

    def _call(
        self,
        func: Callable[..., Any],
        args: list[Any],
        kwargs: dict[str, Any],
        limit: float,
        timer: bool,
    ) -> Any:
        """Call the job; what it returned (an async job's awaited value)."""
        is_async = self._is_async.get(func)
        if is_async is None:
            is_async = self._is_async[func] = inspect.iscoroutinefunction(func)
        if is_async:
            return self._async.run(func(*args, **kwargs), limit)
        started = time.monotonic()
        result = call_with_alarm(func, args, kwargs, limit) if timer else func(*args, **kwargs)
        if result is not None and inspect.isawaitable(result):  # sync fn returned a coroutine
            return self._async.run(result, max(limit - (time.monotonic() - started), 1e-3))
        return result

    def _hooks_for(self, path: str) -> dict[str, list[Hook]]:
        own = self._job_hooks(path) if self._job_hooks else {}
        if not own and not any(self.hooks.values()):
            return {}
        return {name: [*self.hooks[name], *own.get(name, ())] for name in HOOK_NAMES}

    def _run_hooks(
        self, hooks: Mapping[str, Sequence[Hook]], name: str, ctx: JobContext, limit: float
    ) -> None:
        """Run one stage's hooks; an ``async def`` hook is awaited, bounded by ``limit``.

        Whatever a hook raises is logged and changes nothing -- ``SystemExit``, a
        ``KeyboardInterrupt`` of its own, its timeout -- except the worker's stop-now.
        """
        for hook in hooks.get(name, ()):
            try:
                result = hook(ctx)
                if result is not None and inspect.isawaitable(result):
                    self._async.run(result, limit)
            except StopNow:
                raise
            except BaseException:
                self.logger.exception("%s hook %r failed for job %s", name, hook, ctx.id)
