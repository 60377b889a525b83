"""Turning measurements into the comparison table, the ratios and the target verdicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Result = dict[str, Any]

# (label, check on the result, target text); a check returns None when not measured.
Target = tuple[str, Callable[[Result], float | None], Callable[[float], bool], str]


def _get(result: Result, *path: str) -> float | None:
    node: Any = result
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node)


def _ratio(result: Result, a: tuple[str, ...], b: tuple[str, ...]) -> float | None:
    x, y = _get(result, *a), _get(result, *b)
    return None if x is None or y is None or y == 0 else x / y


def _at_least(limit: float, unit: str = "") -> tuple[Callable[[float], bool], str]:
    """A target's check and its text from one bound, so the two cannot drift apart."""
    return (lambda value: value >= limit), f"≥ {limit:,g}{unit}"


def _at_most(limit: float, unit: str = "") -> tuple[Callable[[float], bool], str]:
    """A target's check and its text from one bound, so the two cannot drift apart."""
    return (lambda value: value <= limit), f"≤ {limit:,g}{unit}"


TARGETS: list[Target] = [
    (
        "drain / huey default",
        lambda r: _ratio(r, ("litejobs", "drain_per_s"), ("huey", "drain_per_s")),
        *_at_least(5, "x"),
    ),
    (
        "drain / huey NORMAL -q",
        lambda r: _ratio(r, ("litejobs", "drain_per_s"), ("huey_tuned", "drain_per_s")),
        *_at_least(1.2, "x"),
    ),
    (
        "drain / raw claim+complete",
        lambda r: _ratio(
            r, ("litejobs", "drain_per_s"), ("sqlite_ceiling", "claim_complete_per_s")
        ),
        *_at_least(0.5, "x"),
    ),
    (
        "enqueue / raw insert commits",
        lambda r: _ratio(
            r, ("litejobs", "enqueue_per_s"), ("sqlite_ceiling", "insert_commits_per_s")
        ),
        *_at_least(0.6, "x"),
    ),
    (
        "enqueue / raw insert into litejobs' table",
        lambda r: _ratio(
            r, ("litejobs", "enqueue_per_s"), ("sqlite_ceiling", "schema_insert_commits_per_s")
        ),
        lambda v: v >= 0.6,
        "(info) >= 0.6x",
    ),
    (
        "batch enqueue (jobs/s)",
        lambda r: _get(r, "litejobs", "enqueue_batch_per_s"),
        *_at_least(100_000),
    ),
    (
        "latency p50 (ms)",
        lambda r: _get(r, "litejobs", "latency_p50_ms"),
        *_at_most(5),
    ),
    (
        "latency p99 (ms)",
        lambda r: _get(r, "litejobs", "latency_p99_ms"),
        *_at_most(50),
    ),
    (
        "claim cost 1M / 1k",
        lambda r: _get(r, "litejobs", "claim_1m_over_1k"),
        *_at_most(1.5, "x"),
    ),
    ("WAL max (MiB)", lambda r: _get(r, "litejobs", "wal_max_mib"), *_at_most(64)),
    (
        "worker RSS growth (%)",
        lambda r: _get(r, "litejobs", "rss_growth_pct"),
        *_at_most(10),
    ),
    (
        "drain, retention on / off",
        lambda r: _get(r, "litejobs", "drain_keep_on_over_off"),
        *_at_least(0.85, "x"),
    ),
    (
        "enqueue, retention on / off",
        lambda r: _get(r, "litejobs", "enqueue_keep_on_over_off"),
        *_at_least(0.85, "x"),
    ),
    (
        "longest prune transaction (ms)",
        lambda r: _get(r, "litejobs", "prune_expired_txn_max_ms"),
        *_at_most(50),
    ),
    (
        "longest prune --older-than transaction (ms)",
        lambda r: _get(r, "litejobs", "prune_by_age_txn_max_ms"),
        *_at_most(50),
    ),
    (
        "idle CPU per worker (% of a core)",
        lambda r: _get(r, "litejobs", "idle_cpu_pct"),
        *_at_most(1),
    ),
    (
        "cancel → job stops, p50 (ms)",
        lambda r: _get(r, "litejobs", "cancel_p50_ms"),
        *_at_most(50),
    ),
    (
        "drain with 10 paused queues + a limit / without",
        lambda r: _get(r, "litejobs", "control_drain_ratio"),
        *_at_least(0.9, "x"),
    ),
    (
        "PostgreSQL: cancel → job stops, p50 (ms)",
        lambda r: _get(r, "postgres", "cancel_p50_ms"),
        *_at_most(100),
    ),
    (
        "PostgreSQL: drain with paused queues + a limit / without",
        lambda r: _get(r, "postgres", "control_drain_ratio"),
        *_at_least(0.9, "x"),
    ),
]

