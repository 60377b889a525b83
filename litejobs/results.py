"""Waiting for a job's result: ``jobs.result(id, timeout=...)``.

The waiter sleeps on storage's change signal (SQLite: ``PRAGMA data_version`` and an inotify
watch of the ``-wal`` file; PostgreSQL: ``LISTEN`` on the channel where workers announce
finished jobs that keep a result), re-reading the one row when it fires. It re-checks on its
own at most every :data:`RECHECK` seconds, a safety net for a signal that cannot come (a job
failed by a rescue after its worker died, or ``listen=False``), not a polling loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .adapters.base import Adapter, JobRecord
from .errors import (
    JobDeletedError,
    JobFailedError,
    ResultTimeoutError,
    ResultUnavailableError,
)

#: The longest a waiter sleeps without looking at the row again (s).
RECHECK = 1.0


def wait_for_result(
    adapter: Adapter,
    job_id: int,
    *,
    timeout: float | None,
    keeps: Callable[[JobRecord], bool],
) -> Any:
    """The result of ``job_id`` once it has one (see :meth:`JobManager.result`)."""
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    adapter.wait_for_outcome(0)  # arm the signal first: a change after the read wakes us
    looked = False
    while True:
        record = adapter.get(job_id)
        if record is None:
            raise _gone(adapter, job_id, looked)
        looked = True
        if record.finished_at is not None and record.state != "succeeded":
            raise JobFailedError(job_id, record.state, record.last_error, record.attempts)
        if not keeps(record):
            raise ResultUnavailableError(
                f"job {job_id} does not keep its result; declare it with "
                "@jobs.job(keep_result=True), or enqueue it with keep_result=True"
            )
        if record.state == "succeeded":
            return _value(record)
        remaining = RECHECK if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            raise ResultTimeoutError(
                f"job {job_id} has not finished after {timeout:g} s (it is {record.state}); "
                f"wait longer, or check that a worker serves queue {record.queue!r} "
                "(`litejobs status`)"
            )
        adapter.wait_for_outcome(min(remaining, RECHECK))


def _value(record: JobRecord) -> Any:
    if record.result_json is None:
        raise ResultUnavailableError(
            f"job {record.id} succeeded without a stored result: its return value was not "
            "JSON (the worker's log says which type), so it was not kept"
        )
    return record.result


def _gone(adapter: Adapter, job_id: int, looked: bool) -> Exception:
    """A missing row: a typo, or a job that is gone (deleted while we waited, or before)."""
    error = adapter.missing(job_id)
    if looked or isinstance(error, JobDeletedError):
        return ResultUnavailableError(
            f"job {job_id} is gone (it finished and was deleted, or a person deleted it), "
            "so its result is too; keep_result=True keeps a success and its result"
        )
    return error
