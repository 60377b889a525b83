"""Orchestration: run every section for every contender, take medians, print the comparison.

All contenders run in the same invocation, interleaved run by run, so a noisy neighbour on the
machine hurts them alike and the printed ratios stay meaningful.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import sections as s
from .common import median


@dataclass(frozen=True)
class Sizes:
    """How much work each section does; ``quick`` must finish in about 3 minutes."""

    runs: int
    enqueue: int
    batch: int
    drain: int
    huey_enqueue_default: int
    huey_enqueue_tuned: int
    huey_drain_default: int
    huey_drain_tuned: int
    raw_insert: int
    raw_cycles: int
    latency_short: int
    latency_long: int
    long_gap: float
    huey_latency_short: int
    idle_window: float
    claim_small: int
    claim_large: int
    claims: int
    wal_seconds: float
    wal_hold: float
    rss_jobs: int
    history_drain: int
    history_kept: int
    prune_rows: int
    startup_runs: int = 10
    cancel_samples: int = 30  # cancels timed (one running job at a time)
    control_backlog: int = 1_000  # urgent jobs in each of the 10 paused queues


QUICK = Sizes(
    runs=3,
    enqueue=5_000,
    batch=20_000,
    drain=20_000,
    huey_enqueue_default=1_000,
    huey_enqueue_tuned=5_000,
    huey_drain_default=1_000,
    huey_drain_tuned=8_000,
    raw_insert=10_000,
    raw_cycles=10_000,
    latency_short=100,
    latency_long=3,
    long_gap=3.0,
    huey_latency_short=30,
    idle_window=3.0,
    claim_small=1_000,
    claim_large=1_000_000,
    claims=300,
    wal_seconds=8.0,
    wal_hold=2.0,
    rss_jobs=100_000,
    history_drain=20_000,
    history_kept=20_000,
    prune_rows=200_000,
)
FULL = Sizes(
    runs=3,
    enqueue=20_000,
    batch=100_000,
    drain=100_000,
    huey_enqueue_default=3_000,
    huey_enqueue_tuned=20_000,
    huey_drain_default=3_000,
    huey_drain_tuned=30_000,
    raw_insert=40_000,
    raw_cycles=40_000,
    latency_short=400,
    latency_long=6,
    long_gap=6.0,
    huey_latency_short=100,
    idle_window=10.0,
    claim_small=1_000,
    claim_large=1_000_000,
    claims=1_000,
    wal_seconds=60.0,
    wal_hold=5.0,
    rss_jobs=1_000_000,
    history_drain=100_000,
    history_kept=100_000,
    prune_rows=1_000_000,
)

Measure = Callable[[Path], float]

SECTIONS = (
    "enqueue",
    "drain",
    "latency",
    "claim",
    "control",
    "wal",
    "rss",
    "huey",
    "raw",
    "startup",
    "history",
    "prune",
)


class Bench:
    def __init__(self, sizes: Sizes, tmp: Path, only: set[str], log: Callable[[str], None]):
        self.sizes = sizes
        self.tmp = tmp
        self.only = only
        self.log = log
        self.counter = 0

    def db(self, name: str) -> Path:
        """A fresh database file for one measurement (no state carried between runs)."""
        self.counter += 1
        slug = "".join(c if c.isalnum() else "-" for c in name)
        folder = self.tmp / f"{self.counter:03d}-{slug}"
        folder.mkdir()
        return folder / "jobs.db"

    def want(self, section: str) -> bool:
        return not self.only or section in self.only

    def repeat(self, name: str, fn: Callable[[Path], float]) -> float:
        values = []
        for _ in range(self.sizes.runs):
            values.append(fn(self.db(name)))
        value = median(values)
        self.log(f"  {name:<28} {_fmt(value):>10}   runs: {', '.join(_fmt(v) for v in values)}")
        return value

    def interleave(self, items: list[tuple[dict[str, Any], str, str, Measure]]) -> None:
        """Measure several contenders run by run (A B C, A B C, ...) so that a burst of load
        from elsewhere on the machine hits them alike; store each one's median."""
        values: list[list[float]] = [[] for _ in items]
        for _ in range(self.sizes.runs):
            for slot, (_, _, name, fn) in zip(values, items, strict=True):
                slot.append(fn(self.db(name)))
        for slot, (target, key, name, _) in zip(values, items, strict=True):
            target[key] = median(slot)
            runs = ", ".join(_fmt(v) for v in slot)
            self.log(f"  {name:<30} {_fmt(target[key]):>10}   runs: {runs}")

    def run(self) -> dict[str, Any]:
        z = self.sizes
        out: dict[str, Any] = {"litejobs": {}, "huey": {}, "huey_tuned": {}, "sqlite_ceiling": {}}
        lj, hd, ht, raw = (out[k] for k in ("litejobs", "huey", "huey_tuned", "sqlite_ceiling"))
        if self.want("enqueue") or self.want("raw") or self.want("huey"):
            self.log("enqueue (jobs/s)")
            items: list[tuple[dict[str, Any], str, str, Measure]] = []
            if self.want("enqueue") or self.want("raw"):
                items += [
                    (
                        raw,
                        "insert_commits_per_s",
                        "raw single-insert commits",
                        lambda d: s.raw_insert(d, z.raw_insert),
                    ),
                    (
                        raw,
                        "schema_insert_commits_per_s",
                        "raw, litejobs table, 1/txn",
                        lambda d: s.schema_insert(d, z.raw_insert),
                    ),
                    (lj, "enqueue_per_s", "litejobs later()", lambda d: s.lj_enqueue(d, z.enqueue)),
                    (
                        raw,
                        "insert_batch_per_s",
                        "raw 1000-row transactions",
                        lambda d: s.raw_insert_batch(d, z.batch),
                    ),
                    (
                        raw,
                        "schema_insert_batch_per_s",
                        "raw, litejobs table, 1000/txn",
                        lambda d: s.schema_insert(d, z.batch, 1000),
                    ),
                    (
                        lj,
                        "enqueue_batch_per_s",
                        "litejobs later.many(1000)",
                        lambda d: s.lj_enqueue_batch(d, z.batch),
                    ),
                ]
            if self.want("huey"):
                items += [
                    (
                        hd,
                        "enqueue_per_s",
                        "huey default",
                        lambda d: s.huey_enqueue(d, z.huey_enqueue_default, False),
                    ),
                    (
                        ht,
                        "enqueue_per_s",
                        "huey NORMAL",
                        lambda d: s.huey_enqueue(d, z.huey_enqueue_tuned, True),
                    ),
                ]
            self.interleave(items)
        if self.want("drain") or self.want("raw") or self.want("huey"):
            self.log("drain, 2 processes (jobs/s)")
            items = []
            if self.want("drain") or self.want("raw"):
                items += [
                    (
                        raw,
                        "claim_complete_per_s",
                        "raw claim+complete (1/txn)",
                        lambda d: s.raw_cycles(d, z.raw_cycles),
                    ),
                    (
                        raw,
                        "claim_complete_batch100_per_s",
                        "raw claim 100/txn + delete",
                        lambda d: s.raw_cycles(d, z.raw_cycles * 3, 100),
                    ),
                    (lj, "drain_per_s", "litejobs workoff", lambda d: s.lj_drain(d, z.drain)),
                    (
                        lj,
                        "drain_pool_per_s",
                        "litejobs run_workers (+start)",
                        lambda d: s.lj_drain_pool(d, z.drain),
                    ),
                ]
            if self.want("huey"):
                items += [
                    (
                        hd,
                        "drain_per_s",
                        "huey default",
                        lambda d: s.huey_drain(d, z.huey_drain_default, False),
                    ),
                    (
                        ht,
                        "drain_per_s",
                        "huey NORMAL -q",
                        lambda d: s.huey_drain(d, z.huey_drain_tuned, True),
                    ),
                ]
            self.interleave(items)
        if self.want("latency"):
            self.log(f"latency, enqueue→start on idle workers (short gaps; {z.long_gap:g} s gaps)")
            r = s.lj_latency(
                self.db("latency"), z.latency_short, z.latency_long, z.long_gap, z.idle_window
            )
            lj.update(
                latency_p50_ms=r["p50_ms"],
                latency_p99_ms=r["p99_ms"],
                latency_long_p50_ms=r["long_p50_ms"],
                latency_long_max_ms=r["long_max_ms"],
                idle_cpu_pct=r["idle_cpu_pct"],
            )
            self.log(f"  litejobs {_kv(r)}")
        if self.want("huey") and self.want("latency"):
            r = s.huey_latency(
                self.db("huey-latency"), z.huey_latency_short, z.latency_long, z.long_gap
            )
            hd.update(
                latency_p50_ms=r["p50_ms"],
                latency_p99_ms=r["p99_ms"],
                latency_long_p50_ms=r["long_p50_ms"],
                latency_long_max_ms=r["long_max_ms"],
            )
            self.log(f"  huey     {_kv(r)}")
        if self.want("claim"):
            self.log(f"claim cost (µs, median of {z.claims}; 10 % not yet due at priority 1)")
            small = self.repeat(
                f"{z.claim_small:,} pending", lambda d: s.lj_claim_cost(d, z.claim_small, z.claims)
            )
            large = self.repeat(
                f"{z.claim_large:,} pending", lambda d: s.lj_claim_cost(d, z.claim_large, z.claims)
            )
            lj.update(claim_1k_us=small, claim_1m_us=large, claim_1m_over_1k=large / small)
        if self.want("control"):
            self.control(lj)
        if self.want("wal"):
            self.log(
                f"WAL: {z.wal_seconds:g} s of enqueue+drain, a reader holding "
                f"{z.wal_hold:g} s transactions, maintenance() every 1 s"
            )
            r = s.lj_wal(self.db("wal"), z.wal_seconds, z.wal_hold)
            lj.update(
                wal_max_mib=r["wal_max_mib"],
                wal_maintenance_max_ms=r["maintenance_max_ms"],
                wal_enqueue_max_ms=r["enqueue_max_ms"],
                wal_enqueued=r["enqueued"],
            )
            self.log(f"  {_kv(r)}")
        if self.want("rss"):
            self.log(f"worker memory over {z.rss_jobs:,} jobs")
            r = s.lj_rss(self.db("rss"), z.rss_jobs)
            lj.update(
                rss_growth_pct=r["rss_growth_pct"],
                rss_anon_growth_pct=r["anon_growth_pct"],
                rss_jobs=r["jobs"],
                rss_first_mib=r["rss_first_kib"] / 1024,
                rss_last_mib=r["rss_last_kib"] / 1024,
            )
            self.log(f"  {_kv(r)}")
        if self.want("history"):
            self._history(lj)
        if self.want("prune"):
            from . import history

            self.log(f"pruning {z.prune_rows:,} finished jobs (write transactions, ms)")
            r = history.prune(self.db("prune"), z.prune_rows)
            lj.update({f"prune_{k}": v for k, v in r.items()})
            self.log(f"  {_kv(r)}")
        if self.want("startup"):
            from .startup import startup_ms

            self.log(f"start-up, wall ms (median of {z.startup_runs})")
            out["startup"] = startup_ms(self.db("startup").parent, z.startup_runs)
            for label, ms in out["startup"].items():
                self.log(f"  {label:<28} {_fmt(ms):>10}")
        pg_url = os.environ.get("LITEJOBS_BENCH_PG_URL")
        if pg_url and (Path(__file__).parent / "postgres_bench.py").exists():
            self.log("postgres (bench/postgres_bench.py)")
            from . import postgres_bench  # type: ignore[attr-defined]

            out["postgres"] = postgres_bench.run(pg_url, quick=self.sizes.rss_jobs < FULL.rss_jobs)
        return {k: v for k, v in out.items() if v}

    def _history(self, lj: dict[str, Any]) -> None:
        """Retention on against off (and the statistics off), same run, interleaved run by run:
        the ratios are the figures. Drains report wall rate and the workers' CPU per job."""
        from . import history

        z = self.sizes
        self.log("history: retention on vs off")
        drains = {"keep_off": (0.0, True), "keep_on": (DAY, True), "no_stats": (0.0, False)}
        rates: dict[str, list[float]] = {k: [] for k in drains}
        cpus: dict[str, list[float]] = {k: [] for k in drains}
        enqueues: dict[str, list[float]] = {"keep_off": [], "keep_on": []}
        for _ in range(z.runs):
            for key, (keep, stats) in drains.items():
                rate, cpu = history.drain(self.db(f"drain {key}"), z.history_drain, keep, stats)
                rates[key].append(rate)
                cpus[key].append(cpu)
            for key, kept in (("keep_off", 0), ("keep_on", z.history_kept)):
                enqueues[key].append(history.enqueue(self.db(f"enqueue {key}"), z.enqueue, kept))
        for key in drains:
            lj[f"drain_{key}_per_s"] = median(rates[key])
            lj[f"drain_{key}_cpu_us"] = median(cpus[key])
            self.log(
                f"  drain {key:<10} {_fmt(lj[f'drain_{key}_per_s']):>8} jobs/s "
                f"{_fmt(lj[f'drain_{key}_cpu_us']):>6} µs CPU/job   runs: "
                + ", ".join(_fmt(v) for v in rates[key])
            )
        for key, values in enqueues.items():
            lj[f"enqueue_{key}_per_s"] = median(values)
            self.log(
                f"  enqueue {key:<8} {_fmt(median(values)):>8} jobs/s   runs: "
                + ", ".join(_fmt(v) for v in values)
            )
        lj["drain_keep_on_over_off"] = lj["drain_keep_on_per_s"] / lj["drain_keep_off_per_s"]
        lj["drain_keep_cpu_on_over_off"] = lj["drain_keep_off_cpu_us"] / lj["drain_keep_on_cpu_us"]
        lj["enqueue_keep_on_over_off"] = lj["enqueue_keep_on_per_s"] / lj["enqueue_keep_off_per_s"]
        lj["drain_stats_cost_us"] = lj["drain_keep_off_cpu_us"] - lj["drain_no_stats_cpu_us"]
        self.log(
            f"  drain on/off {lj['drain_keep_on_over_off']:.3f}x (CPU per job: "
            f"{lj['drain_keep_cpu_on_over_off']:.3f}x), enqueue on/off "
            f"{lj['enqueue_keep_on_over_off']:.3f}x, statistics "
            f"{lj['drain_stats_cost_us']:.2f} µs CPU per job"
        )

    def control(self, lj: dict[str, Any]) -> None:
        """Job control: the drain with 10 paused queues and a limit against without (same
        run, interleaved), and cancel → the job stops (``bench.control``)."""
        from . import control

        z = self.sizes
        self.log(
            f"job control: drain, 2 processes, {control.PAUSED_QUEUES} paused queues of "
            f"{z.control_backlog:,} urgent jobs and a limit, against none (jobs/s)"
        )
        self.interleave(
            [
                (lj, "control_plain_drain_per_s", "no paused queue, no limit", _drain(z.drain)),
                (
                    lj,
                    "control_drain_per_s",
                    "paused queues + a limit",
                    lambda d: control.lj_drain_controlled(d, z.drain, z.control_backlog),
                ),
            ]
        )
        lj["control_drain_ratio"] = lj["control_drain_per_s"] / lj["control_plain_drain_per_s"]
        self.log(f"  ratio {lj['control_drain_ratio']:.3f}")
        self.log(f"cancel → the running job stops (ms, {z.cancel_samples} cancels)")
        r = control.lj_cancel_latency(self.db("cancel"), z.cancel_samples)
        lj.update(r)
        self.log(f"  litejobs {_kv(r)}")


