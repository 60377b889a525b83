"""How long a finished job is kept, and whether its return value is: one rule for every outcome.

By default nothing changes from before: a success deletes its row (``WorkerConfig(
delete_successful_jobs=True)``) and a failure keeps it until a person acts (``delete_failed_jobs=
False``). A retention period -- on the manager (``JobManager(keep_succeeded=timedelta(days=1))``)
or on one job (``@jobs.job(keep_failed=timedelta(days=30))``, which wins) -- keeps the row that
long instead, then workers prune it. ``0`` deletes at once. A job that keeps its result is kept
as long as its success is kept, and at least :data:`RESULT_KEEP` when nothing says how long.

Pure: the worker asks it at each outcome and stores the answer (``keep_until``) with the row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .errors import ConfigurationError

#: How long a result is kept when no retention period says (a day; rq keeps 500 s, huey until
#: read: a day lets a web request, a retry or a person find it without filling the file).
RESULT_KEEP = 86_400.0
#: How long per-minute outcome statistics are kept before they are folded into the totals.
STATS_KEEP = 86_400.0

Keep = timedelta | float | int | None


def keep_seconds(value: Any, what: str) -> float | None:
    """A retention period in seconds (``None``: not set); a clear error for anything else."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{what} must be a timedelta or seconds, got {value!r}")
    if value < 0:
        raise ConfigurationError(f"{what} must be 0 (delete at once) or more, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Retention:
    """What is kept of a job once it finishes (seconds; ``None``: not said here)."""

    keep_succeeded: float | None = None
    keep_failed: float | None = None
    keep_result: bool = False

    def over(self, default: Retention) -> Retention:
        """This (a job's own) where it says something, else ``default`` (its manager's)."""
        return Retention(
            default.keep_succeeded if self.keep_succeeded is None else self.keep_succeeded,
            default.keep_failed if self.keep_failed is None else self.keep_failed,
            self.keep_result or default.keep_result,
        )

    def succeeded(
        self, now: float, *, delete_default: bool, keep_result: bool
    ) -> tuple[bool, float | None]:
        """``(delete, keep_until)`` for a success; ``keep_until=None`` on a kept row: until a
        person prunes it (``delete_successful_jobs=False`` and no period)."""
        keep = self.keep_succeeded
        if keep is None and not delete_default:
            return False, None
        if keep is None or keep == 0:
            if not keep_result:
                return True, None
            keep = RESULT_KEEP
        return False, now + keep

    def failed(self, now: float, *, delete_default: bool) -> tuple[bool, float | None]:
        """``(delete, keep_until)`` for a failure for good."""
        keep = self.keep_failed
        if keep is None:
            return delete_default, None
        if keep == 0:
            return True, None
        return False, now + keep
