"""The history commands through the real executable: ``show`` of a job that is gone, ``prune``,
``stats`` and ``metrics`` (what an operator types, exit codes and one-line errors included)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .conftest import Result


def test_show_tells_a_job_that_is_gone_from_a_typo(cli: Callable[..., Result]) -> None:
    assert cli("enqueue", "tests.cli.app_jobs:record", "--args", '["x"]').out == "1\n"
    assert cli("workoff", app=True).code == 0  # a success: deleted at once (the default)
    gone = cli("show", "1")
    assert (gone.code, gone.out) == (2, "")
    assert gone.err.startswith("litejobs: error: job 1 finished and was deleted"), gone.err
    typo = cli("show", "2")
    assert typo.err == "litejobs: error: no job with id 2; `litejobs list` shows the ids\n"


def test_a_kept_success_is_listed_and_shown_with_its_result(cli: Callable[..., Result]) -> None:
    assert cli("enqueue", "tests.cli.app_jobs:square", "--args", "[7]").out == "1\n"
    assert cli("enqueue", "tests.cli.app_jobs:record", "--args", '["x"]').out == "2\n"
    assert cli("workoff", app=True).code == 0
    kept = cli("list", "--state", "succeeded", "--json").json()
    assert [(j["id"], j["name"], j["result"]) for j in kept] == [(1, "square", 49)]
    assert kept[0]["finished_at"] is not None and kept[0]["keep_until"] is not None
    shown = cli("show", "1")
    assert shown.code == 0 and "succeeded" in shown.out, shown.err
    assert any(line.split() == ["result", "49"] for line in shown.out.splitlines()), shown.out
    assert cli("show", "2").err.startswith("litejobs: error: job 2 finished and was deleted")


def test_prune_deletes_finished_jobs_by_age_and_state(cli: Callable[..., Result]) -> None:
    for args in ('["a"]', '["b"]'):
        cli("enqueue", "tests.cli.app_jobs:boom", "--args", args)
    assert cli("workoff", app=True).code == 1  # both failed for good (max_attempts=1): kept
    cli("enqueue", "tests.cli.app_jobs:record", "--args", '["later"]', "--wait", "3600")
    assert cli("prune").out == "pruned 0 finished jobs\n"  # kept for good: no retention ran out
    assert cli("prune", "--older-than", "1h", "--state", "failed").out == "pruned 0 finished jobs\n"
    assert cli("prune", "--older-than", "0", "--state", "failed").out == "pruned 2 finished jobs\n"
    assert [j["state"] for j in cli("list", "--json").json()] == ["scheduled"]
    bad = cli("prune", "--older-than", "soon")
    assert bad.code == 2 and "is not a duration; use e.g. 90s, 15m" in bad.err
    lone = cli("prune", "--state", "failed")
    assert lone.code == 2 and "--state goes with --older-than" in lone.err
    active = cli("prune", "--older-than", "0", "--state", "ready")
    assert active.code == 2 and "--state must be a finished state" in active.err


def test_stats_and_metrics_count_what_the_workers_did(
    cli: Callable[..., Result], db_path: Path
) -> None:
    for args in ('["a"]', '["b"]', '["c"]'):
        cli("enqueue", "tests.cli.app_jobs:record", "--args", args)
    cli("enqueue", "tests.cli.app_jobs:boom", "--queue", "email")
    cli("workoff", app=True)
    data = cli("stats", "--json").json()
    assert {q: (s["succeeded"], s["failed"]) for q, s in data["queues"].items()} == {
        "default": (3, 0),
        "email": (0, 1),
    }
    assert data["total"]["succeeded"] == 3 and data["total"]["errored"] == 0
    assert data["queues"]["default"]["run_seconds"]["p50"] > 0
    assert sum(m["succeeded"] + m["failed"] for m in data["minutes"]) == 4
    table = cli("stats", "--since", "15m")
    assert table.code == 0 and "SUCCEEDED" in table.out and "total" in table.out
    text = cli("metrics")
    assert text.code == 0, text.err
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.out)
        for s in family.samples
    }
    assert (
        samples[("litejobs_job_outcomes_total", (("outcome", "succeeded"), ("queue", "default")))]
        == 3
    )
    assert (
        samples[("litejobs_job_outcomes_total", (("outcome", "failed"), ("queue", "email")))] == 1
    )
    assert samples[("litejobs_jobs", (("queue", "email"), ("state", "failed")))] == 1
    assert samples[("litejobs_job_run_seconds_count", (("queue", "default"),))] == 3
    assert (
        samples[("litejobs_job_wait_seconds_bucket", (("le", "+Inf"), ("queue", "default")))] == 3
    )
    assert json.loads(cli("show", "4", "--json").out)["finished_at"] is not None


def test_history_commands_never_create_a_database(
    cli: Callable[..., Result], db_path: Path
) -> None:
    for argv in (["stats"], ["metrics"], ["prune"]):
        result = cli(*argv)
        assert result.code == 3 and "no database at" in result.err, (argv, result.err)
    assert not db_path.exists()
