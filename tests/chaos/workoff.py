"""``python -m tests.chaos.workoff DB``: ``jobs.workoff()`` in a loop, as a web process might
call it, next to the runners of a mixed chaos round (it takes free worker names)."""

from __future__ import annotations

import os
import signal
import sys
import time


def main(argv: list[str]) -> int:
    os.environ["CHAOS_DB"] = argv[0]
    from tests.chaos.app import slow

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        slow.workoff()
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
