"""Recurring (cron) jobs: each tick fires exactly once, however many workers or hosts run.

Every worker carries a :class:`Ticker` for its adapter and, when a tick comes due, asks the
database to enqueue it (:meth:`~litejobs.adapters.base.Adapter.enqueue_tick`). The database
decides who wins: the tick is recorded under a key of (schedule name, tick time) in the same
transaction as the job row, so a tick can never enqueue twice -- not with four workers racing,
not with two hosts whose clocks disagree by a few seconds. No "run the scheduler on one box".

Catch-up rule (documented in ``docs/extras.md``): ticks missed while nothing ran are collapsed
into one run, enqueued when a worker next starts (for the latest missed tick). A schedule seen
for the first time starts at its *next* tick; it does not fire for the tick just before it was
deployed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .adapters.base import Adapter, NewJob
from .errors import ConfigurationError, LiteJobsError, StorageError

if TYPE_CHECKING:
    from .clock import Clock

logger = logging.getLogger("litejobs.recurring")

#: How long a ticker waits before retrying after a storage error.
RETRY_AFTER = 5.0
#: Longer than any DST shift in the tz database (2 h at most): a forward walk that starts this
#: long before a tick found backwards sees every tick of a repeated hour after it.
_DST_MARGIN = 3 * 3600.0
#: Backward hints tried before :meth:`Recurring.last_tick` gives up (one is always enough in
#: practice; the bound keeps a pathological expression from looping).
_HINT_TRIES = 4


def parse_timezone(name: str | tzinfo | None) -> tzinfo:
    """An IANA zone name (``"Europe/Berlin"``), a ``tzinfo``, or ``None`` for UTC."""
    if name is None:
        return UTC
    if isinstance(name, tzinfo):
        return name
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"unknown timezone {name!r}; use an IANA name like 'Europe/Berlin' or 'UTC'"
        ) from None


def check_cron(expr: Any) -> str:
    """Validate a cron expression now (at definition), so a typo never reaches a worker."""
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigurationError(
            f"cron must be a cron expression like '*/15 * * * *', got {expr!r}"
        )
    try:
        CronSim(expr, datetime(2030, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ConfigurationError(
            f"invalid cron expression {expr!r}: {exc}; e.g. '*/15 * * * *' (every 15 minutes)"
        ) from None
    return expr


@dataclass(frozen=True)
class Recurring:
    """One schedule: a cron expression, a time zone and the job (as a row template) it enqueues.

    ``name`` keys the schedule in the database; renaming a schedule starts it afresh.
    """

    name: str
    cron: str
    job: NewJob  # the row to insert at each tick (run_at is set to the tick)
    timezone: tzinfo = UTC
    adapter: str | None = None

    def last_tick(self, now: float) -> float | None:
        """The latest tick at or before ``now`` (epoch seconds), or ``None`` if there is none.

        Ticks are the ones :meth:`next_tick` walks through, forwards: cronsim's backward walk
        disagrees with its forward one around a DST change (it skips the repeated hour), so the
        backward walk only gives a hint, and a forward walk from a little before it decides.
        """
        probe = now
        for _ in range(_HINT_TRIES):
            hint = self._tick_backwards(probe)
            if hint is None:
                return None
            # The forward walk yields ticks strictly after its start: begin just before the hint.
            back = _DST_MARGIN if self._offset_changes(hint - _DST_MARGIN, now) else 1.0
            start = hint - back
            found = self._last_forward(start, now)
            if found is not None:
                return found
            probe = start  # the hint was no forward tick: look further back
        return None  # pragma: no cover - in practice the first hint is a forward tick

    def _offset_changes(self, start: float, end: float) -> bool:
        """Whether the zone's UTC offset differs at ``start`` and ``end`` (a DST change between:
        only then can the backward walk be wrong, so only then is the longer walk paid for)."""
        zone = self.timezone
        return bool(
            datetime.fromtimestamp(start, zone).utcoffset()
            != datetime.fromtimestamp(end, zone).utcoffset()
        )

    def _tick_backwards(self, now: float) -> float | None:
        here = datetime.fromtimestamp(now, UTC).astimezone(self.timezone)
        probe = here + timedelta(microseconds=1)
        for tick in CronSim(self.cron, probe, reverse=True):
            if tick.timestamp() <= now:
                return tick.timestamp()
        return None  # pragma: no cover - cronsim iterates until it finds one

    def _last_forward(self, start: float, now: float) -> float | None:
        """The last tick of the forward walk from ``start`` that is at or before ``now``."""
        last = None
        for tick in CronSim(
            self.cron, datetime.fromtimestamp(start, UTC).astimezone(self.timezone)
        ):
            at = tick.timestamp()
            if at > now:
                break
            last = at
        return last

    def next_tick(self, now: float) -> float | None:
        """The first tick strictly after ``now``, or ``None`` if the expression never fires."""
        here = datetime.fromtimestamp(now, UTC).astimezone(self.timezone)
        for tick in CronSim(self.cron, here):
            if tick.timestamp() > now:
                return tick.timestamp()
        return None  # pragma: no cover

    def describe(self) -> str:
        return f"{self.name} ({self.cron}, {self.timezone})"


class Ticker:
    """Enqueues due ticks for a set of schedules on one adapter; safe to run in every worker.

    Between ticks it costs nothing: it remembers when the next tick is due (``due_at``) and only
    touches the database once the clock has passed it.
    """

    def __init__(
        self,
        adapter: Adapter,
        schedules: Sequence[Recurring],
        *,
        clock: Clock | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.adapter = adapter
        self.schedules = list(schedules)
        self.clock = clock or adapter.clock
        self.logger = log or logger
        self._due: dict[str, float | None] = {s.name: float("-inf") for s in self.schedules}

    @property
    def due_at(self) -> float | None:
        """When :meth:`run` next has work to do (epoch seconds), or ``None`` for never."""
        times = [t for t in self._due.values() if t is not None]
        return min(times) if times else None

    def run(self) -> list[int]:
        """Enqueue every tick that has come due; return the ids this process inserted."""
        now = self.clock.now()
        due = self.due_at
        if due is None or due > now:
            return []
        inserted: list[int] = []
        for schedule in self.schedules:
            when = self._due[schedule.name]
            if when is None or when > now:
                continue
            try:
                job_id = self._fire(schedule, now)
            except StorageError as exc:
                self.logger.warning(
                    "recurring %s: storage unavailable (%s); retrying", schedule.name, exc
                )
                self._due[schedule.name] = now + RETRY_AFTER
                continue
            except NotImplementedError as exc:
                self.logger.error("recurring %s: %s", schedule.name, exc)
                self._due[schedule.name] = None  # never: the adapter cannot do it
                continue
            except Exception:  # a bug must not stop the worker's real work
                self.logger.exception("recurring %s: could not enqueue its tick", schedule.name)
                self._due[schedule.name] = now + RETRY_AFTER
                continue
            if job_id is not None:
                inserted.append(job_id)
            self._due[schedule.name] = schedule.next_tick(now)
        return inserted

    def _fire(self, schedule: Recurring, now: float) -> int | None:
        tick = schedule.last_tick(now)
        if tick is None:
            return None
        job_id = self.adapter.enqueue_tick(schedule.name, tick, replace(schedule.job, run_at=tick))
        if job_id is not None:
            self.logger.info(
                "recurring %s: enqueued job %s for tick %s",
                schedule.name,
                job_id,
                datetime.fromtimestamp(tick, UTC).isoformat(),
            )
        return job_id


_CONFIG_KEYS = {"job", "cron", "args", "kwargs", "timezone", "name", "queue", "priority", "unique"}


class Schedules(Protocol):
    """What the config loader and ``litejobs recurring`` need of a
    :class:`~litejobs.manager.JobManager` (which sits a layer above this module)."""

    schedules: dict[str, Recurring]
    adapters: dict[str, Adapter]

    @property
    def recurring(self) -> Callable[..., Recurring]: ...

    def adapter(self, name: str | None = None) -> Adapter: ...


def add_from_config(
    manager: Schedules,
    entries: Any,
    origin: str,
    on_error: Callable[[ConfigurationError], None] | None = None,
) -> list[Recurring]:
    """Register ``[[tool.litejobs.recurring]]`` entries (for people who only use the CLI)::

        [[tool.litejobs.recurring]]
        job = "myapp.reports:nightly"      # any importable module:function
        cron = "0 3 * * *"
        timezone = "Europe/Berlin"         # optional; also args, kwargs, name, queue,
                                           # priority, unique

    Loading the same entries twice (the CLI may load the app more than once) is harmless.
    A bad entry raises :class:`ConfigurationError` naming it; with ``on_error``, it is handed
    to ``on_error`` instead and skipped, and the other entries are still added.
    """
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigurationError(
            f"{origin}: recurring must be an array of tables ([[tool.litejobs.recurring]])"
        )
    added: list[Recurring] = []
    for number, entry in enumerate(entries, 1):
        try:
            schedule = _add_entry(manager, entry, f"{origin}: recurring entry {number}")
        except ConfigurationError as exc:
            if on_error is None:
                raise
            on_error(exc)
            continue
        if schedule is not None:
            added.append(schedule)
    return added


def _add_entry(manager: Schedules, entry: dict[str, Any], where: str) -> Recurring | None:
    unknown = set(entry) - _CONFIG_KEYS
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"use {', '.join(sorted(_CONFIG_KEYS))}"
        )
    job, cron = entry.get("job"), entry.get("cron")
    if not isinstance(job, str) or ":" not in job:
        raise ConfigurationError(f'{where}: job must be a "module:function" string')
    if not isinstance(cron, str):
        raise ConfigurationError(f'{where}: cron must be a string like "*/15 * * * *"')
    options = {k: v for k, v in entry.items() if k not in ("job", "cron")}
    name = options.get("name") or job
    existing = manager.schedules.get(name)
    if existing is not None and existing.cron == cron:
        return None
    try:
        return manager.recurring(job, cron=cron, **options)
    except LiteJobsError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def schedule_status(manager: Schedules) -> list[dict[str, Any]]:
    """Every schedule with its last recorded tick and next tick (for ``litejobs recurring``)."""
    import json

    rows: list[dict[str, Any]] = []
    last: dict[str | None, dict[str, float]] = {}
    for schedule in sorted(manager.schedules.values(), key=lambda s: s.name):
        adapter = manager.adapter(schedule.adapter) if schedule.adapter else None
        if adapter is None:
            adapter = manager.adapter() if len(manager.adapters) == 1 else None
        if adapter is None:
            continue
        if schedule.adapter not in last:
            try:
                last[schedule.adapter] = adapter.last_ticks()
            except NotImplementedError:  # pragma: no cover - every adapter has a default
                last[schedule.adapter] = {}
        handler = json.loads(schedule.job.handler)
        rows.append(
            {
                "name": schedule.name,
                "cron": schedule.cron,
                "timezone": str(schedule.timezone),
                "job": handler.get("path"),
                "args": handler.get("args", []),
                "kwargs": handler.get("kwargs", {}),
                "queue": schedule.job.queue,
                "last_tick": last[schedule.adapter].get(schedule.name),
                "next_tick": schedule.next_tick(adapter.clock.now()),
            }
        )
    return rows
