"""The chaos runner: real processes, real ``SIGKILL``, and a checker that explains every run.

Producers enqueue while worker processes run; a killer sends ``SIGKILL`` to random workers at
random moments and a supervisor loop restarts each killed worker under the same name (same-name
reclaim), after a random pause (so stale-lock recovery by the other workers races it). Each job
appends ``token pid`` to an fsync'd log when its work is done. At the end:

* **lost = 0**: every job a producer saw enqueued ran at least once;
* nothing is left pending or locked, nothing failed, ``PRAGMA integrity_check`` is ``ok``;
* every **duplicate** run is explained: all runs of a token but its last were made by a worker
  process that was then killed, among the last jobs it ran (the outcomes a worker had not
  recorded yet when it died: at-least-once delivery, nothing more);
* **no overlapping executions**: a job never starts while another execution of it is still
  going in a process that has not been killed (each execution logs its start; kill times are
  known), whatever mix of runners shares the database.

``mixed=True`` runs what a real deployment mixes: two ``litejobs work`` runners whose worker
groups have different liveness settings (``tests.chaos.app``: 60 s and 5 s deadlines) and an
in-process ``jobs.workoff()`` loop, with kills spread over all of them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import apsw

ROOT = Path(__file__).resolve().parents[2]
BATCH_SIZE = 100  # WorkerConfig.batch_size: the most outcomes a worker can hold unrecorded
ACTIVE_SQL = (
    "SELECT count(*) FROM background_jobs "
    "WHERE state IN ('scheduled', 'ready', 'reserved', 'running')"
)


@dataclass
class Report:
    jobs: int
    workers: int
    producers: int
    kills: int = 0
    restarts: int = 0
    runs: int = 0
    duplicates: int = 0
    duplicates_explained: int = 0
    overlaps: int = 0
    reruns_per_kill: float = 0.0
    lost: int = 0
    left_active: int = 0
    failed: int = 0
    integrity: str = ""
    seconds: float = 0.0
    jobs_per_second: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _spawn(module: str, *args: object, **extra_env: str) -> subprocess.Popen[bytes]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, **extra_env}
    return subprocess.Popen(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class _Progress:
    """Counts the lines of the run log as it grows (reads only the new bytes)."""

    def __init__(self, log: Path) -> None:
        self.log, self.offset, self.lines = log, 0, 0

    def runs(self) -> int:
        try:
            with self.log.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return 0
        self.offset += len(chunk)
        self.lines += chunk.count(b"\n")
        return self.lines


def producing_now(makers: list[subprocess.Popen[bytes]]) -> bool:
    return any(m.poll() is None for m in makers)


def _active(db: Path) -> int:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    conn.set_busy_timeout(10_000)  # even a reader can meet a lock (WAL recovery, checkpoints)
    try:
        row = conn.execute(ACTIVE_SQL).fetchone()
        return int(row[0]) if row else 0
    finally:
        conn.close()


class OwnPool:
    """Worker processes started and replaced by this runner (``tests.chaos.worker``), after a
    random pause so that recovery by the other workers races the same-name restart."""

    def __init__(self, db: Path, workers: int, rng: random.Random) -> None:
        self.db, self.rng, self.restarts = db, rng, 0
        self.procs = {i: _spawn("tests.chaos.worker", db, i) for i in range(workers)}
        self.restart_at: dict[int, float] = {}

    def tick(self, killed: set[int]) -> list[int]:
        """Replace the dead; return the pids that may be killed now."""
        now = time.monotonic()
        for index, proc in self.procs.items():
            if proc.poll() is not None and index not in self.restart_at:
                self.restart_at[index] = now + self.rng.choice([0.0, 0.05, 0.3, 2.5])
        for index, when in list(self.restart_at.items()):
            if now >= when:
                self.procs[index] = _spawn("tests.chaos.worker", self.db, index)
                self.restarts += 1
                del self.restart_at[index]
        return [
            p.pid
            for i, p in self.procs.items()
            if p.poll() is None and p.pid not in killed and i not in self.restart_at
        ]

    def whole(self) -> bool:
        return not self.restart_at and all(p.poll() is None for p in self.procs.values())

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            _reap(proc)


class SupervisorPool:
    """``litejobs work -n N``: the product's supervisor replaces killed workers (same name).
    Worker pids come from the database's worker table, as an operator would see them."""

    def __init__(self, db: Path, workers: int, rng: random.Random) -> None:
        self.db, self.workers, self.restarts = db, workers, 0
        self.proc = _spawn("litejobs", "--db", db, "work", "-n", workers)
        self.seen: set[int] = set()

    def _pids(self) -> list[int]:
        conn = apsw.Connection(str(self.db), flags=apsw.SQLITE_OPEN_READONLY)
        conn.set_busy_timeout(10_000)
        try:
            rows = conn.execute("SELECT pid FROM litejobs_workers").fetchall()
        finally:
            conn.close()
        return [int(r[0]) for r in rows if _pid_alive(int(r[0]))]

    def tick(self, killed: set[int]) -> list[int]:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the supervisor exited with {self.proc.returncode}")
        pids = self._pids()
        self.seen.update(pids)
        self.restarts = max(0, len(self.seen) - self.workers)
        return [pid for pid in pids if pid not in killed]

    def whole(self) -> bool:
        return len(self.tick(set())) == self.workers

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # graceful: finish the current job
        _reap(self.proc, timeout=30)


