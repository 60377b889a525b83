"""A process for the fault-injection tests to hurt: ``python -m tests.chaos.victim [OPTIONS] CMD``.

``enqueue DB ARGS_JSON``  the real CLI (``litejobs --db DB enqueue tests.chaos.jobs:work ...``), run
                         in this process; exits with the CLI's code.
``fill DB LOG``           enqueue padded jobs until storage refuses; prints ``id`` per job it was
                         told was stored, then the error line; exits 3 on a storage error.
``work DB SECONDS``       a real worker until nothing is pending (or ``SECONDS`` pass); prints its
                         stats as JSON.

``--uid N`` drops to that user after every import (root ignores file permissions, so a read-only
file is only read-only to someone else; the interpreter lives where ``nobody`` cannot import
from). ``--fsize BYTES`` caps the size of any file this process writes (``RLIMIT_FSIZE``, with
``SIGXFSZ`` ignored so a write fails with ``EFBIG`` instead of killing us): a full disk.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import signal
import sys
import tempfile
import threading
import time

# Everything the commands may import lazily, imported now (before dropping privileges).
import litejobs
import litejobs.cli
import litejobs.cli.app
import litejobs.cli.jobs
import litejobs.cli.render
import litejobs.executor
import litejobs.worker
from litejobs import SQLiteAdapter, WorkerConfig
from litejobs.errors import StorageError
from litejobs.worker import Worker


def _warm_up() -> None:
    """Run each command once on a throwaway database, so every lazy import happens now, while
    this process may still read the interpreter's files."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        db, log = f"{tmp}/warm.db", f"{tmp}/warm.log"
        litejobs.cli.main(
            ["--db", db, "enqueue", "tests.chaos.jobs:work", "--args", f'["w", "{log}"]']
        )
        _work(db, 5.0)
        adapter = SQLiteAdapter(db)
        adapter.list_jobs()
        adapter.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.victim")
    parser.add_argument("--uid", type=int, default=None)
    parser.add_argument("--fsize", type=int, default=None)
    parser.add_argument("command", choices=["enqueue", "fill", "work"])
    parser.add_argument("db")
    parser.add_argument("arg")
    args = parser.parse_args(argv)
    if args.fsize is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.fsize, resource.RLIM_INFINITY))
    if args.uid is not None:
        _warm_up()
        os.setgid(args.uid)
        os.setuid(args.uid)
    if args.command == "enqueue":
        cli = ["--db", args.db, "enqueue", "tests.chaos.jobs:work", "--args", args.arg]
        return litejobs.cli.main(cli)
    if args.command == "fill":
        return _fill(args.db, args.arg)
    return _work(args.db, float(args.arg))


def _fill(db: str, log: str) -> int:
    adapter = SQLiteAdapter(db)
    pad = "x" * 2000
    for n in range(100_000):
        try:
            job_id = litejobs.enqueue(
                "tests.chaos.jobs:work", args=[f"fill-{n}-{pad}", log], db=adapter, check=False
            )
        except StorageError as exc:
            print(f"error: {exc}", flush=True)
            return 3
        print(job_id, flush=True)
    return 0


def _work(db: str, seconds: float) -> int:
    """A long-running worker (``litejobs work``), stopped once the queue is empty: through
    any storage outage, permanent or not, a service waits and retries (only a ``workoff``
    gives up on a permanent one)."""
    adapter = SQLiteAdapter(db)
    config = WorkerConfig(sleep_delay=0.1, heartbeat_interval=0.5, stale_after=2)
    worker = Worker(adapter, config, name="host/litejobs-worker.*.victim")
    signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
    threading.Thread(target=_stop_when_done, args=(worker, db, seconds), daemon=True).start()
    stats = worker.run()
    print(json.dumps({"ran": stats.ran, "succeeded": stats.succeeded, "lost": stats.lost}))
    return 0


def _stop_when_done(worker: Worker, db: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds  # bounded even if storage never returns
    probe = SQLiteAdapter(db)
    active = ["scheduled", "ready", "reserved", "running"]
    while not worker.stop.wait(0.1):
        if time.monotonic() > deadline:
            break
        try:
            if worker.stats.ran and not probe.list_jobs(state=active, limit=1):  # type: ignore[arg-type]
                break
        except StorageError:
            pass
    worker.stop.set()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
