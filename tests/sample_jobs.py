"""Importable job functions for the tests (workers import jobs by ``module:qualname``)."""

from __future__ import annotations

import sys

CALLS: list[object] = []


def record(value: object) -> None:
    CALLS.append(value)


def record_all(*args: object, **kwargs: object) -> None:
    """Takes any arguments: for tests about what is stored, whatever the arity."""
    CALLS.append((args, kwargs))


def ignore_all(*args: object, **kwargs: object) -> None:
    """Another job taking any arguments (batches of two distinct jobs)."""


def boom(message: str = "boom") -> None:
    raise ValueError(message)


async def async_record(value: object) -> None:
    CALLS.append(value)


# -- for the core-engine tests ---------------------------------------------------------------------
CONTEXTS: list[object] = []


def remember_context() -> None:
    """Record what ``current_job()`` says inside a worker."""
    from litejobs import current_job

    CONTEXTS.append(current_job())


def nap(seconds: float) -> None:
    """Sleep for real: only for the hard-timeout test, with a sub-second ``max_runtime``."""
    import time

    time.sleep(seconds)


async def async_nap(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def async_boom(message: str = "async boom") -> None:
    raise RuntimeError(message)


#: Set in a child process by the multi-process tests: every worker waits here on its first job
#: until all of them hold one, so the processes really do claim side by side.
START_BARRIER: object | None = None
_RAN_HERE = 0


def log_run(directory: str) -> None:
    """Append this job's id to ``<directory>/<pid>.ids``: the record of who ran what."""
    import os

    from litejobs import current_job

    global _RAN_HERE
    ctx = current_job()
    assert ctx is not None
    if _RAN_HERE == 0 and START_BARRIER is not None:
        START_BARRIER.wait(timeout=20)  # type: ignore[attr-defined]
    _RAN_HERE += 1
    with open(os.path.join(directory, f"{os.getpid()}.ids"), "a") as out:
        out.write(f"{ctx.id}\n")


class Mailer:
    """Methods as jobs: class- and static methods are importable by name; an instance's
    bound method is not (the instance cannot be rebuilt by a worker)."""

    def send(self, to: str) -> None:
        CALLS.append(("send", to))

    @classmethod
    def deliver(cls, to: str) -> None:
        CALLS.append(("deliver", to))

    @staticmethod
    def ping(to: str) -> None:
        CALLS.append(("ping", to))


def swallow_everything(seconds: float) -> None:
    """A job with a broad ``except Exception`` around slow work (common in real code)."""
    import time

    try:
        time.sleep(seconds)
    except Exception:
        CALLS.append("swallowed")


async def async_remember_context() -> None:
    """``current_job()`` inside an async job (the context must reach the event loop's task)."""
    from litejobs import current_job

    CONTEXTS.append(current_job())


def exit_with(code: object) -> None:
    """A CLI-style ``main()`` reused as a job: it ends with ``sys.exit``."""
    CALLS.append(code)
    sys.exit(code)


def needs_keyword(*, token: str) -> None:
    CALLS.append(token)


class Greeter:
    """An instance with ``__call__``: callable, but not a job."""

    def __call__(self, name: str) -> None:
        CALLS.append(name)


GREETER = Greeter()


# -- job control ---------------------------------------------------------------------------------
def spin(marker: str, seconds: float = 30.0) -> None:
    """Say it started (create ``marker``), then work in small steps for ``seconds``: a long job
    to cancel. Records how it ended in CALLS."""
    import time

    open(marker, "w").close()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            time.sleep(0.005)
    except BaseException as exc:
        CALLS.append(("stopped", type(exc).__name__))
        raise
    CALLS.append("finished")


async def async_spin(marker: str, seconds: float = 30.0) -> None:
    import asyncio

    open(marker, "w").close()
    try:
        await asyncio.sleep(seconds)
    except BaseException as exc:
        CALLS.append(("stopped", type(exc).__name__))
        raise
    CALLS.append("finished")


def snooze(seconds: float) -> None:
    from litejobs import Snooze

    CALLS.append("snoozed")
    raise Snooze(seconds)


def discard(reason: str) -> None:
    from litejobs import Discard

    raise Discard(reason)


def cancel_self(reason: str) -> None:
    from litejobs import Cancel

    raise Cancel(reason)


def overlap(path: str, seconds: float) -> None:
    """Count how many of these run at once, across processes: ``path`` holds the JSON
    ``{"now": running now, "max": most at once, "done": finished}``, updated under ``flock``."""
    import time

    _overlap_update(path, 1)
    try:
        time.sleep(seconds)
    finally:
        _overlap_update(path, -1)


def _overlap_update(path: str, delta: int) -> None:
    import fcntl
    import json

    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        state = json.loads(fh.read() or '{"now": 0, "max": 0, "done": 0}')
        state["now"] += delta
        state["max"] = max(state["max"], state["now"])
        state["done"] += delta < 0
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(state))


# -- for the history and results tests ------------------------------------------------------------
def double(n: int) -> int:
    return n * 2


def describe(**fields: object) -> dict[str, object]:
    """Returns a JSON object: a result that is not a plain number."""
    return {"fields": sorted(fields), "count": len(fields)}


def unstorable() -> set[int]:
    """Returns a value JSON cannot hold."""
    return {1, 2}


def nested(depth: int) -> list[object]:
    """Returns lists nested ``depth`` deep: deeper than the recursion limit, JSON cannot encode
    it (``RecursionError``, not ``TypeError``)."""
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be printed")


def raise_unstorable_text() -> None:
    """An error message neither database stores as it is: a lone surrogate, as in a file name
    decoded with ``surrogateescape``, and a NUL (PostgreSQL text cannot hold it)."""
    path = "/data/caf\udce9\x00.csv"
    raise ValueError(f"cannot read {path}")


def raise_unprintable() -> None:
    """Raises an exception whose ``str()`` raises: a broken exception type in an app."""
    raise Unprintable()
