"""How long a job waits before its next attempt: one :class:`RetryPolicy`, used everywhere.

The worker (after a job raises), the watchdog (after a job ignored its timeout) and
:mod:`litejobs.testing` (which runs jobs through the worker) all ask the same object, so a test and
production can never disagree on when a retry runs. Which policy: the one stored with the job
(``later(..., retry=[10, 60])``: data only), else the job's decorator's (``@jobs.job(retry=...)``:
a function too), else its worker group's (``WorkerConfig(retry=...)``). The default is the seeds'
rule, ``attempts ** 4`` seconds after attempt
``attempts`` (1, 16, 81, 256 s ...), capped so that a job with a huge ``max_attempts`` can never
be given a run time storage cannot hold.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .errors import LiteJobsError

#: The longest delay any policy may give (one year): ``attempts ** 4`` passes it at attempt 75.
MAX_DELAY = 365 * 86_400.0


@dataclass(frozen=True)
class RetryPolicy:
    """The delay before the next attempt, given how many attempts have run (1 after the first).

    ``intervals``: explicit delays in seconds, one per attempt (``[10, 60, 600]``); attempts
    past the end reuse the last one (like rq's ``Retry(interval=[...])``). ``delay``: a function
    ``attempts -> seconds`` instead. Neither: ``attempts ** 4``. ``jitter``: a fraction (0..1)
    of the delay added or removed at random, so a burst of failures does not retry in lockstep.
    """

    intervals: Sequence[float] | None = None
    delay: Callable[[int], float] | None = None
    jitter: float = 0.0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        from .errors import ConfigurationError

        if self.intervals is not None and self.delay is not None:
            raise ConfigurationError("RetryPolicy takes intervals=[...] or delay=fn, not both")
        if self.intervals is not None and not (
            self.intervals and all(_seconds_ok(s) for s in self.intervals)
        ):
            raise ConfigurationError(
                "RetryPolicy(intervals=...) needs a non-empty list of seconds >= 0, "
                f"got {self.intervals!r}"
            )
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigurationError(
                f"RetryPolicy(jitter=...) is a fraction from 0 to 1, got {self.jitter!r}"
            )

    def seconds(self, attempts: int) -> float:
        """The delay after attempt number ``attempts`` (1 on the first), bounded to 0..1 year."""
        base = self._base(max(1, attempts))
        if self.jitter:
            base *= 1.0 + self.jitter * (2.0 * self.rng.random() - 1.0)
        return min(max(0.0, base), MAX_DELAY)

    def _base(self, attempts: int) -> float:
        if self.intervals is not None:
            return float(self.intervals[min(attempts, len(self.intervals)) - 1])
        if self.delay is not None:
            value = float(self.delay(attempts))
            return value if _seconds_ok(value) else MAX_DELAY
        # Python ints never overflow, but a float of 10**400 would: cap before converting.
        return float(min(attempts**4, int(MAX_DELAY)))

    def to_data(self) -> str:
        """The policy as JSON text, to be stored with a job (``later(..., retry=...)``): only
        what is data -- intervals and jitter; a function cannot be stored."""
        from .errors import ValidationError

        if self.delay is not None:
            raise ValidationError(
                "a retry function cannot be stored with a job; give it on the decorator "
                "(@jobs.job(retry=fn)) or the worker group (WorkerConfig(retry=fn)), or pass "
                "a list of intervals here"
            )
        data: dict[str, object] = {}
        if self.intervals is not None:
            data["intervals"] = [float(s) for s in self.intervals]
        if self.jitter:
            data["jitter"] = self.jitter
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_data(cls, text: str) -> RetryPolicy:
        """The policy :meth:`to_data` stored; an unreadable one is the default (a bad row
        must not stop a worker)."""
        try:
            data = json.loads(text)
            return cls(intervals=data.get("intervals"), jitter=float(data.get("jitter", 0.0)))
        except (ValueError, TypeError, AttributeError, LiteJobsError):
            return DEFAULT_RETRY


def _seconds_ok(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value == value  # not NaN
        and 0 <= value < float("inf")
    )


#: ``attempts ** 4`` seconds, no jitter: what every worker group uses unless told otherwise.
DEFAULT_RETRY = RetryPolicy()


def as_policy(value: RetryPolicy | Sequence[float] | Callable[[int], float] | None) -> RetryPolicy:
    """Accept a policy, a list of intervals or a function where a policy is asked for."""
    if value is None:
        return DEFAULT_RETRY
    if isinstance(value, RetryPolicy):
        return value
    if callable(value):
        return RetryPolicy(delay=value)
    return RetryPolicy(intervals=list(value))
