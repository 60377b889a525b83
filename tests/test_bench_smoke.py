"""A tiny run of every ``scripts/bench`` code path: the benchmark must keep working as the code
changes. No timing is asserted (the machine is shared); only that each section measures
something and that ``--json`` prints the keys the issue promises."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bench import run as bench_run
from bench.report import report, summary
from bench.startup import COMMANDS

ROOT = Path(__file__).resolve().parent.parent

TINY = replace(
    bench_run.QUICK,
    runs=1,
    enqueue=200,
    batch=2_000,
    drain=1_000,
    huey_enqueue_default=100,
    huey_enqueue_tuned=100,
    huey_drain_default=100,
    huey_drain_tuned=100,
    raw_insert=200,
    raw_cycles=300,
    latency_short=5,
    latency_long=1,
    long_gap=0.2,
    huey_latency_short=2,
    idle_window=0.2,
    claim_small=100,
    claim_large=2_000,
    claims=20,
    wal_seconds=1.0,
    wal_hold=0.3,
    rss_jobs=1_500,
    history_drain=300,
    history_kept=300,
    prune_rows=2_000,
    startup_runs=1,
    cancel_samples=2,
    control_backlog=20,
)

REQUIRED = {
    "litejobs": {
        "enqueue_per_s",
        "enqueue_batch_per_s",
        "drain_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
        "claim_1m_over_1k",
        "wal_max_mib",
        "rss_growth_pct",
        "cancel_p50_ms",
        "control_drain_ratio",
        "drain_keep_on_over_off",
        "enqueue_keep_on_over_off",
        "prune_expired_txn_max_ms",
        "prune_by_age_txn_max_ms",
    },
    "huey": {"enqueue_per_s", "drain_per_s", "latency_p50_ms"},
    "sqlite_ceiling": {"insert_commits_per_s", "claim_complete_per_s"},
}


@pytest.mark.timeout(120)
def test_every_section_measures_something(tmp_path: Path) -> None:
    lines: list[str] = []
    result = bench_run.Bench(TINY, tmp_path, set(), lines.append).run()
    out = summary(result)
    for group, keys in REQUIRED.items():
        missing = keys - set(out[group])
        assert not missing, f"{group} lacks {missing}"
        for key in keys:
            value = out[group][key]
            assert isinstance(value, float) and math.isfinite(value), (group, key, value)
    assert out["litejobs"]["drain_per_s"] > 0
    assert out["litejobs"]["rss_jobs"] == TINY.rss_jobs
    assert {row["target"] for row in out["targets"]} >= {"latency p50 (ms)", "WAL max (MiB)"}
    json.dumps(out)  # serialisable as printed by --json
    table = report(result)
    assert table.startswith("| ") and "litejobs" in table
    assert set(out["startup"]) == {"python -c 'import apsw'", *(c for c, _ in COMMANDS)}
    assert all(ms > 0 for ms in out["startup"].values())
    assert "| `litejobs list` |" in table


def test_cli_rejects_bad_input() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "nonsense"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "unknown section" in proc.stderr
    assert "Traceback" not in proc.stderr
