"""One chaos worker process: ``python -m tests.chaos.worker DB INDEX`` (stops on SIGTERM).

Used until the supervisor (``litejobs work``) runs the workers; the chaos runner restarts a
killed worker under the same index, hence the same name, as the supervisor does.
"""

from __future__ import annotations

import signal
import sys

from litejobs import JobManager, SQLiteAdapter, WorkerConfig

#: Short heartbeats so that recovery by *other* workers races the same-name restart.
CONFIG = WorkerConfig(queue="*", sleep_delay=0.5, heartbeat_interval=0.5, stale_after=2)


def main(argv: list[str]) -> int:
    db, index = argv[0], int(argv[1])
    manager = JobManager(adapters={"sqlite": SQLiteAdapter(db)}, workers=[CONFIG])
    worker = manager.worker(worker_id=index)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
