"""Wake-up on file changes (Linux ``inotify`` through ctypes), for idle SQLite workers.

Every commit in WAL mode writes the ``-wal`` file, so watching it for ``IN_MODIFY`` tells an idle
worker "something committed" within microseconds, from any process, while the worker sleeps in
``select`` without waking up at all. Polling ``PRAGMA data_version`` every few milliseconds
costs 1-2 % of a core per idle worker (measured by ``scripts/bench``); this costs nothing.

Where inotify is unavailable (macOS, Windows, a file system without it), :func:`watch` returns
``None`` and the caller falls back to polling.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import sys

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVE_SELF = 0x00000800
IN_DELETE_SELF = 0x00000400
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

_libc: ctypes.CDLL | None = None


def _load() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.inotify_init1.argtypes = [ctypes.c_int]
            libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            _libc = libc
        except (OSError, AttributeError):
            return None
    return _libc


class FileWatch:
    """An inotify descriptor watching one file for writes. Not thread-safe: one per thread."""

    def __init__(self, fd: int, pid: int) -> None:
        self.fd = fd
        self.pid = pid

    def wait(self, timeout: float) -> bool:
        """Block until the file is written (True) or ``timeout`` passes (False)."""
        try:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        except InterruptedError:
            return False
        if not ready:
            return False
        self.drain()
        return True

    def drain(self) -> None:
        """Discard queued events (we only care that something happened)."""
        try:
            while os.read(self.fd, 65536):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def watch(path: str) -> FileWatch | None:
    """A :class:`FileWatch` on ``path``, or ``None`` (no inotify, or the file is missing)."""
    libc = _load()
    if libc is None or not os.path.exists(path):
        return None
    fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        return None
    mask = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVE_SELF | IN_DELETE_SELF
    if libc.inotify_add_watch(fd, os.fsencode(path), mask) < 0:
        os.close(fd)
        return None
    return FileWatch(fd, os.getpid())
