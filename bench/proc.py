"""Child processes of the benchmark (``python -m bench.proc MODE ...``).

Each child sets itself up (imports, connections), prints ``ready``, waits for ``go`` (or for its
stdin to close), works, and prints one ``done <json>`` line, so set-up time never pollutes a
measurement and the parent controls when every contender starts.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path


def _say(word: str, payload: object = None) -> None:
    sys.stdout.write(word + ("" if payload is None else " " + json.dumps(payload)) + "\n")
    sys.stdout.flush()


def _wait_go() -> None:
    line = sys.stdin.readline()
    if line.strip() != "go":
        sys.exit(0)


def _manager(db: str, keep: float = 0.0):  # type: ignore[no-untyped-def]
    from litejobs import JobManager, SQLiteAdapter, WorkerConfig

    return JobManager(
        adapters={"sqlite": SQLiteAdapter(db)},
        workers=[WorkerConfig(adapter="sqlite", queue="*", count=2)],
        keep_succeeded=keep or None,
    )


def drain(db: str, index: str, keep: str = "0", stats: str = "1") -> None:
    """One litejobs worker: ``workoff`` everything, report when it finished. ``keep``: seconds
    to keep each success (retention on); ``stats=0``: without the outcome statistics."""
    if stats == "0":  # nothing is tallied, no statistics statement is ever written
        import litejobs.adapters.sqlbase
        import litejobs.worker

        class NoTally:
            def __bool__(self) -> bool:
                return False

            def copy(self) -> NoTally:
                return self

            def add(self, runs: object) -> NoTally:
                return self

            def rows(self) -> list[object]:
                return []

        litejobs.worker.Tally = NoTally  # type: ignore[misc,assignment]
        litejobs.adapters.sqlbase.tally = lambda runs: []  # type: ignore[assignment]
    manager = _manager(db, float(keep))
    worker = manager.worker(worker_id=int(index))
    manager.adapter("sqlite").connection  # open now, not inside the timed part  # noqa: B018
    _say("ready")
    _wait_go()
    cpu = time.process_time()
    stats = worker.run(workoff=True)
    cpu = time.process_time() - cpu
    _say("done", {"end": time.monotonic(), "ran": stats.ran, "cpu": cpu})


def pool(db: str, count: str) -> None:
    """``litejobs workoff -n COUNT`` as a library call: the supervisor forks the workers, so the
    figure includes process start-up (what a user of ``workoff`` waits for)."""
    from litejobs import WorkerConfig
    from litejobs.supervisor import run_workers

    manager = _manager(db)
    _say("ready")
    _wait_go()
    config = WorkerConfig(adapter="sqlite", queue="*", count=int(count))
    stats = run_workers(manager, [config], workoff=True, install_signal_handlers=False)
    _say("done", {"end": time.monotonic(), "ran": stats.ran})


def serve(db: str, index: str, sleep_delay: str = "5") -> None:
    """One long-running litejobs worker, stopped gracefully when stdin closes (its log lines,
    one per cancelled job in the cancel section, are not the benchmark's output)."""
    import logging

    from litejobs import WorkerConfig

    logging.getLogger("litejobs").setLevel(logging.ERROR)

    manager = _manager(db)
    config = WorkerConfig(adapter="sqlite", queue="*", sleep_delay=float(sleep_delay))
    worker = manager.worker(config, worker_id=int(index))

    def watch_stdin() -> None:
        sys.stdin.read()
        worker.stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    _say("ready")
    stats = worker.run()
    _say("done", {"ran": stats.ran})


def rss(db: str, total: str) -> None:
    """Drain ``total`` pre-filled jobs in one worker, sampling its memory as it goes."""
    from .common import proc_status

    manager = _manager(db)
    n = int(total)
    samples: list[tuple[int, dict[str, int]]] = []
    every = max(1000, n // 20)
    count = 0

    def on_job(job: object, result: object) -> None:
        nonlocal count
        count += 1
        if count == 1000 or count % every == 0:
            samples.append((count, proc_status()))

    worker = manager.worker(on_job=on_job)
    _say("ready")
    _wait_go()
    start = time.monotonic()
    stats = worker.run(workoff=True)
    samples.append((count, proc_status()))
    _say("done", {"ran": stats.ran, "seconds": time.monotonic() - start, "samples": samples})


def produce(db: str, seconds: str) -> None:
    """Enqueue no-op jobs one at a time, flat out, for ``seconds``; also the longest single
    enqueue (how long a writer was held up, e.g. waiting for readers to bound the WAL)."""
    from .jobs import noop

    later = _manager(db).create_scheduler()
    later(noop, [0])
    _say("ready")
    _wait_go()
    clock = time.monotonic
    deadline = clock() + float(seconds)
    count = 0
    slowest = 0.0
    while clock() < deadline:
        for i in range(100):
            start = clock()
            later(noop, [i])
            slowest = max(slowest, clock() - start)
        count += 100
    _say("done", {"enqueued": count, "enqueue_max_s": slowest})


def reader(db: str, seconds: str, hold: str) -> None:
    """A long reader: read transactions of ``hold`` seconds with short gaps, for ``seconds``."""
    import apsw

    conn = apsw.Connection(db)
    conn.set_busy_timeout(30_000)
    _say("ready")
    _wait_go()
    deadline = time.monotonic() + float(seconds)
    held = 0
    while time.monotonic() < deadline:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM background_jobs").fetchone()
        time.sleep(float(hold))
        conn.execute("COMMIT")
        held += 1
        time.sleep(min(0.5, float(hold) / 4))
    _say("done", {"transactions": held})


def rawcycle(db: str, batch: str) -> None:
    """The raw apsw ceiling: claim (one ``BEGIN IMMEDIATE`` transaction) then complete (a DELETE
    in another), ``batch`` jobs per claim, until the table is empty."""
    from .raw import claim_complete_loop, connect

    conn = connect(db)
    _say("ready")
    _wait_go()
    done = claim_complete_loop(conn, int(batch))
    _say("done", {"end": time.monotonic(), "ran": done})


MODES = {
    "drain": drain,
    "pool": pool,
    "serve": serve,
    "rss": rss,
    "produce": produce,
    "reader": reader,
    "rawcycle": rawcycle,
}

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    MODES[sys.argv[1]](*sys.argv[2:])
