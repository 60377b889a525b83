"""``litejobs list``: several ``--state``s, ``--name``, ``--newest``, "showing N of M", and a
LAST ERROR column that names the error, through the real executable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from litejobs import SQLiteAdapter, enqueue

from .conftest import Result

RECORD = "tests.cli.app_jobs:record"
BOOM = "tests.cli.app_jobs:boom"


@pytest.fixture
def seeded(cli: Callable[..., Result], db_path: Path) -> dict[str, list[int]]:
    """Ids by what they became: 3 ready ``record``s (queue email, which the workoff below does
    not serve), 2 scheduled ``record``s, 2 failed ``boom``s (the app allows one attempt)."""
    adapter = SQLiteAdapter(db_path)
    try:
        ids: dict[str, list[int]] = {"ready": [], "scheduled": [], "failed": []}
        for i in range(7):
            if i in (1, 4):
                ids["failed"].append(enqueue(BOOM, [f"bad {i}"], queue="default", db=adapter))
            elif i in (2, 5):
                ids["scheduled"].append(enqueue(RECORD, [i], queue="email", wait=3600, db=adapter))
            else:
                ids["ready"].append(enqueue(RECORD, [i], queue="email", db=adapter))
    finally:
        adapter.close()
    worked = cli("workoff", "-n", "default:1", app=True)
    assert worked.code == 1 and "2 failed" in worked.out, (worked.out, worked.err)
    return ids


def listed(cli: Callable[..., Result], *args: str) -> list[int]:
    result = cli("list", "--json", *args)
    assert result.code == 0, result.err
    return [job["id"] for job in result.json()]


def test_states_name_and_newest_filter_and_order(
    cli: Callable[..., Result], seeded: dict[str, list[int]]
) -> None:
    ready, scheduled, failed = seeded["ready"], seeded["scheduled"], seeded["failed"]
    assert listed(cli, "--state", "failed") == failed
    assert listed(cli, "--state", "failed", "--state", "scheduled") == sorted(failed + scheduled)
    assert listed(cli, "--state", "ready", "--state", "ready") == ready  # repeats fold
    assert listed(cli, "--name", "record") == sorted(ready + scheduled)
    assert listed(cli, "--name", "record", "--state", "scheduled") == scheduled
    assert listed(cli, "--name", "boom", "--state", "ready") == []
    assert listed(cli, "--name", "nosuch") == []
    every = sorted(ready + scheduled + failed)
    assert listed(cli, "--newest") == every[::-1]
    assert listed(cli, "--newest", "--limit", "2") == every[:-3:-1]
    assert listed(cli, "--state", "failed", "--newest", "--limit", "1") == [max(failed)]


def test_a_cut_list_says_how_many_it_left_out(
    cli: Callable[..., Result], seeded: dict[str, list[int]]
) -> None:
    cut = cli("list", "--limit", "3")
    assert cut.code == 0, cut.err
    assert [int(line.split()[0]) for line in cut.out.splitlines()[1:]] == [1, 2, 3]
    assert cut.err == (
        "showing 3 of 7 jobs, oldest first (--newest for the newest, --limit 0 for all)\n"
    )
    newest = cli("list", "--limit", "1", "--newest", "--state", "failed")
    assert newest.err == (
        "showing 1 of 2 jobs, newest first (without --newest for the oldest, --limit 0 for all)\n"
    )
    # Exactly as many as the limit, or fewer: nothing was left out, nothing is said.
    assert cli("list", "--limit", "2", "--state", "failed").err == ""
    assert cli("list", "--limit", "0").err == ""
    assert cli("list", "--limit", "3", "--json").err == ""  # JSON is the array alone


def test_last_error_is_the_error_line_not_the_last_line_of_a_commands_output(
    cli: Callable[..., Result],
) -> None:
    """A failed command's ``last_error`` ends with the tail of its output: the column shows its
    first line, ``CommandFailed: ...: exit status 3``, not ``still-going`` (the output's last)."""
    added = cli("enqueue", "--shell", "echo still-going; exit 3")
    assert added.code == 0, added.err
    worked = cli("workoff")  # the default manager: 24 attempts, so the job waits for a retry
    assert worked.code == 1, worked.err
    table = cli("list")
    assert table.code == 0, table.err
    header, row = table.out.splitlines()
    error_cell = row[header.index("LAST ERROR") :].strip()
    assert error_cell == "CommandFailed: /bin/sh -c 'echo still-going; exit 3': exit status 3"


def test_bad_filters_are_one_line_and_exit_2(cli: Callable[..., Result], db_path: Path) -> None:
    SQLiteAdapter(db_path).close()
    for argv, words in (
        (["--state", "failed", "--state", "done"], "unknown state 'done'"),
        (["--name", " "], "--name needs a job's function name"),
        (["--name", "caf\udce9"], "not valid UTF-8"),
    ):
        result = cli("list", *argv)
        assert result.code == 2, (argv, result.err)
        assert result.err.startswith("litejobs: error: ") and words in result.err, result.err
        assert len(result.err.splitlines()) == 1
