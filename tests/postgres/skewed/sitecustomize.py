"""Makes a Python process a machine of its own whose wall clock is 10 minutes ahead.

Put this directory first on ``PYTHONPATH`` of a child process (``site`` imports it at start-up).
``time.time`` runs :data:`SKEW` seconds fast, and the boot id, by which litejobs tells "the
same machine", is another one: litejobs then judges this process's workers, and this process
judges the others', by the wall-clock deadlines they declare, as between real hosts. When
``$LITEJOBS_TEST_SKEW_MARK`` names a file, the skewed time is written there, so a test can
check the skew really took effect.
"""

from __future__ import annotations

import os
import time

SKEW = 600.0

_real_time = time.time
time.time = lambda: _real_time() + SKEW

import litejobs.liveness as _liveness  # noqa: E402 - after the clock is skewed

_real_read = _liveness._read
_liveness._read = lambda path: (
    "boot-of-a-skewed-machine" if path.endswith("boot_id") else _real_read(path)
)

if os.environ.get("LITEJOBS_TEST_SKEW_MARK"):
    with open(os.environ["LITEJOBS_TEST_SKEW_MARK"], "w", encoding="ascii") as _mark:
        _mark.write(repr(time.time()))
