"""Recurring jobs across daylight-saving changes, in two zones, driven by a fake clock.

The rule (docs/extras.md, the one Vixie cron, cronie and cronsim follow):

* a schedule whose minute or hour field is a wildcard (``*/30 * * * *``, ``*/15``, hourly)
  follows real time: when clocks go back it fires in both passes of the repeated hour, when
  they go forward the skipped hour simply has no ticks;
* a schedule at a fixed time (``30 2 * * *``) fires once a day: in a repeated hour at the
  first pass only, in a skipped hour at the first minute that exists (03:00).

Each test drives a real :class:`~litejobs.recurring.Ticker` on a real SQLite file, as a worker
does, and reads the ticks back from the jobs it stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from litejobs import FakeClock, JobManager, SQLiteAdapter, WorkerConfig
from litejobs.recurring import Ticker
from tests import sample_jobs

MIN = 60.0
HOUR = 3600.0

#: (zone, transition, the UTC instant the clocks change).
TRANSITIONS = {
    "berlin-spring": ("Europe/Berlin", datetime(2030, 3, 31, 1, tzinfo=UTC)),  # 02:00 -> 03:00
    "berlin-fall": ("Europe/Berlin", datetime(2030, 10, 27, 1, tzinfo=UTC)),  # 03:00 -> 02:00
    "ny-spring": ("America/New_York", datetime(2030, 3, 10, 7, tzinfo=UTC)),  # 02:00 -> 03:00
    "ny-fall": ("America/New_York", datetime(2030, 11, 3, 6, tzinfo=UTC)),  # 02:00 -> 01:00
}

#: The ticks each schedule must fire from 2 h before to 2 h after the change, as wall-clock
#: times with the zone's abbreviation (which tells the two passes of a repeated hour apart).
EXPECTED = {
    ("berlin-spring", "*/30 * * * *"): "00:00 CET, 00:30 CET, 01:00 CET, 01:30 CET, "
    "03:00 CEST, 03:30 CEST, 04:00 CEST, 04:30 CEST, 05:00 CEST",
    ("berlin-spring", "*/15 * * * *"): "00:00 CET, 00:15 CET, 00:30 CET, 00:45 CET, "
    "01:00 CET, 01:15 CET, 01:30 CET, 01:45 CET, 03:00 CEST, 03:15 CEST, 03:30 CEST, "
    "03:45 CEST, 04:00 CEST, 04:15 CEST, 04:30 CEST, 04:45 CEST, 05:00 CEST",
    ("berlin-spring", "0 * * * *"): "00:00 CET, 01:00 CET, 03:00 CEST, 04:00 CEST, 05:00 CEST",
    ("berlin-spring", "30 2 * * *"): "03:00 CEST",
    ("berlin-fall", "*/30 * * * *"): "01:00 CEST, 01:30 CEST, 02:00 CEST, 02:30 CEST, "
    "02:00 CET, 02:30 CET, 03:00 CET, 03:30 CET, 04:00 CET",
    ("berlin-fall", "*/15 * * * *"): "01:00 CEST, 01:15 CEST, 01:30 CEST, 01:45 CEST, "
    "02:00 CEST, 02:15 CEST, 02:30 CEST, 02:45 CEST, 02:00 CET, 02:15 CET, 02:30 CET, "
    "02:45 CET, 03:00 CET, 03:15 CET, 03:30 CET, 03:45 CET, 04:00 CET",
    ("berlin-fall", "0 * * * *"): "01:00 CEST, 02:00 CEST, 02:00 CET, 03:00 CET, 04:00 CET",
    ("berlin-fall", "30 2 * * *"): "02:30 CEST",
    ("ny-spring", "*/30 * * * *"): "00:00 EST, 00:30 EST, 01:00 EST, 01:30 EST, "
    "03:00 EDT, 03:30 EDT, 04:00 EDT, 04:30 EDT, 05:00 EDT",
    ("ny-spring", "*/15 * * * *"): "00:00 EST, 00:15 EST, 00:30 EST, 00:45 EST, "
    "01:00 EST, 01:15 EST, 01:30 EST, 01:45 EST, 03:00 EDT, 03:15 EDT, 03:30 EDT, "
    "03:45 EDT, 04:00 EDT, 04:15 EDT, 04:30 EDT, 04:45 EDT, 05:00 EDT",
    ("ny-spring", "0 * * * *"): "00:00 EST, 01:00 EST, 03:00 EDT, 04:00 EDT, 05:00 EDT",
    ("ny-spring", "30 2 * * *"): "03:00 EDT",
    ("ny-fall", "*/30 * * * *"): "00:00 EDT, 00:30 EDT, 01:00 EDT, 01:30 EDT, "
    "01:00 EST, 01:30 EST, 02:00 EST, 02:30 EST, 03:00 EST",
    ("ny-fall", "*/15 * * * *"): "00:00 EDT, 00:15 EDT, 00:30 EDT, 00:45 EDT, "
    "01:00 EDT, 01:15 EDT, 01:30 EDT, 01:45 EDT, 01:00 EST, 01:15 EST, 01:30 EST, "
    "01:45 EST, 02:00 EST, 02:15 EST, 02:30 EST, 02:45 EST, 03:00 EST",
    ("ny-fall", "0 * * * *"): "00:00 EDT, 01:00 EDT, 01:00 EST, 02:00 EST, 03:00 EST",
    ("ny-fall", "30 2 * * *"): "02:30 EST",
}


def make_ticker(
    tmp_path_factory: pytest.TempPathFactory, cron: str, zone: str, clock: FakeClock
) -> tuple[Ticker, SQLiteAdapter]:
    adapter = SQLiteAdapter(tmp_path_factory.mktemp("dst") / "jobs.db", clock=clock)
    jobs = JobManager(adapters={"db": adapter}, workers=[WorkerConfig(sleep_delay=0)])
    jobs.recurring(sample_jobs.record, cron=cron, args=["tick"], timezone=zone)
    ticker = jobs.ticker()
    assert ticker is not None
    return ticker, adapter


def fired(adapter: SQLiteAdapter, zone: str) -> str:
    """The ticks enqueued so far, as wall-clock times in ``zone``, in order."""
    times = sorted(job.run_at for job in adapter.list_jobs(limit=None) if job.run_at is not None)
    return ", ".join(datetime.fromtimestamp(t, ZoneInfo(zone)).strftime("%H:%M %Z") for t in times)


@pytest.mark.parametrize("step", ["due", "minute"])
@pytest.mark.parametrize(("transition", "cron"), sorted(EXPECTED))
def test_every_tick_fires_once_across_the_change(
    tmp_path_factory: pytest.TempPathFactory, transition: str, cron: str, step: str
) -> None:
    """``due``: the clock jumps to each tick, as an idle worker wakes for it; ``minute``: the
    worker looks once a minute, so ticks are also found between two due times."""
    zone, change = TRANSITIONS[transition]
    start, end = change.timestamp() - 2 * HOUR, change.timestamp() + 2 * HOUR
    clock = FakeClock(start - MIN)
    ticker, adapter = make_ticker(tmp_path_factory, cron, zone, clock)
    assert ticker.run() == []  # first sight: the starting point, nothing enqueued
    while True:
        due = ticker.due_at
        assert due is not None
        target = due if step == "due" else clock.now() + MIN
        if target > end:
            break
        clock.set(target)
        ticker.run()
    assert fired(adapter, zone) == EXPECTED[transition, cron]
    adapter.close()


@pytest.mark.parametrize(
    ("transition", "cron", "asleep", "woke", "catch_up"),
    [
        # Down across the repeated hour's second pass: the latest missed tick is in it.
        ("berlin-fall", "*/30 * * * *", 40 * MIN, 90 * MIN, "02:30 CET"),
        ("berlin-fall", "0 * * * *", 30 * MIN, 80 * MIN, "02:00 CET"),
        ("ny-fall", "*/15 * * * *", 50 * MIN, 100 * MIN, "01:30 EST"),
        # Down across the skipped hour: the 02:30 job's tick is 03:00, run once on start-up.
        ("berlin-spring", "30 2 * * *", 30 * MIN, 90 * MIN, "03:00 CEST"),
    ],
)
def test_a_worker_down_across_the_change_catches_up_with_the_latest_tick(
    tmp_path_factory: pytest.TempPathFactory,
    transition: str,
    cron: str,
    asleep: float,
    woke: float,
    catch_up: str,
) -> None:
    """``asleep``/``woke``: real time after the hour before the change (the worker last looked
    at ``asleep``, and starts again at ``woke``)."""
    zone, change = TRANSITIONS[transition]
    base = change.timestamp() - HOUR
    clock = FakeClock(base + asleep)
    ticker, adapter = make_ticker(tmp_path_factory, cron, zone, clock)
    ticker.run()  # the starting point: the tick at or before ``asleep``
    clock.set(base + woke)
    assert len(ticker.run()) == 1
    assert fired(adapter, zone) == catch_up
    adapter.close()
