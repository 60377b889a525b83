"""``scripts/bench``: litejobs, huey-SQLite and the raw apsw ceiling on the same workloads.

One run measures every contender on one machine, so the ratios hold even when the machine is
busy and the absolute figures drift. Run ``scripts/bench --help``; see ``docs/performance.md``.
"""
