"""The job the PostgreSQL multi-process tests run: a little work, then one fsync'd log line.

The line (``token host pid``) is written when the work is done, so a run killed mid-work leaves
no line, and a run killed after its line but before its success was recorded leaves a second
line when the job runs again: the duplicates at-least-once delivery allows, which the tests
explain. ``host`` is the (simulated) host name of the worker process that ran the job.
"""

from __future__ import annotations

import os
import socket
import time


def work(token: str, log: str, work_ms: float = 0.0) -> None:
    if work_ms:
        time.sleep(work_ms / 1000)
    line = f"{token} {socket.gethostname()} {os.getpid()}\n".encode()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)  # one small O_APPEND write: never interleaved with another process's
        os.fsync(fd)
    finally:
        os.close(fd)


def fail(token: str) -> None:
    """Always raises: with ``max_attempts=1`` it leaves a failed job (tests of ``retry``)."""
    raise RuntimeError(f"{token} failed on purpose")
