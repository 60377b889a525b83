"""Importable job functions for the tests (workers import jobs by ``module:qualname``)."""

from __future__ import annotations

CALLS: list[object] = []


def record(value: object) -> None:
    CALLS.append(value)


def boom(message: str = "boom") -> None:
    raise ValueError(message)


async def async_record(value: object) -> None:
    CALLS.append(value)
