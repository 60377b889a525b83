"""Time sources.

Everything in litejobs that reads the time does so through a :class:`Clock`, so tests can move
time forward instantly instead of sleeping, and storage stays in UTC epoch seconds internally.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Anything with a ``now()`` returning UTC epoch seconds."""

    def now(self) -> float: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that only moves when told to: ``clock.advance(60)``. Thread-safe."""

    def __init__(self, start: float | datetime | None = None) -> None:
        if start is None:
            start = datetime(2030, 1, 1, tzinfo=UTC)
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` and return the new time."""
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float | datetime) -> None:
        with self._lock:
            self._now = when.timestamp() if isinstance(when, datetime) else float(when)


SYSTEM_CLOCK = SystemClock()


def to_datetime(ts: float | None) -> datetime | None:
    """Epoch seconds to an aware UTC datetime (``None`` passes through)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def iso(ts: float | None) -> str | None:
    """Epoch seconds to ISO 8601 UTC text with microseconds (``2030-01-01T00:00:00.000000Z``)."""
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"  # 4-digit years, unlike strftime
