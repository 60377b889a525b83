"""Job functions for the runtime tests; each leaves traces in files so another process can see
what ran, in which process, and how often."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from litejobs.errors import JobTimeoutError


def _mark(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{text} {os.getpid()}\n")


def touch(path: str) -> None:
    _mark(path, "done")


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
