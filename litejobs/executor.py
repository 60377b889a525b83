"""Running one claimed job: resolve its function, call it, turn the result into an outcome.

The executor never lets a job's exception escape: an unimportable handler, bad arguments, a
timeout or any error the job raises becomes a recorded error with type, message and traceback.
Nor does it let a hook's: whatever a lifecycle hook raises (``SystemExit`` and
``KeyboardInterrupt`` included) is logged and changes nothing. Only the worker's own stop-now
(:class:`~litejobs.errors.StopNow`) goes through, and a ``KeyboardInterrupt`` from the job itself
(as before: the job was interrupted, its worker stops).

A job may choose its outcome (:mod:`litejobs.outcomes`): ``Discard`` fails it for good,
``Snooze`` asks to run again later uncounted, ``Cancel`` ends it cancelled; and a person's cancel
interrupts it (:meth:`Executor.interrupt`, from the worker's keeper thread) with
:class:`~litejobs.errors.JobCancelledError`. Hooks: ``after_perform`` always (with the error, the
snooze or the cancel), then ``after_success``, ``after_failure`` (errors, timeouts, discards) or
``after_cancel``; a snooze is neither a success nor a failure.
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
from typing import Any, Literal

from .adapters.base import ClaimedJob
from .bounds import storable_text
from .context import JobContext, _current
from .deadline import (
    AsyncRunner,
    alarm_available,
    call_with_alarm,
    fast_getsignal,
    install_alarm_handler,
    interrupt_main,
)
from .errors import HandlerNotFoundError, JobCancelledError, JobTimeoutError, StopNow
from .handler import decode_handler, import_context, resolve
from .hooknames import HOOK_NAMES as HOOK_NAMES  # re-exported: the worker imports them here
from .hooknames import Hook as Hook
from .outcomes import Cancel, Discard, Snooze

#: What ended a run other than success or an error: the job's choice, or a person's cancel.
Directive = Literal["discarded", "snoozed", "cancelled"]


@dataclass(frozen=True, slots=True)
class Execution:
    """The result of running a job once."""

    ok: bool
    error: str | None
    duration: float
    exception: BaseException | None = None
    timed_out: bool = False
    directive: Directive | None = None
    snooze: float = 0.0  # seconds, for a snoozed run
    value: Any = None  # what the job returned (a success)
    #: The worker's stop-now arrived during the hooks that follow the outcome: the outcome
    #: stands (record it, then stop), so a finished job is not run again.
    stop_now: bool = False


def run_of(job: ClaimedJob) -> tuple[int, float, int]:
    """What names one run of a job: a signal meant for it never stops another run."""
    return (job.id, job.locked_at, job.attempts)


def format_error(exc: BaseException) -> str:
    """``Type: message`` (``Type`` alone without a message) then the traceback: what
    ``last_error`` keeps."""
    try:
        message = str(exc)
    except Exception:  # the job's exception type is broken: its outcome must still be recorded
        message = "<exception str() failed>"  # what the traceback module writes then
    head = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    tb = "".join(traceback.format_exception(exc))
    return storable_text(f"{head}\n\n{tb}")


def _plain_call(
    func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], limit: float, run: object
) -> Any:
    """Call ``func`` with no timer (off the main thread: the watchdog is the only bound)."""
    return func(*args, **kwargs)


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
        self._calling: tuple[object, bool] | None = None  # the run in the job's call, timer
        #: Told a run's outcome as soon as its call ends, before the hooks that follow it run:
        #: the worker's watchdog records that outcome if those hooks hang (never a timeout).
        self.on_decided: Callable[[Execution], None] | None = None

    def interrupt(self, job: ClaimedJob) -> bool:
        """From another thread: stop ``job``'s run with :class:`JobCancelledError` if it is in
        its call now. ``False``: it is not (between calls, in a hook, finished), or it cannot
        be (a sync job in a thread other than the main one): ask again later."""
        calling, run = self._calling, run_of(job)
        if calling is None or calling[0] != run:
            return False
        if self._async.cancel(run):
            return True
        if calling[1]:
            interrupt_main(run)
            return True
        return False

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
            self._calling = (run_of(job), timer)
            value = None
            try:
                value = self._call(func, args, kwargs, max_runtime, timer, self._calling[0])
            except SystemExit as exc:
                # The job's own sys.exit() (a CLI's main() reused as a job, say): the worker's
                # stop-now is a StopNow, so this never stops the worker. Exit status 0/None is
                # a success, as for a process; anything else is a job error.
                if exc.code not in (0, None):
                    return self._failed(hooks, ctx, exc, start, max_runtime)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise  # the worker is being stopped now
                return self._ended(hooks, ctx, exc, start, max_runtime)
            finally:
                self._calling = None
            decided = Execution(True, None, time.perf_counter() - start, value=value)
            return self._after(hooks, ("after_perform", "after_success"), ctx, max_runtime, decided)
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

    def _ended(
        self,
        hooks: Mapping[str, Sequence[Hook]],
        ctx: JobContext,
        exc: BaseException,
        start: float,
        max_runtime: float,
    ) -> Execution:
        """The job's call raised: an outcome it chose, a person's cancel, or a failure."""
        duration = time.perf_counter() - start
        if isinstance(exc, Snooze):
            snoozed = Execution(False, None, duration, exc, directive="snoozed", snooze=exc.seconds)
            return self._after(
                hooks, ("after_perform",), replace(ctx, error=exc), max_runtime, snoozed
            )
        if isinstance(exc, Cancel | JobCancelledError):
            cancelled = Execution(False, format_error(exc), duration, exc, directive="cancelled")
            stages = ("after_perform", "after_cancel")
            return self._after(hooks, stages, replace(ctx, error=exc), max_runtime, cancelled)
        return self._failed(hooks, ctx, exc, start, max_runtime)

    def _failed(
        self,
        hooks: Mapping[str, Sequence[Hook]],
        ctx: JobContext,
        exc: BaseException,
        start: float,
        max_runtime: float,
    ) -> Execution:
        """A job error (or timeout, or discard): run the failure hooks, describe it for
        ``last_error``.

        Only litejobs' own deadline is a timeout; a ``TimeoutError`` the job raised is its
        own error, recorded (and given to the hooks) as it is.
        """
        timed_out = isinstance(exc, JobTimeoutError)
        if timed_out:
            exc = JobTimeoutError(f"timed out after {max_runtime:g} s")
        failed = ctx if not hooks else replace(ctx, error=exc)
        error = format_error(exc) if not timed_out else f"JobTimeoutError: {exc}"
        directive: Directive | None = "discarded" if isinstance(exc, Discard) else None
        decided = Execution(False, error, time.perf_counter() - start, exc, timed_out, directive)
        return self._after(hooks, ("after_perform", "after_failure"), failed, max_runtime, decided)

    def _call(
        self,
        func: Callable[..., Any],
        args: list[Any],
        kwargs: dict[str, Any],
        limit: float,
        timer: bool,
        run: object = None,
    ) -> Any:
        """Call the job; what it returned (an async job's awaited value)."""
        is_async = self._is_async.get(func)
        if is_async is None:
            is_async = self._is_async[func] = inspect.iscoroutinefunction(func)
        if is_async:
            return self._async.run(func(*args, **kwargs), limit, run)
        started = time.monotonic()
        call = call_with_alarm if timer else _plain_call
        result = call(func, args, kwargs, limit, run)
        if result is not None and inspect.isawaitable(result):  # sync fn returned a coroutine
            return self._async.run(result, max(limit - (time.monotonic() - started), 1e-3), run)
        return result

    def _hooks_for(self, path: str) -> dict[str, list[Hook]]:
        own = self._job_hooks(path) if self._job_hooks else {}
        if not own and not any(self.hooks.values()):
            return {}
        return {name: [*self.hooks[name], *own.get(name, ())] for name in HOOK_NAMES}

    def _after(
        self,
        hooks: Mapping[str, Sequence[Hook]],
        stages: Sequence[str],
        ctx: JobContext,
        limit: float,
        decided: Execution,
    ) -> Execution:
        """Run the hooks that follow the ``decided`` outcome; the run's execution, its duration
        counting them.

        The outcome was decided before them, so it must be recorded, never the job run again:
        the worker is told it first (:attr:`on_decided`: its watchdog records it should the
        hooks hang), and a stop-now that cuts the hooks short is marked (``stop_now``).
        """
        if not any(hooks.get(stage) for stage in stages):
            return decided
        if self.on_decided is not None:
            self.on_decided(decided)
        hooks_started, stop_now = time.perf_counter(), False
        try:
            for stage in stages:
                self._run_hooks(hooks, stage, ctx, limit)
        except StopNow:
            stop_now = True
        duration = decided.duration + time.perf_counter() - hooks_started
        return replace(decided, duration=duration, stop_now=stop_now)

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