def _drain(count: int) -> Measure:
    return lambda d: s.lj_drain(d, count)


DAY = 86_400.0


def _fmt(value: float) -> str:
    if value != value:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _kv(values: dict[str, Any]) -> str:
    return "  ".join(f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in values.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="litejobs vs huey-SQLite vs the raw apsw ceiling, same machine, same run.",
    )
    parser.add_argument("--quick", action="store_true", help="smaller workloads (~3 minutes)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated sections to run: {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--runs", type=int, help="repeats per measurement (median is reported)")
    parser.add_argument("--tmp", help="directory for the databases (default: a temporary one)")
    parser.add_argument("--save", help="also write the JSON object to this file")
    args = parser.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; use {', '.join(SECTIONS)}")
    sizes = QUICK if args.quick else FULL
    if args.runs is not None:
        if args.runs < 1:
            parser.error("--runs must be at least 1")
        from dataclasses import replace

        sizes = replace(sizes, runs=args.runs)

    def log(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    from .report import report, summary

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="litejobs-bench-", dir=args.tmp) as tmp:
        result = Bench(sizes, Path(tmp), only, log).run()
    result["meta"] = {
        "mode": "quick" if args.quick else "full",
        "runs": sizes.runs,
        "seconds": round(time.monotonic() - started, 1),
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg()[0],
    }
    if args.save:
        Path(args.save).write_text(json.dumps(summary(result), indent=2) + "\n")
    if args.json:
        print(json.dumps(summary(result), indent=None, sort_keys=False))
    else:
        print()
        print(report(result))
    return 0
