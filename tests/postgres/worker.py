"""One worker process "on another machine":
``python -m tests.postgres.worker URL SCHEMA HOST I [SLEEP_DELAY]``.

``socket.gethostname`` is replaced before anything reads it, so the worker registers, and locks
jobs, as ``HOST/litejobs-worker.*.I``: several processes on this machine behave like workers on
several hosts sharing one PostgreSQL server. Stops gracefully on SIGTERM.
"""

from __future__ import annotations

import signal
import socket
import sys

#: Short heartbeats, so that recovery by *other* workers races a same-name restart.
HEARTBEAT = 0.5
STALE_AFTER = 2.0


def main(argv: list[str]) -> int:
    url, schema, host, index = argv[0], argv[1], argv[2], int(argv[3])
    sleep_delay = float(argv[4]) if len(argv) > 4 else 5.0
    socket.gethostname = lambda: host  # type: ignore[assignment]

    from litejobs import JobManager, WorkerConfig
    from litejobs.adapters.postgres import PostgresAdapter

    config = WorkerConfig(
        queue="*", sleep_delay=sleep_delay, heartbeat_interval=HEARTBEAT, stale_after=STALE_AFTER
    )
    manager = JobManager(adapters={"pg": PostgresAdapter(url, schema=schema)}, workers=[config])
    worker = manager.worker(worker_id=index)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
