"""Does a call fit the job it is for: checked when a job is scheduled, not when it runs.

A job whose arguments do not fit its function can only ever fail with a ``TypeError`` in the
worker, and be retried for hours; an object that is not a function (a ``Scheduler``, an instance
with ``__call__``) would be called as it is imported, not as the caller meant. Both are refused
here, with one line that shows the signature and the call.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import ArgumentsError, ValidationError
from .job import Job


def job_function(target: object, shown: str) -> Callable[..., Any]:
    """``target`` if it can be a job's function; otherwise a :class:`ValidationError`."""
    if isinstance(target, Job):
        return target.func
    if inspect.isfunction(target) or inspect.ismethod(target) or inspect.isbuiltin(target):
        return target
    kind = "class" if isinstance(target, type) else f"{type(target).__name__} object"
    raise ValidationError(
        f"{shown} is a {kind}, not a function: a job is a module-level function (or a "
        "@jobs.job); point at the function itself"
    )


#: Signatures by function (``None``: not introspectable, so calls are not checked).
_signatures: dict[Callable[..., Any], inspect.Signature | None] = {}


def check_arguments(
    func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any] | None, shown: str
) -> None:
    """Raise :class:`ArgumentsError` unless ``func(*args, **kwargs)`` fits its signature.

    Binding is what a worker's call would do first, so a job that could only ever fail with a
    ``TypeError`` (and be retried for hours) is refused before it is stored.
    """
    signature = _signature(func)
    if signature is None:
        return
    try:
        signature.bind(*args, **(kwargs or {}))
    except TypeError as exc:
        given = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in (kwargs or {}).items())])
        if len(given) > 80:
            given = given[:79] + "…"
        raise ArgumentsError(
            f"{shown}{_plain(signature)} cannot be called with ({given}): {exc}; "
            "pass arguments that fit its signature"
        ) from None


def _plain(signature: inspect.Signature) -> inspect.Signature:
    """The signature without annotations: ``send(user_id, *, urgent=False)``."""
    return signature.replace(
        parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )


def positional_range(func: Callable[..., Any]) -> tuple[float, float]:
    """How many positional arguments ``func`` takes when given no keywords (``(0, inf)`` if
    unknown): a per-item check for ``later.many`` that costs a ``len()``, exact because with
    positional arguments only, binding fails if and only if the count is outside this range
    (a required keyword-only parameter makes the range empty)."""
    signature = _signature(func)
    if signature is None:
        return 0, math.inf
    low, high = 0, 0.0
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            high = math.inf
        elif param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            high += 1
            low += param.default is param.empty
        elif param.kind is param.KEYWORD_ONLY and param.default is param.empty:
            return 1, 0  # no positional-only call can bind
    return low, high


def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return _signatures[func]
    except KeyError:
        pass
    except TypeError:  # unhashable callable: not cached
        return _signature_of(func)
    found = _signatures[func] = _signature_of(func)
    return found


def _signature_of(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # some builtins have no introspectable signature
        return None
