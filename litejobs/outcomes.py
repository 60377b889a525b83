"""Outcomes a job chooses for itself: raise one of these from the job's function.

``Discard(reason)``: fail now, no retry (its last attempt or not); ``Snooze(seconds)``: run
again after ``seconds``, this attempt not counted; ``Cancel(reason)``: end in the ``cancelled``
state, as a person's ``litejobs cancel`` would. They are ordinary exceptions, so a job called
directly (``job.perform(...)``) raises them to its caller as any error.

The worker reads them (:mod:`litejobs.executor`); they carry no storage logic of their own.
"""

from __future__ import annotations

import math
from datetime import timedelta

__all__ = ["Cancel", "Discard", "JobDirective", "Snooze"]

#: The longest snooze accepted (one year, the retry policy's cap too).
MAX_SNOOZE = 365 * 86_400.0


class JobDirective(Exception):
    """Base class of the outcomes a job raises on purpose."""


class Discard(JobDirective):
    """Fail this job now, whatever attempts it has left: recorded as ``failed`` with
    ``Discard: <reason>`` as its error (``after_failure`` hooks run), never retried unless a
    person retries it."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class Cancel(JobDirective):
    """End this job as ``cancelled`` (kept like failed jobs, retriable by a person), with
    ``Cancel: <reason>`` as its last error; ``after_cancel`` hooks run."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class Snooze(JobDirective):
    """Run this job again ``seconds`` from now (a number or a ``timedelta``) without counting
    this attempt: the attempt the worker charged when it started the job is given back.

    A job that always snoozes runs forever; bound it yourself (``current_job().attempts`` does
    not grow while it snoozes).
    """

    def __init__(self, seconds: float | timedelta = 0.0) -> None:
        value = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0 <= value <= MAX_SNOOZE
        ):
            raise ValueError(
                f"Snooze(seconds) needs 0 to {MAX_SNOOZE:g} seconds (or a timedelta), "
                f"got {seconds!r}"
            )
        super().__init__(f"{value:g} s")
        self.seconds = float(value)
