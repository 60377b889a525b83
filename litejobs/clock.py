"""Time sources.

Everything in litejobs that reads the time does so through a :class:`Clock`, so tests can move
time forward instantly instead of sleeping, and storage stays in UTC epoch seconds internally.

A clock has two faces, because they fail differently:

* ``now()``: the wall clock (UTC epoch seconds). Stored times (``run_at``, heartbeats, lock
  times) use it, so every process sharing a database must agree on it. It can jump (NTP steps,
  an operator's ``date -s``, a VM restored from a snapshot).
* ``monotonic()``: seconds that only ever move forward at the rate of real time, never jump. On
  Linux it is ``CLOCK_MONOTONIC``, one clock for every process of a machine since it booted: how
  long a worker on *this* machine has been silent is measured with it, so a wall-clock jump of
  days never makes a live worker look dead (see :mod:`litejobs.liveness`).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall time (UTC epoch seconds) and monotonic time (seconds, never jumping)."""

    def now(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real wall clock and the machine's monotonic clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that only moves when told to. Thread-safe.

    ``advance(60)`` moves both faces, as real time passing does; ``jump(86_400)`` moves only
    the wall clock, as a clock being set does (the monotonic face stands still).
    """

    def __init__(self, start: float | datetime | None = None) -> None:
        if start is None:
            start = datetime(2030, 1, 1, tzinfo=UTC)
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)
        self._mono = 1_000.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> float:
        """Let ``seconds`` of real time pass (both faces) and return the new wall time."""
        with self._lock:
            self._now += seconds
            self._mono += max(0.0, seconds)
            return self._now

    def jump(self, seconds: float) -> float:
        """Set the wall clock ``seconds`` forward (or back, if negative) without time passing."""
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float | datetime) -> None:
        """Move the wall clock to ``when``; real time passes only when that is forward."""
        target = when.timestamp() if isinstance(when, datetime) else float(when)
        with self._lock:
            self._mono += max(0.0, target - self._now)
            self._now = target


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
