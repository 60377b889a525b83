"""A worker pool in its own process, for tests that must ``kill -9`` the supervisor.

``python -m tests.runtime.runner DB CONFIG_JSON [--workoff] [--ids 0,1] [--busy-timeout S]
[--setup MODULE:FUNC]`` (``FUNC(manager)`` adds hooks, say, before the workers start)
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys

from litejobs import JobManager, SQLiteAdapter, WorkerConfig
from litejobs.supervisor import run_workers


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("config", help="WorkerConfig keyword arguments as JSON")
    parser.add_argument("--workoff", action="store_true")
    parser.add_argument("--ids", default=None)
    parser.add_argument("--busy-timeout", type=float, default=30.0)
    parser.add_argument("--maintenance", type=float, default=30.0)
    parser.add_argument("--setup", default=None)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(process)d %(name)s %(message)s"
    )
    config = WorkerConfig(**json.loads(args.config))
    manager = JobManager(
        {"default": SQLiteAdapter(args.db, busy_timeout=args.busy_timeout)}, workers=[config]
    )
    if args.setup:
        module, func = args.setup.split(":")
        getattr(importlib.import_module(module), func)(manager)
    ids = [[int(i) for i in args.ids.split(",")]] if args.ids else None
    stats = run_workers(
        manager,
        [config],
        workoff=args.workoff,
        worker_ids=ids,
        maintenance_interval=args.maintenance,
    )
    sys.stdout.write(json.dumps({"ran": stats.ran, "succeeded": stats.succeeded}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
