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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIDES = {"frozen": ROOT / "dist" / "litejobs", "installed": ROOT / ".venv" / "bin" / "litejobs"}


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, timeout=600)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEJOBS_")}
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for side, exe in SIDES.items():
        runs = [timed([str(exe), "--version"], env) for _ in range(10)]
        print(
            f"startup {side}: median {statistics.median(runs) * 1000:.0f} ms of 10 "
            f"(min {min(runs) * 1000:.0f}, max {max(runs) * 1000:.0f})"
        )
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
            rates = []
            for run in range(opts.runs):
                db = work / f"{side}-{run}.db"
                shutil.copy(seed, db)
                argv = [str(exe), "--db", str(db), "--path", str(work), "-qq", "workoff"]
                rates.append(opts.jobs / timed(argv, env))
            print(
                f"drain {side}: median {statistics.median(rates):.0f} jobs/s over {opts.runs} "
                f"runs of {opts.jobs} no-op jobs, 1 worker (min {min(rates):.0f}, "
                f"max {max(rates):.0f})"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
