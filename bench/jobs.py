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
