"""Job functions for the runtime tests; each leaves traces in files so another process can see
what ran, in which process, and how often."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from litejobs.errors import JobTimeoutError


def _mark(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{text} {os.getpid()}\n")


def touch(path: str) -> None:
    _mark(path, "done")


def ran_then_hooks_hang(path: str) -> None:
    """Succeed at once; :func:`hang_after_success` makes the hook after it hang."""
    _mark(path, "ran")


def hang_after_success(manager: Any) -> None:
    """Runner setup: an ``after_success`` hook that hangs (60 s) after ``ran_then_hooks_hang``."""

    def hook(ctx: Any) -> None:
        if ctx.path.endswith(":ran_then_hooks_hang"):
            _mark(ctx.args[0], "hook")
            time.sleep(60)

    manager.hook("after_success")(hook)


def slow(path: str, seconds: float) -> None:
    """Mark the start, sleep, mark the end: the test acts in between."""
    _mark(path, "started")
    time.sleep(seconds)
    _mark(path, "done")


def slow_once(path: str, seconds: float) -> None:
    """The first run hangs for ``seconds`` (the test kills it); later runs finish at once."""
    first = not Path(path).exists()
    _mark(path, "started")
    if first:
        time.sleep(seconds)
    _mark(path, "done")


def crash(path: str) -> None:
    """Kill our own process, every time."""
    _mark(path, "started")
    os.kill(os.getpid(), signal.SIGKILL)


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def ignore_timeout(path: str, seconds: float) -> None:
    """Swallow the in-band timeout and keep going: only the watchdog can stop this."""
    _mark(path, "started")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.05)
        except JobTimeoutError:
            _mark(path, "ignored")


def block_signals(path: str, seconds: float) -> None:
    """Block SIGALRM so the in-band timer cannot fire."""
    _mark(path, "started")
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(seconds)


def socket_timeout() -> None:
    """A real library TimeoutError: a socket read that times out after 50 ms."""
    import socket

    left, right = socket.socketpair()
    with left, right:
        left.settimeout(0.05)
        left.recv(1)  # nothing ever arrives


async def own_wait_for() -> None:
    """The job's own asyncio.wait_for gives up: its TimeoutError, not litejobs' timeout."""
    import asyncio

    await asyncio.wait_for(asyncio.sleep(30), 0.05)


class _LateAlarm:
    """A job result whose ``__class__`` raises SIGALRM: litejobs looks at the result (is it a
    coroutine to await?) after the job returned, so the alarm fires in that very window."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        os.kill(os.getpid(), signal.SIGALRM)
        return _LateAlarm


def returns_as_its_alarm_fires() -> object:
    return _LateAlarm()


def alarm_in_its_own_frame_and_its_callers() -> str:
    """The SIGALRM handler run as CPython would: in this job's frame (the job is running: a
    timeout), then in the frame that called it (litejobs' own: the job has returned, nothing)."""
    import sys

    handler = signal.getsignal(signal.SIGALRM)
    assert callable(handler)
    try:
        handler(signal.SIGALRM, sys._getframe())
    except JobTimeoutError:
        pass
    else:
        raise AssertionError("an alarm while the job runs must interrupt it")
    handler(signal.SIGALRM, sys._getframe(1))
    return "returned"


def deaf(path: str, seconds: float) -> None:
    """Ignore every stop request (the supervisor's "stop now" too): only SIGKILL ends this."""
    _mark(path, "started")
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1, signal.SIGALRM})
    time.sleep(seconds)
    _mark(path, "done")
