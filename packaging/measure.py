"""Figures for docs/binary.md: startup time and drain throughput, frozen vs installed.

    .venv/bin/python packaging/measure.py [--jobs 2000] [--runs 3]

Both sides run the same command line on copies of the same database, so the difference is the
packaging alone: ``dist/litejobs`` (onefile: unpack, then start the bundled Python) against
``.venv/bin/litejobs`` (the console script on this machine's Python). The job is a no-op in a
user module loaded through ``--path``, so the drain measures litejobs' overhead per job.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIDES = {"frozen": ROOT / "dist" / "litejobs", "installed": ROOT / ".venv" / "bin" / "litejobs"}


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock seconds and CPU seconds (user + system, children included) of one run.

    CPU time is reported too because wall time on a shared, loaded machine mostly measures
    the other tenants; CPU time is what the command itself costs.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--frozen", type=Path, default=SIDES["frozen"], help="binary to measure")
    parser.add_argument("--no-drain", action="store_true", help="startup times only")
    opts = parser.parse_args()
    SIDES["frozen"] = opts.frozen.resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEJOBS_")}
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for side, exe in SIDES.items():
        runs = [timed([str(exe), "--version"], env) for _ in range(10)]
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(
            f"startup {side} ({exe}): median of 10: wall {ms(walls)} "
            f"(min {min(walls) * 1000:.0f}, max {max(walls) * 1000:.0f}), CPU {ms(cpus)}"
        )
    if opts.no_drain:
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "noopjobs.py").write_text("def noop(i):\n    return i\n")
        seed = work / "seed.db"
        sys.path.insert(0, str(work))
        from litejobs import JobManager, SQLiteAdapter

        manager = JobManager(adapters={"default": SQLiteAdapter(seed)})
        import noopjobs  # type: ignore[import-not-found]

        manager.create_scheduler().many([(noopjobs.noop, [i]) for i in range(opts.jobs)])
        manager.adapter().close()
        for side, exe in SIDES.items():
            rates, cpus = [], []
            for run in range(opts.runs):
                db = work / f"{side}-{run}.db"
                shutil.copy(seed, db)
                argv = [str(exe), "--db", str(db), "--path", str(work), "-qq", "workoff"]
                wall, cpu = timed(argv, env)
                rates.append(opts.jobs / wall)
                cpus.append(cpu)
            print(
                f"drain {side}: median {statistics.median(rates):.0f} jobs/s over {opts.runs} "
                f"runs of {opts.jobs} no-op jobs, 1 worker (min {min(rates):.0f}, "
                f"max {max(rates):.0f}); CPU {statistics.median(cpus):.2f} s per run"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