ROWS = [
    ("enqueue, one per call (jobs/s)", "enqueue_per_s", "insert_commits_per_s"),
    ("enqueue, batches of 1000 (jobs/s)", "enqueue_batch_per_s", "insert_batch_per_s"),
    ("raw INSERT into litejobs' table, 1/txn", None, "schema_insert_commits_per_s"),
    ("raw INSERT into litejobs' table, 1000/txn", None, "schema_insert_batch_per_s"),
    ("drain, 2 processes (jobs/s)", "drain_per_s", "claim_complete_per_s"),
    ("drain via run_workers, incl. start (jobs/s)", "drain_pool_per_s", None),
    ("drain, raw claiming 100 per txn", None, "claim_complete_batch100_per_s"),
    ("latency p50, short idle (ms)", "latency_p50_ms", None),
    ("latency p99, short idle (ms)", "latency_p99_ms", None),
    ("latency p50, long idle (ms)", "latency_long_p50_ms", None),
    ("latency max, long idle (ms)", "latency_long_max_ms", None),
    ("idle CPU per worker (% core)", "idle_cpu_pct", None),
    ("claim at 1k pending (µs)", "claim_1k_us", None),
    ("claim at 1M pending (µs)", "claim_1m_us", None),
    ("claim 1M / 1k", "claim_1m_over_1k", None),
    ("drain, no paused queue or limit (jobs/s)", "control_plain_drain_per_s", None),
    ("drain, 10 paused queues + a limit (jobs/s)", "control_drain_per_s", None),
    ("  ratio, with / without", "control_drain_ratio", None),
    ("cancel → job stops, p50 (ms)", "cancel_p50_ms", None),
    ("cancel → job stops, p99 (ms)", "cancel_p99_ms", None),
    ("WAL max under load (MiB)", "wal_max_mib", None),
    ("WAL run: longest single enqueue (ms)", "wal_enqueue_max_ms", None),
    ("WAL run: jobs enqueued", "wal_enqueued", None),
    ("worker RSS growth (%)", "rss_growth_pct", None),
    ("drain, retention off (jobs/s)", "drain_keep_off_per_s", None),
    ("drain, keep_succeeded=1d (jobs/s)", "drain_keep_on_per_s", None),
    ("drain, outcome statistics off (jobs/s)", "drain_no_stats_per_s", None),
    ("drain, retention off: workers' CPU per job (µs)", "drain_keep_off_cpu_us", None),
    ("drain, keep_succeeded=1d: workers' CPU per job (µs)", "drain_keep_on_cpu_us", None),
    ("drain, statistics off: workers' CPU per job (µs)", "drain_no_stats_cpu_us", None),
    ("outcome statistics, CPU per job (µs)", "drain_stats_cost_us", None),
    ("enqueue, empty table (jobs/s)", "enqueue_keep_off_per_s", None),
    ("enqueue, beside kept jobs (jobs/s)", "enqueue_keep_on_per_s", None),
    ("prune: rows", "prune_rows", None),
    ("prune: longest transaction (ms)", "prune_expired_txn_max_ms", None),
    ("prune: p99 transaction (ms)", "prune_expired_txn_p99_ms", None),
    ("prune: rows/s", "prune_expired_rows_per_s", None),
    ("prune --older-than: longest transaction (ms)", "prune_by_age_txn_max_ms", None),
]


def targets(result: Result) -> list[dict[str, Any]]:
    rows = []
    for label, measure, ok, text in TARGETS:
        value = measure(result)
        rows.append(
            {
                "target": label,
                "value": value,
                "goal": text,
                "met": None if value is None else bool(ok(value)),
            }
        )
    return rows


def summary(result: Result) -> Result:
    """The ``--json`` object: the keys the issue lists first, then everything else measured."""
    out = dict(result)
    out["targets"] = targets(result)
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    value = float(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def report(result: Result) -> str:
    """A Markdown table (README-ready), then the ratios against the targets."""
    lj = result.get("litejobs", {})
    hd = result.get("huey", {})
    ht = result.get("huey_tuned", {})
    raw = result.get("sqlite_ceiling", {})
    pg = result.get("postgres")
    head = ["", "litejobs", "huey default", "huey NORMAL", "raw apsw"]
    if pg:
        head.append("litejobs PostgreSQL")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, key, raw_key in ROWS:
        cells = [
            label,
            _fmt(lj.get(key)) if key else "-",
            _fmt(hd.get(key)) if key else "-",
            _fmt(ht.get(key)) if key else "-",
            _fmt(raw.get(raw_key)) if raw_key else "-",
        ]
        if pg:
            cells.append(_fmt(pg.get(key)) if key else "-")
        if any(c != "-" for c in cells[1:]):
            lines.append("| " + " | ".join(cells) + " |")
    startup = result.get("startup")
    if startup:
        floor = next(iter(startup.values()))  # python -c 'import apsw'
        lines += ["", "| start-up (wall, median) | ms | over the floor |", "|---|---|---|"]
        lines += [
            f"| `{label}` | {_fmt(ms)} | {'-' if ms is floor else '+' + _fmt(ms - floor)} |"
            for label, ms in startup.items()
        ]
    lines += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
    for row in targets(result):
        met = {None: "not run", True: "yes", False: "**no**"}[row["met"]]
        lines.append(f"| {row['target']} | {_fmt(row['value'])} | {row['goal']} | {met} |")
    meta = result.get("meta", {})
    lines += [
        "",
        f"mode {meta.get('mode')}, {meta.get('runs')} runs per figure (median), "
        f"{meta.get('seconds')} s, {meta.get('cpus')} CPUs, load average {meta.get('load_avg')}",
    ]
    return "\n".join(lines)