class MixedPool:
    """Two runners with different group settings (``tests.chaos.app``) and an in-process
    ``workoff()`` loop (restarted by this runner when killed). Worker pids come from the
    database's worker table; the workoff loop's pid is a target too."""

    RUNNERS = (("tests.chaos.app:slow", 2), ("tests.chaos.app:fast", 2))

    def __init__(self, db: Path, workers: int, rng: random.Random) -> None:
        self.db, self.rng, self.restarts = db, rng, 0
        env = {"CHAOS_DB": str(db)}
        self.runners = [_spawn("litejobs", "--app", app, "work", **env) for app, _ in self.RUNNERS]
        self.workers = sum(count for _, count in self.RUNNERS)
        self.loop = _spawn("tests.chaos.workoff", db)
        self.loop_restart_at: float | None = None
        self.loop_pids = {self.loop.pid}
        self.seen: set[int] = set()
        self.loop_restarts = 0

    def tick(self, killed: set[int]) -> list[int]:
        for runner in self.runners:
            if runner.poll() is not None:
                raise RuntimeError(f"a runner exited with {runner.returncode}")
        now = time.monotonic()
        if self.loop.poll() is not None and self.loop_restart_at is None:
            self.loop_restart_at = now + self.rng.choice([0.0, 0.3, 1.0])
        if self.loop_restart_at is not None and now >= self.loop_restart_at:
            self.loop = _spawn("tests.chaos.workoff", self.db)
            self.loop_restart_at = None
            self.loop_pids.add(self.loop.pid)
            self.loop_restarts += 1
        pids = set(SupervisorPool._pids(self))  # type: ignore[arg-type]
        self.seen.update(pids - self.loop_pids)
        self.restarts = self.loop_restarts + max(0, len(self.seen) - self.workers)
        if self.loop.poll() is None:
            pids.add(self.loop.pid)
        return sorted(pid for pid in pids if pid not in killed)

    def whole(self) -> bool:
        supervised = [p for p in SupervisorPool._pids(self) if p != self.loop.pid]  # type: ignore[arg-type]
        return len(supervised) >= self.workers and self.loop_restart_at is None

    def stop(self) -> None:
        self.loop.send_signal(signal.SIGTERM)
        for runner in self.runners:
            if runner.poll() is None:
                runner.send_signal(signal.SIGINT)
        for proc in [*self.runners, self.loop]:
            _reap(proc, timeout=30)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed child of the supervisor stays a zombie until reaped: not alive for us.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _reap(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(
    *,
    jobs: int = 2000,
    workers: int = 3,
    kills: int = 10,
    producers: int = 2,
    seed: int | None = None,
    timeout: float = 300.0,
    directory: Path | None = None,
    supervisor: bool = True,
    mixed: bool = False,
) -> Report:
    """Run one chaos round; returns the report (``report.ok`` and ``report.problems``).

    ``supervisor``: workers run under ``litejobs work -n N`` (else this runner's own pool);
    ``mixed``: two runners with different settings and an in-process workoff loop."""
    rng = random.Random(seed)
    workdir = Path(directory or tempfile.mkdtemp(prefix="litejobs-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db, log = workdir / "jobs.db", workdir / "runs.log"
    report = Report(jobs=jobs, workers=workers, producers=producers)
    from litejobs import SQLiteAdapter

    SQLiteAdapter(db).list_jobs()  # create the schema once, before the crowd arrives
    started = time.monotonic()
    deadline = started + timeout
    kind = MixedPool if mixed else SupervisorPool if supervisor else OwnPool
    pool: OwnPool | SupervisorPool | MixedPool = kind(db, workers, rng)
    killed: dict[int, float] = {}  # pid -> monotonic time of its SIGKILL
    per = -(-jobs // producers)
    makers = [
        _spawn(
            "tests.chaos.producer", db, log, workdir / f"ids-{p}", p * per, min(per, jobs - p * per)
        )
        for p in range(producers)
        if p * per < jobs
    ]
    # Spread the kills over the run by progress (runs logged so far), whatever the machine's speed.
    kill_at = sorted(int(rng.uniform(0.01, 0.95) * jobs) for _ in range(kills))
    progress = _Progress(log)
    try:
        while True:
            if time.monotonic() > deadline:
                report.problems.append(f"timed out after {timeout:.0f} s")
                break
            alive = pool.tick(killed)
            if kill_at and alive and (progress.runs() >= kill_at[0] or not producing_now(makers)):
                kill_at.pop(0)
                victim = rng.choice(alive)
                time.sleep(rng.uniform(0, 0.01))  # a random moment, not a polling boundary
                os.kill(victim, signal.SIGKILL)
                killed[victim] = time.monotonic()
                report.kills += 1
            if not producing_now(makers) and not kill_at and pool.whole() and _active(db) == 0:
                break
            time.sleep(0.02)
    finally:
        pool.stop()
        for proc in makers:
            _reap(proc)
    report.restarts = pool.restarts
    report.seconds = round(time.monotonic() - started, 2)
    report.jobs_per_second = round(jobs / report.seconds, 1)
    _check(report, db, log, workdir, producers, killed)
    return report


def _check(
    report: Report, db: Path, log: Path, workdir: Path, producers: int, killed: dict[int, float]
) -> None:
    enqueued: dict[str, int] = {}
    for p in range(producers):
        path = workdir / f"ids-{p}"
        if path.exists():
            for line in path.read_text().splitlines():
                token, job_id = line.split()
                enqueued[token] = int(job_id)
    if len(enqueued) != report.jobs:
        report.problems.append(f"producers reported {len(enqueued)} of {report.jobs} jobs")
    runs_by_pid: dict[int, list[str]] = defaultdict(list)
    order: list[tuple[str, int]] = []
    if log.exists():
        for line in log.read_text().splitlines():
            token, pid = line.split()[:2]
            runs_by_pid[int(pid)].append(token)
            order.append((token, int(pid)))
    report.runs = len(order)
    counts = Counter(token for token, _ in order)
    report.lost = sum(1 for token in enqueued if counts[token] == 0)
    if report.lost:
        report.problems.append(f"{report.lost} enqueued job(s) never ran")
    # A duplicate is explained when its earlier run was made by a killed worker, within the last
    # BATCH_SIZE jobs that worker ran (outcomes it held, not yet recorded, when it died).
    tail = {pid: set(tokens[-BATCH_SIZE:]) for pid, tokens in runs_by_pid.items() if pid in killed}
    seen: Counter[str] = Counter()
    for token, pid in order:
        seen[token] += 1
        if seen[token] == counts[token]:
            continue  # the last run of this token: the one that was recorded
        report.duplicates += 1
        if token in tail.get(pid, set()):
            report.duplicates_explained += 1
        else:
            report.problems.append(f"job token {token}: unexplained duplicate run by pid {pid}")
    report.reruns_per_kill = round(report.duplicates / max(1, report.kills), 2)
    _check_overlaps(report, log, killed)
    conn = apsw.Connection(str(db))
    conn.set_busy_timeout(10_000)
    try:
        report.integrity = str(conn.execute("PRAGMA integrity_check").fetchone()[0])  # type: ignore[index]
        report.left_active = int(conn.execute(ACTIVE_SQL).fetchone()[0])  # type: ignore[index]
        report.failed = int(
            conn.execute("SELECT count(*) FROM background_jobs WHERE state = 'failed'").fetchone()[
                0
            ]  # type: ignore[index]
        )
    finally:
        conn.close()
    if report.integrity != "ok":
        report.problems.append(f"integrity_check: {report.integrity}")
    if report.left_active:
        report.problems.append(f"{report.left_active} job(s) still pending or locked")
    if report.failed:
        report.problems.append(f"{report.failed} job(s) failed")


def _check_overlaps(report: Report, log: Path, killed: dict[int, float]) -> None:
    """No execution of a job may start while an earlier one is still going in a process that
    has not been killed: an execution lasts from its start mark to its run line, or, if it
    has none, to its process's SIGKILL (a run with neither never ended: it still counts)."""
    ends: dict[tuple[str, int], list[float]] = defaultdict(list)
    for line in log.read_text().splitlines() if log.exists() else []:
        token, pid, at = line.split()
        ends[(token, int(pid))].append(float(at))
    starts: dict[str, list[tuple[float, int]]] = defaultdict(list)
    starts_log = Path(f"{log}.starts")
    for line in starts_log.read_text().splitlines() if starts_log.exists() else []:
        token, pid, at = line.split()
        starts[token].append((float(at), int(pid)))
    for token, runs in starts.items():
        runs.sort()
        spans: list[tuple[float, float, int]] = []
        for begin, pid in runs:
            done = [t for t in ends[(token, pid)] if t >= begin]
            end = min(done) if done else killed.get(pid, float("inf"))
            spans.append((begin, end, pid))
        for (_, first_end, first_pid), (second_begin, _, second_pid) in itertools.pairwise(spans):
            if second_begin < first_end:
                report.overlaps += 1
                report.problems.append(
                    f"job token {token}: started by pid {second_pid} while pid {first_pid} "
                    "was still running it"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--dir", type=Path, default=None, help="keep the db and logs here")
    parser.add_argument(
        "--own-pool", action="store_true", help="run workers without the supervisor"
    )
    parser.add_argument(
        "--mixed", action="store_true", help="two runners, different settings, a workoff loop"
    )
    args = parser.parse_args(argv)
    report = run(
        jobs=args.jobs,
        workers=args.workers,
        kills=args.kills,
        producers=args.producers,
        seed=args.seed,
        timeout=args.timeout,
        directory=args.dir,
        supervisor=not args.own_pool,
        mixed=args.mixed,
    )
    print(json.dumps(asdict(report) | {"problems": report.problems[:20]}, indent=2))
    return 0 if report.ok else 1
