"""The chaos round at CI size: real worker processes, real SIGKILLs, nothing lost.

The large run (``python -m tests.chaos --jobs 20000 --workers 4 --kills 50``) and its figures
are in ``docs/correctness.md``.
"""

from __future__ import annotations

from pathlib import Path

from tests.chaos.run import run


def test_chaos_small(tmp_path: Path) -> None:
    report = run(jobs=1500, workers=3, kills=8, producers=2, seed=5, timeout=90, directory=tmp_path)
    assert report.problems == []
    assert report.kills >= 5 and report.restarts >= report.kills
    assert report.lost == 0 and report.left_active == 0 and report.integrity == "ok"
    assert report.duplicates == report.duplicates_explained
    assert report.runs >= report.jobs
