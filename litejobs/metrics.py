"""Outcome statistics: counts and run/wait-time histograms per minute and queue, mergeable.

Every batch of outcomes a worker records adds, in the same transaction, one row per (minute,
queue, series, bucket): ``series`` is the outcome (``succeeded``, ``errored``, ``failed``,
``cancelled``; its bucket is the run time's) or ``wait`` (how long the job waited between
becoming due and starting). A row holds a count and the sum of the seconds in it.

Histograms are fixed and logarithmic: bucket ``i`` holds the times in ``(2^((i-1)/4), 2^(i/4)]``
seconds, the buckets of a Prometheus native histogram of schema 2. Because every writer uses the
same buckets, rows of different workers, minutes and hosts add up by plain addition, and a
percentile read from the sum is as good as one read from a single writer's: the estimate is
the mean of the times in the bucket where the rank falls, never further from the truth than one
bucket (a factor of 2^(1/4), 19 %), and exact when the bucket holds one distinct time.

Pure: no storage, no clock; the adapters store the rows, the CLI and the exposition read them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: Buckets per doubling of time (Prometheus native histogram schema 2).
BUCKETS_PER_OCTAVE = 4
#: Times at or below 2**-30 s (about a nanosecond), zero included, share this bucket...
LOWEST = -30 * BUCKETS_PER_OCTAVE
#: ... and times above 2**30 s (34 years) this one.
HIGHEST = 30 * BUCKETS_PER_OCTAVE
#: The bucket of a run whose time is not known (a worker that died during it): counted, not timed.
UNTIMED = HIGHEST + 1
#: Outcome kinds that are counted (a ``released`` job was given back unstarted: not a run).
COUNTED = ("succeeded", "errored", "failed", "cancelled")
_COUNTED = frozenset(COUNTED)
WAIT = "wait"
PERCENTILES = (50, 95, 99)

#: One row of a batch: queue, series, bucket, count, sum of seconds.
Row = tuple[str, str, int, int, float]


def bucket_of(seconds: float) -> int:
    """The bucket holding ``seconds``."""
    if not seconds > 2.0 ** (LOWEST / BUCKETS_PER_OCTAVE):
        return LOWEST
    index = math.ceil(BUCKETS_PER_OCTAVE * math.log2(seconds))
    return min(HIGHEST, index)


def upper_bound(bucket: int) -> float:
    """The largest time bucket ``bucket`` holds."""
    return float(2.0 ** (bucket / BUCKETS_PER_OCTAVE))


class Tally:
    """Counts and sums per (queue, series, bucket), added up run by run: what a batch of
    outcomes adds to the statistics. A worker keeps one across the flushes of a claimed batch
    and writes its :meth:`rows` once (adding is one dict update per run and series)."""

    __slots__ = ("sums",)

    def __init__(self) -> None:
        self.sums: dict[tuple[str, str, int], list[float]] = {}

    def __bool__(self) -> bool:
        return bool(self.sums)

    def copy(self) -> Tally:
        twin = Tally()
        twin.sums = {key: list(cell) for key, cell in self.sums.items()}
        return twin

    def add(self, runs: Iterable[tuple[str, str, float | None, float | None]]) -> Tally:
        """Add ``(queue, kind, run seconds, wait seconds)`` runs. Uncounted kinds are skipped;
        a run of unknown length is counted in :data:`UNTIMED`, a missing wait left out."""
        for queue, kind, run, wait in runs:
            if kind not in _COUNTED:
                continue
            self._count((queue, kind, UNTIMED if run is None else bucket_of(run)), run or 0.0)
            if wait is not None:
                self._count((queue, WAIT, bucket_of(wait)), max(0.0, wait))
        return self

    def _count(self, key: tuple[str, str, int], seconds: float) -> None:
        cell = self.sums.get(key)
        if cell is None:
            self.sums[key] = [1, seconds]
        else:
            cell[0] += 1
            cell[1] += seconds

    def rows(self) -> list[Row]:
        """The rows to add, sorted (writers that take rows in one order never deadlock)."""
        return [(q, s, b, int(c[0]), c[1]) for (q, s, b), c in sorted(self.sums.items())]


def tally(runs: Iterable[tuple[str, str, float | None, float | None]]) -> list[Row]:
    """The rows ``runs`` add (see :class:`Tally`)."""
    return Tally().add(runs).rows()


@dataclass
class Histogram:
    """Counts and sums of seconds per bucket; adds up across rows, workers and minutes."""

    buckets: dict[int, list[float]] = field(default_factory=dict)

    def add(self, bucket: int, count: int, seconds: float) -> None:
        cell = self.buckets.setdefault(bucket, [0, 0.0])
        cell[0] += count
        cell[1] += seconds

    @property
    def count(self) -> int:
        return int(sum(c[0] for c in self.buckets.values()))

    @property
    def total(self) -> float:
        return float(sum(c[1] for c in self.buckets.values()))

    def percentile(self, pct: float) -> float | None:
        """The ``pct`` percentile (nearest rank), estimated as the mean of its bucket's times;
        ``None`` when empty."""
        count = self.count
        if not count:
            return None
        rank = max(1, math.ceil(pct / 100 * count))
        seen = 0
        for bucket in sorted(self.buckets):
            n, seconds = self.buckets[bucket]
            seen += int(n)
            if seen >= rank:
                return seconds / n if n else upper_bound(bucket)
        return None  # pragma: no cover - rank <= count

    def cumulative(self, bounds: Sequence[float]) -> list[int]:
        """How many times are at or below each of ``bounds`` (each a bucket's upper bound)."""
        ordered = sorted(self.buckets.items())
        return [int(sum(c[0] for b, c in ordered if upper_bound(b) <= bound)) for bound in bounds]


@dataclass
class QueueStats:
    """One queue's outcomes over a window: counts per kind, run times, wait times."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))
    run: Histogram = field(default_factory=Histogram)
    wait: Histogram = field(default_factory=Histogram)

    def add(self, series: str, bucket: int, count: int, seconds: float) -> None:
        if series == WAIT:
            self.wait.add(bucket, count, seconds)
            return
        self.counts[series] = self.counts.get(series, 0) + count
        if bucket != UNTIMED:
            self.run.add(bucket, count, seconds)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: counts, and p50/p95/p99 of run and wait times in seconds."""
        return {
            **self.counts,
            "run_seconds": {f"p{p}": _round(self.run.percentile(p)) for p in PERCENTILES},
            "wait_seconds": {f"p{p}": _round(self.wait.percentile(p)) for p in PERCENTILES},
        }


def summarize(rows: Iterable[tuple[str, str, int, int, float]]) -> dict[str, QueueStats]:
    """``{queue: QueueStats}`` from stored ``(queue, series, bucket, count, seconds)`` rows."""
    result: dict[str, QueueStats] = {}
    for queue, series, bucket, count, seconds in rows:
        result.setdefault(queue, QueueStats()).add(series, int(bucket), int(count), seconds)
    return dict(sorted(result.items()))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
