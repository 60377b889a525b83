"""Process titles: ``ps`` and ``top`` show ``litejobs-worker.email.0``, not ``python -m ...``.

Operators find, watch and (if they must) signal workers by these titles, so each worker process
sets its own. ``setproctitle`` is a dependency, but a platform (or a frozen build) where it cannot
work must not stop a worker from running jobs: failure is silently ignored.
"""

from __future__ import annotations

import contextlib


def set_title(title: str) -> None:
    """Set this process's title where the platform allows; never raises."""
    with contextlib.suppress(Exception):
        import setproctitle

        setproctitle.setproctitle(title)
