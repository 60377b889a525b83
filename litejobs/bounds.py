"""Bounds every door into storage checks: whole numbers storage can hold, text it can encode.

The lowest layer above :mod:`litejobs.errors`, so the adapters (for callers of their API) and
the scheduling rules (for ``later``, ``litejobs.enqueue`` and the CLI) raise the same
:class:`~litejobs.errors.ValidationError` with the same words, never a driver's
``OverflowError`` or ``UnicodeEncodeError``.
"""

from __future__ import annotations

from typing import Any

from .errors import ValidationError

#: The largest id or limit storage can hold (SQLite ``INTEGER``, PostgreSQL ``BIGINT``).
MAX_INT64 = 2**63 - 1
#: Far more attempts than any retry policy means (the default is 24): a larger number is a typo.
MAX_ATTEMPTS_LIMIT = 1_000_000


def check_text(value: str, what: str) -> str:
    """``value`` if both databases can store it: valid Unicode text (an undecodable byte from
    the command line, which Python hands over as a lone surrogate, would fail deep in the
    driver) without NUL (PostgreSQL text cannot hold it: a name SQLite took would fail there)."""
    if "\x00" in value:
        raise ValidationError(f"{what} {value!r} contains a NUL character; remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{what} {value!r} is not valid UTF-8 text (an undecodable byte at character "
            f"{exc.start}); use UTF-8"
        ) from None
    return value


def check_whole(value: Any, what: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``, checked before it reaches storage (where a
    bigger one is an ``OverflowError``, not an answer)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            f"{what} must be a whole number >= {low} and <= {high:,}, got {value!r}"
        )
    return value


def check_job_id(job_id: Any) -> int:
    """A job id storage can hold: ``1 .. 2**63-1``."""
    return check_whole(job_id, "job id", 1, MAX_INT64)


def check_limit(limit: Any) -> int:
    """A row limit storage can hold: ``0`` (no limit) ``.. 2**63-1``."""
    return check_whole(limit, "limit", 0, MAX_INT64)


def storable_text(text: str) -> str:
    """``text`` as both databases can store it: a lone surrogate (a file name decoded with
    ``surrogateescape``, say) is not UTF-8 and PostgreSQL text cannot hold NUL, so both are
    written as their escapes. Stored as they were, recording the outcome failed, every time."""
    if not text.isascii():  # the common case, ASCII, needs no round trip
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")
