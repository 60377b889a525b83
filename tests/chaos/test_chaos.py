"""The chaos round at CI size: real worker processes, real SIGKILLs, nothing lost.

The large run (``python -m tests.chaos --jobs 20000 --workers 4 --kills 50``) and its figures
are in ``docs/correctness.md``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.run import Report, run


def _assert_sound(report: Report, kills: int) -> None:
    assert report.problems == []
    assert report.kills == kills and report.restarts >= kills
    assert report.lost == 0 and report.left_active == 0 and report.failed == 0
    assert report.integrity == "ok"
    assert report.duplicates == report.duplicates_explained
    assert report.overlaps == 0
    assert report.runs == report.jobs + report.duplicates


@pytest.mark.timeout(180)
def test_chaos_under_the_supervisor(tmp_path: Path) -> None:
    """``litejobs work -n 3`` replaces each killed worker under its name (same-name reclaim)."""
    report = run(jobs=1500, workers=3, kills=8, seed=5, timeout=120, directory=tmp_path)
    _assert_sound(report, 8)


@pytest.mark.timeout(180)
def test_chaos_with_stale_recovery_racing_restarts(tmp_path: Path) -> None:
    """Workers with a 2 s ``stale_after``, restarted after random pauses of up to 2.5 s: the
    other workers' recovery and the same-name restart race for the dead worker's jobs."""
    report = run(
        jobs=800, workers=3, kills=6, seed=7, timeout=120, directory=tmp_path, supervisor=False
    )
    _assert_sound(report, 6)


@pytest.mark.timeout(240)
def test_chaos_with_two_runners_different_settings_and_an_in_process_workoff(
    tmp_path: Path,
) -> None:
    """What a real deployment mixes: two ``litejobs work`` runners whose groups declare
    different deadlines (60 s and 5 s), a ``jobs.workoff()`` loop taking free names next to
    them, and kills spread over all of them."""
    report = run(
        jobs=1200, workers=4, kills=8, seed=11, timeout=180, directory=tmp_path, mixed=True
    )
    _assert_sound(report, 8)
