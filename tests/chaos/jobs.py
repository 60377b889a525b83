"""The chaos job: a start mark, a little work, then one fsync'd line in an append-only log.

The start mark (``token pid time``, in ``LOG.starts``) is written before any work, so the checker
knows when every execution began; the run line (``token pid time``) is written when the job's
work is done, so a run killed mid-work leaves no run line, and a run killed after its line but
before its success was recorded leaves a second line when the job runs again: exactly the
duplicates at-least-once delivery allows, which the checker explains. Times are
``CLOCK_MONOTONIC``, shared by every process of the machine.
"""

from __future__ import annotations

import os
import time


def _append(path: str, line: str, *, sync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())  # one small O_APPEND write: never interleaved
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def work(token: str, log: str, work_ms: float = 0.0) -> None:
    # A killed process's page-cache writes survive it: no fsync needed for the start mark.
    _append(log + ".starts", f"{token} {os.getpid()} {time.monotonic():.6f}\n", sync=False)
    if work_ms:
        time.sleep(work_ms / 1000)
    _append(log, f"{token} {os.getpid()} {time.monotonic():.6f}\n", sync=True)
