"""Several "hosts" on one PostgreSQL server: real worker processes, real SIGKILLs.

Each worker process pretends to run on its own machine (``tests/postgres/worker.py`` replaces
``socket.gethostname``), so worker names differ by host only, as in production. What must hold:
every job runs, none twice without a crash, and after SIGKILLs every duplicate run is one a
killed worker made and never got to record (at-least-once delivery, nothing more).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from litejobs.adapters.postgres import PostgresAdapter
from tests.pg import reset_schema
from tests.postgres.procs import (
    active,
    logged_jobs,
    runs,
    runs_by_pid,
    spawn_worker,
    stop_all,
    wait_until,
)

HOSTS = ("host-a", "host-b", "host-c")
BATCH_SIZE = 100  # WorkerConfig.batch_size: the most outcomes a worker can hold unrecorded


def test_workers_on_three_hosts_run_every_job_exactly_once(
    pg: PostgresAdapter, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    reset_schema(pg)
    procs = [spawn_worker(pg_url, pg_schema, host, 0) for host in HOSTS]
    try:
        # Same worker id on every host: the names differ by host only, and must not collide.
        wait_until(lambda: {w.host for w in pg.workers()} == set(HOSTS), 60, "3 hosts to register")
        names = sorted(w.name for w in pg.workers())
        assert names == [f"{h}/litejobs-worker.*.0" for h in HOSTS]
        tokens = [f"j{i}" for i in range(600)]
        for start in range(0, len(tokens), 100):
            pg.enqueue_many(logged_jobs(tokens[start : start + 100], log, work_ms=2))
        wait_until(lambda: active(pg) == 0, 120, "the workers to drain 600 jobs")
    finally:
        stop_all(procs)
    order = runs(log)
    counts = Counter(token for token, _, _ in order)
    assert set(counts) == set(tokens), "every job ran"
    assert [t for t, n in counts.items() if n > 1] == [], "no job ran twice without a crash"
    by_host = Counter(host for _, host, _ in order)
    assert set(by_host) <= set(HOSTS)
    assert len(by_host) >= 2, f"the work was shared between hosts: {dict(by_host)}"
    assert pg.counts() == {}, "successful jobs are deleted; nothing failed"
    assert pg.workers() == [], "workers deregistered on SIGTERM"


def test_sigkill_chaos_across_hosts_loses_nothing(
    pg: PostgresAdapter, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    rng = random.Random(8)
    log = tmp_path / "runs.log"
    reset_schema(pg)
    slots = [(host, index) for host in HOSTS[:2] for index in (0, 1)]
    procs: dict[tuple[str, int], subprocess.Popen[bytes]] = {
        slot: spawn_worker(pg_url, pg_schema, *slot) for slot in slots
    }
    tokens = [f"c{i}" for i in range(1200)]
    pending = [tokens[i : i + 60] for i in range(0, len(tokens), 60)]
    killed: set[int] = set()
    kills = restarts = 0
    restart_at: dict[tuple[str, int], float] = {}
    started = time.monotonic()
    next_batch = started
    kill_times = sorted(started + rng.uniform(0.5, 4.5) for _ in range(8))
    try:
        while True:
            now = time.monotonic()
            assert now - started < 150, "chaos round did not finish within 150 s"
            if pending and now >= next_batch:  # the producer: enqueue while workers run and die
                pg.enqueue_many(logged_jobs(pending.pop(0), log, work_ms=3))
                next_batch = now + 0.2
            for slot, proc in procs.items():  # the supervisor: replace the dead, same name
                if proc.poll() is not None and slot not in restart_at:
                    restart_at[slot] = now + rng.choice([0.0, 0.05, 0.3, 1.5, 3.0])
            for slot, when in list(restart_at.items()):
                if now >= when:
                    procs[slot] = spawn_worker(pg_url, pg_schema, *slot)
                    restarts += 1
                    del restart_at[slot]
            if kill_times and now >= kill_times[0]:
                # Kill a worker that holds a job right now: a crash mid-job, not while idle.
                holders = {j.locked_by for j in pg.list_jobs(state="running", limit=None)}
                alive = [
                    p
                    for (host, index), p in procs.items()
                    if p.poll() is None and f"{host}/litejobs-worker.*.{index}" in holders
                ]
                if alive:
                    kill_times.pop(0)
                    victim = rng.choice(alive)
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                    killed.add(victim.pid)
                    kills += 1
                elif not pending and active(pg) == 0:
                    kill_times.clear()  # nothing left to interrupt
            if not pending and not kill_times and not restart_at and active(pg) == 0:
                break
            time.sleep(0.05)
    finally:
        stop_all(list(procs.values()))

    order = runs(log)
    counts = Counter(token for token, _, _ in order)
    assert kills >= 4 and restarts >= kills
    assert [t for t in tokens if counts[t] == 0] == [], "no job lost"
    assert pg.counts() == {}, "nothing left pending, locked or failed"
    # Every run but a token's last must come from a killed worker, among the jobs it ran last
    # (at most one claim batch of outcomes is unrecorded when a worker dies).
    tails = {pid: set(ts[-BATCH_SIZE:]) for pid, ts in runs_by_pid(order).items() if pid in killed}
    seen: Counter[str] = Counter()
    unexplained = []
    for token, host, pid in order:
        seen[token] += 1
        if seen[token] < counts[token] and token not in tails.get(pid, set()):
            unexplained.append((token, host, pid))
    assert unexplained == [], "a duplicate run not explained by a SIGKILL"
    print(
        f"chaos: {len(tokens)} jobs, {kills} kills, {restarts} restarts, {len(order)} runs, "
        f"{len(order) - len(counts)} duplicates (all by killed workers), "
        f"{time.monotonic() - started:.1f} s"
    )
