"""Parsing ``-n SPEC``: how many workers to run, and on which queues.

The syntax is Redwood's, so operators can carry their habits over: ``4`` (four workers on every
queue), ``email:2`` (two on ``email``), ``default:2,email:4`` (two groups) and ``:2,email:4``
(an empty queue name means every queue). Everything not given on the command line (adapter,
attempts, runtime limits...) comes from the application's first worker group, so ``-n`` only
changes *how many* and *which queues*.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from .config import WorkerConfig
from .errors import ConfigurationError

_EXAMPLES = "e.g. -n 4, -n email:2, -n default:2,email:4 or -n :2,email:4"


def parse_worker_spec(spec: str, base: Sequence[WorkerConfig]) -> list[WorkerConfig]:
    """Turn ``spec`` into worker groups derived from ``base[0]`` (the app's first group).

    Raises :class:`~litejobs.errors.ConfigurationError` naming the offending part.
    """
    template = base[0] if base else WorkerConfig()
    text = spec.strip()
    if not text:
        raise ConfigurationError(f"-n needs a worker spec; {_EXAMPLES}")
    groups: list[WorkerConfig] = []
    seen: set[str] = set()
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            raise ConfigurationError(f"empty entry in worker spec {spec!r}; {_EXAMPLES}")
        queue, sep, count_text = part.rpartition(":")
        if not sep:
            queue, count_text = "*", part
        queue = queue.strip() or "*"
        count = _count(count_text.strip(), part, spec)
        if queue != "*" and (queue.strip() != queue or ":" in queue):
            raise ConfigurationError(f"bad queue name {queue!r} in worker spec {spec!r}")
        if queue in seen:
            raise ConfigurationError(
                f"queue {queue!r} appears twice in worker spec {spec!r}; give each queue one count"
            )
        seen.add(queue)
        groups.append(dataclasses.replace(template, queue=queue, count=count))
    return groups


def _count(text: str, part: str, spec: str) -> int:
    if not text.isdigit():
        raise ConfigurationError(
            f"bad worker count {text!r} in {part!r} (worker spec {spec!r}); "
            f"counts are whole numbers; {_EXAMPLES}"
        )
    count = int(text)
    if count < 1:
        raise ConfigurationError(f"worker count must be at least 1 in {part!r} ({spec!r})")
    return count
