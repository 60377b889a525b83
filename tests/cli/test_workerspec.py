"""``-n SPEC`` parsing: Redwood's syntax, everything else inherited from the app."""

from __future__ import annotations

import pytest

from litejobs import WorkerConfig
from litejobs.errors import ConfigurationError
from litejobs.workerspec import parse_worker_spec

BASE = [WorkerConfig(queue="email", count=3, max_attempts=5, sleep_delay=1)]


def groups(spec: str) -> list[tuple[str, int]]:
    return [(g.queues_label, g.count) for g in parse_worker_spec(spec, BASE)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("4", [("*", 4)]),
        ("email:2", [("email", 2)]),
        ("default:2,email:4", [("default", 2), ("email", 4)]),
        (":2,email:4", [("*", 2), ("email", 4)]),
        (" default:1 , email:1 ", [("default", 1), ("email", 1)]),
    ],
)
def test_valid_specs(spec: str, expected: list[tuple[str, int]]) -> None:
    assert groups(spec) == expected


def test_other_settings_come_from_the_apps_first_group() -> None:
    (group,) = parse_worker_spec("default:2", BASE)
    assert (group.max_attempts, group.sleep_delay) == (5, 1)
    assert parse_worker_spec("2", [])[0].max_attempts == WorkerConfig().max_attempts


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "needs a worker spec"),
        ("email:", "bad worker count ''"),
        ("email:two", "bad worker count 'two'"),
        ("email:0", "at least 1"),
        ("email:-1", "bad worker count '-1'"),
        ("default:2,,email:1", "empty entry"),
        ("email:1,email:2", "appears twice"),
        ("a:b:2", "bad queue name"),
    ],
)
def test_invalid_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_worker_spec(spec, BASE)
