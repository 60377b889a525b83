"""One chaos producer process: ``python -m tests.chaos.producer DB LOG OUT FIRST COUNT``.

Enqueues ``COUNT`` jobs (tokens ``FIRST`` ..) with mixed priorities and a few short waits, and
appends ``token id`` to ``OUT`` (fsync'd) once ``enqueue`` has returned: what it reports as
enqueued must never be lost.
"""

from __future__ import annotations

import os
import random
import sys

import litejobs
from litejobs import SQLiteAdapter


def main(argv: list[str]) -> int:
    db, log, out, first, count = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4])
    rng = random.Random(first)
    adapter = SQLiteAdapter(db)
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    lines: list[str] = []
    for token in range(first, first + count):
        wait = rng.choice([0] * 18 + [0.5, 1.5])
        job_id = litejobs.enqueue(
            "tests.chaos.jobs:work",
            args=[str(token), log, rng.choice([0, 0, 0, 1, 3])],
            db=adapter,
            priority=rng.choice([10, 50, 50, 90]),
            wait=wait or None,
            check=False,
        )
        lines.append(f"{token} {job_id}\n")
        if len(lines) >= 50 or token == first + count - 1:
            os.write(fd, "".join(lines).encode())
            os.fsync(fd)
            lines = []
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
