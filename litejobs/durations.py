"""Durations written by people: ``90s``, ``15m``, ``1h30m``, ``7d``, ``2w`` or plain seconds.

Shared by the commands that take one (``litejobs prune --older-than``, ``litejobs stats
--since``), so every door reads them alike and refuses them alike.
"""

from __future__ import annotations

import math
import re

from .errors import ValidationError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
#: More than a century is a typo (and past what stored times can be compared with).
LONGEST = 100 * 365 * 86_400


def parse_duration(text: str, what: str) -> float:
    """Seconds in ``text``; a :class:`~litejobs.errors.ValidationError` naming ``what`` and
    showing the accepted forms otherwise."""
    cleaned = text.strip().lower().replace(" ", "")
    seconds = _seconds(cleaned)
    if seconds is None or not math.isfinite(seconds) or seconds > LONGEST:
        raise ValidationError(
            f"{what} {text!r} is not a duration; use e.g. 90s, 15m, 1h30m, 7d, 2w or seconds "
            "(at most 100 years)"
        )
    return seconds


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return value if value >= 0 else None
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * _UNITS[unit] for number, unit in parts)
