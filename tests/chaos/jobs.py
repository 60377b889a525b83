"""The chaos job: a little work, then one fsync'd line in an append-only log.

The line is written when the job's work is done, so a run killed mid-work leaves no line and a
run killed after its line but before its success was recorded leaves a second line when the job
runs again: exactly the duplicates at-least-once delivery allows, and the checker explains.
"""

from __future__ import annotations

import os
import time


def work(token: str, log: str, work_ms: float = 0.0) -> None:
    if work_ms:
        time.sleep(work_ms / 1000)
    line = f"{token} {os.getpid()}\n".encode()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)  # one small O_APPEND write: never interleaved with another process's
        os.fsync(fd)
    finally:
        os.close(fd)
