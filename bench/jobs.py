"""Job functions the benchmark's workers import by ``module:qualname`` (so they must live in an
importable module, not in the benchmark script)."""

from __future__ import annotations

import os
import time


def noop(*args: object) -> None:
    """The no-op job: measures the queue, not the work."""


def stamp(path: str, token: int) -> None:
    """Append ``token start-time`` (CLOCK_MONOTONIC, shared by all processes on Linux) to ``path``.

    One ``write`` of a short line to an ``O_APPEND`` file is atomic, so two workers can share it.
    """
    line = f"{token} {time.monotonic():.6f}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def spin(path: str, token: int) -> None:
    """A long job to cancel: append ``start TOKEN TIME``, work in 1 ms steps until interrupted,
    then append ``stop TOKEN TIME`` as it stops (CLOCK_MONOTONIC, shared by every process)."""
    _line(path, f"start {token} {time.monotonic():.6f}\n")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.001)
    finally:
        _line(path, f"stop {token} {time.monotonic():.6f}\n")


def _line(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
