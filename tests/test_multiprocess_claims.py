"""Several real processes claiming from one SQLite file never receive the same job.

Why: this is the promise that makes a file a job queue -- two workers must never run the same
job, and none may be left behind. Threads would not prove it (SQLite locks between processes
through the file system), so these tests start real ``multiprocessing`` processes. They use the
"fork" start method explicitly (3x faster to start than "spawn" here, which keeps the file at a
few seconds); each child opens its own connections, as the adapter does after any ``fork``, and
uses nothing of the parent's. Two layers are tested:

* raw ``Adapter.claim``/``record`` loops, one job (or a few) per claim for the most contention,
  while the test process keeps enqueueing -- any process may enqueue while workers run;
* real :class:`~litejobs.worker.Worker` loops (``workoff``) running a real job that appends its
  id to a file of its own process; the union of those files must be every id exactly once.

No sleeps: processes start together at a barrier, every wait is bounded by a timeout.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import Counter
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

import pytest

from litejobs import JobManager, SQLiteAdapter, WorkerConfig
from litejobs.adapters.base import NewJob, Outcome

from . import sample_jobs
from .workers import Processes, worker

CTX = multiprocessing.get_context("fork")
TIMEOUT = 60  # seconds any process may take before the test gives up on it


def claim_loop(db: str, name: str, out: str, start: Barrier, produced: Event) -> None:
    """Claim and complete jobs until the producer is done and nothing is left; write
    ``[[id, n], ...]`` of every job this process received to ``out``."""
    adapter = SQLiteAdapter(db)
    me = worker(Processes(), name, pid=os.getpid())
    got: list[tuple[int, int]] = []
    claims = 0
    start.wait(TIMEOUT)
    while True:
        done = produced.is_set()  # read *before* claiming: then an empty claim means the end
        jobs = adapter.claim(me, None, 1 + claims % 3)
        claims += 1
        if not jobs:
            if done:
                break
            produced.wait(0.001)
            continue
        for job in jobs:
            got.append((job.id, json.loads(job.handler)["args"][0]))
        written, _ = adapter.record([Outcome(job, "succeeded", delete=True) for job in jobs])
        assert all(written), "a completion was refused: another process held the job"
    adapter.close()
    Path(out).write_text(json.dumps({"jobs": got, "claims": claims}))


def new(n: int) -> NewJob:
    return NewJob(
        handler=json.dumps({"name": "record", "path": "tests.sample_jobs:record", "args": [n]})
    )


@pytest.mark.parametrize("processes", [2, 4])
def test_raw_claims_from_several_processes_never_overlap(
    tmp_path: Path, processes: int, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "jobs.db"
    adapter = SQLiteAdapter(db)
    total = 4000
    first = adapter.enqueue_many([new(n) for n in range(total // 2)])
    start, produced = CTX.Barrier(processes + 1), CTX.Event()
    outs = [tmp_path / f"claims.{i}.json" for i in range(processes)]
    procs = [
        CTX.Process(
            target=claim_loop,
            args=(str(db), f"host/raw.{i}", str(out), start, produced),
            daemon=True,
        )
        for i, out in enumerate(outs)
    ]
    for proc in procs:
        proc.start()
    try:
        start.wait(TIMEOUT)
        ids = list(first)
        for low in range(total // 2, total, 100):  # keep enqueueing while they claim
            ids += adapter.enqueue_many([new(n) for n in range(low, low + 100)])
        produced.set()
        for proc in procs:
            proc.join(TIMEOUT)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    assert [proc.exitcode for proc in procs] == [0] * processes
    results = [json.loads(out.read_text()) for out in outs]
    received = [tuple(job) for result in results for job in result["jobs"]]
    duplicates = [job for job, count in Counter(received).items() if count > 1]
    assert duplicates == []
    assert sorted(received) == sorted(zip(ids, range(total), strict=True))
    assert adapter.counts() == {}
    per_process = [len(result["jobs"]) for result in results]
    with capsys.disabled():
        print(
            f"\n  {processes} processes, raw claims: {per_process} jobs, "
            f"{[r['claims'] for r in results]} claims"
        )
    adapter.close()


def work_off(db: str, worker_id: int, directory: str, start: Barrier) -> None:
    """A worker process: a real Worker loop until nothing is eligible, stats to a file."""
    sample_jobs.START_BARRIER = start  # the first job waits until every worker holds one
    jobs = JobManager(adapters={"sqlite": SQLiteAdapter(db)})
    stats = jobs.worker(WorkerConfig(), worker_id=worker_id).run(workoff=True)
    result = {"ran": stats.ran, "succeeded": stats.succeeded, "errors": stats.errors}
    Path(directory, f"stats.{worker_id}.json").write_text(json.dumps(result))


@pytest.mark.parametrize("processes", [2, 4])
def test_worker_processes_run_every_job_exactly_once(
    tmp_path: Path, processes: int, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "jobs.db"
    runs = tmp_path / "runs"
    runs.mkdir()
    total = 3000
    jobs = JobManager(adapters={"sqlite": SQLiteAdapter(db)})
    later = jobs.create_scheduler()
    ids = later.many([(sample_jobs.log_run, [str(runs)])] * total)
    start = CTX.Barrier(processes)
    procs = [
        CTX.Process(target=work_off, args=(str(db), i, str(runs), start), daemon=True)
        for i in range(processes)
    ]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join(TIMEOUT)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    assert [proc.exitcode for proc in procs] == [0] * processes
    stats = [json.loads((runs / f"stats.{i}.json").read_text()) for i in range(processes)]
    assert [s["errors"] for s in stats] == [[]] * processes
    per_pid = {
        path.stem: [int(line) for line in path.read_text().split()] for path in runs.glob("*.ids")
    }
    assert len(per_pid) == processes  # the barrier made every process run jobs
    ran = [job_id for got in per_pid.values() for job_id in got]
    duplicates = [job_id for job_id, count in Counter(ran).items() if count > 1]
    assert duplicates == []
    assert sorted(ran) == sorted(ids)
    assert sum(s["succeeded"] for s in stats) == total
    assert jobs.adapter().counts() == {}
    with capsys.disabled():
        print(f"\n  {processes} worker processes: {sorted(map(len, per_pid.values()))} jobs each")
    jobs.adapter().close()
