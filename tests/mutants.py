"""Deliberate bugs, one at a time, to show the proofs catch them: ``python -m tests.mutants``.

Each mutant replaces one snippet of one source file *in memory* (an import hook serves the
patched text to every process the tests start, through ``sitecustomize``; no file is edited),
then the proof tests run. "Caught" means they failed. The table this prints is in
docs/correctness.md.

    python -m tests.mutants                 # every mutant (a few minutes each)
    python -m tests.mutants own-deadline    # one
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The proofs: both state machines, the storage contract and the real-process identity tests.
PROOFS = [
    "tests/test_state_machine.py",
    "tests/test_worker_state_machine.py",
    "tests/test_adapter_contract.py",
    "tests/runtime/test_identity.py",
    "tests/runtime/test_batches.py",
]


@dataclass(frozen=True)
class Mutant:
    name: str
    module: str  # dotted module whose source is patched (or "sql:<dialect>:<statement>")
    old: str
    new: str
    what: str
    proofs: tuple[str, ...] = ()  # more test files that prove this one, run after PROOFS


MUTANTS = [
    Mutant(
        "own-deadline",
        "litejobs.liveness",
        "if silent > worker.stale_after:",
        "if silent > 60.0:",
        "judge every worker by one fixed deadline, not the one it declared",
    ),
    Mutant(
        "wall-clock-here",
        "litejobs.liveness",
        "        if host.same_machine(worker.boot_id):\n            silent",
        "        if False:\n            silent",
        "judge workers on this machine by the wall clock, not the monotonic one",
    ),
    Mutant(
        "no-pid-proof",
        "litejobs.liveness",
        "if host.same_pids(worker.boot_id, worker.pid_ns):",
        "if False:",
        "never use a dead pid as proof",
    ),
    Mutant(
        "pid-reuse",
        "litejobs.liveness",
        "started and started != worker.pid_start",
        "False",
        "take a reused pid for the worker that held it",
    ),
    Mutant(
        "steal-live-name",
        "litejobs.adapters.sqlbase",
        "alive = [r for r in holders if observer.gone(r, now, mono) is None]",
        "alive = []",
        "a newcomer takes a live worker's name (and rescues its jobs)",
    ),
    Mutant(
        "no-re-create",
        "litejobs.adapters.sqlbase",
        '            self._count(conn, "worker_insert", params)\n            return False',
        "            return False",
        "a heartbeat does not re-create a missing row",
    ),
    Mutant(
        "orphans-at-once",
        "litejobs.adapters.sqlbase",
        "                stand_in = observer.adopt(token, name)\n"
        '                self._count(conn, "worker_insert", '
        "self._worker_params(stand_in, now, mono))",
        "                total += self._rescue_holder(conn, token, 24, False, REASON_LOST, now)",
        "a lock with no worker row is rescued at once",
    ),
    Mutant(
        "charge-reserved",
        "sql:sqlite:claim_take",
        "attempts = attempts + (id = :first),",
        "attempts = attempts + 1,",
        "a batch claim charges every job it takes (SQLite statement)",
    ),
    Mutant(
        "fence-without-token",
        "sql:sqlite:record_delete",
        "AND lock_token = :token ",
        "",
        "recording a success (deleting the row) ignores the lock's token",
    ),
    Mutant(
        "start-unfenced",
        "sql:sqlite:start_reserved",
        "\n  AND state = 'reserved'",
        "",
        "starting a reserved job does not check it is still reserved",
    ),
    Mutant(
        "suspects-uncounted",
        "litejobs.worker",
        "if job.suspect or self.outbox.flush_due(self._avg_duration):",
        "if self.outbox.flush_due(self._avg_duration):",
        "a job reserved by a worker that died runs uncounted again (crash loops in batches)",
    ),
    Mutant(
        "crash-not-suspect",
        "sql:sqlite:rescue_running",
        "suspect = 1,",
        "",
        "a job running when its worker died may run uncounted next time (crash loops in batches)",
    ),
    Mutant(
        "charge-finished",
        "litejobs.worker",
        "if self.outbox.holds_a_last_attempt():",
        "if False:",
        "a finished job on its last attempt still shows running while the next one runs",
    ),
    Mutant(
        "hold-the-batch",
        "litejobs.worker",
        "        if running_for >= GIVE_BACK_AFTER:",
        "        if False:",
        "a long job keeps its batch reserved behind it",
    ),
    Mutant(
        "hooks-are-the-job",
        "litejobs.worker",
        "        if current.ended is not None:\n"
        "            self._watch_hooks(current, current.ended)\n"
        "            return\n",
        "",
        "hooks that hang after a job ended make the job a timeout (it runs again)",
        ("tests/test_hooks.py", "tests/runtime/test_timeouts.py"),
    ),
    Mutant(
        "settled-twice",
        "litejobs.worker",
        "if ran is None or ran.ended is None or self.outbox.settle(job):",
        "if True:",
        "a run whose outcome the watchdog recorded is recorded again when its hooks end",
        ("tests/test_hooks.py", "tests/runtime/test_timeouts.py"),
    ),
]


HOOK = '''
import importlib.abc, importlib.util, json, os, sys

_M = json.loads(os.environ["LITEJOBS_MUTANT"])


class _Loader(importlib.abc.SourceLoader):
    def __init__(self, path):
        self.path = path

    def get_filename(self, fullname):
        return self.path

    def get_data(self, path):
        data = open(path, "rb").read()
        if path == self.path:
            text = data.decode()
            assert _M["old"] in text, "mutant no longer applies: " + _M["name"]
            data = text.replace(_M["old"], _M["new"], 1).encode()
        return data


def _patch_sql(module):
    """litejobs.adapters.sql loaded as it is; one statement patched as the dialect loads."""
    _, dialect, name = _M["module"].split(":")
    original = module._load

    def patched(which, _cache={}):
        if which not in _cache:
            statements = dict(original(which))
            if which == dialect:
                assert _M["old"] in statements[name], "mutant no longer applies"
                statements[name] = statements[name].replace(_M["old"], _M["new"], 1)
            _cache[which] = statements
        return _cache[which]

    module._load = patched


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        sql = _M["module"].startswith("sql:")
        if fullname != ("litejobs.adapters.sql" if sql else _M["module"]):
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.origin:
                if sql:
                    run = spec.loader.exec_module
                    spec.loader.exec_module = lambda m: (run(m), _patch_sql(m))
                else:
                    spec.loader = _Loader(spec.origin)
                return spec
        return None


sys.meta_path.insert(0, _Finder())
'''


def run(mutant: Mutant) -> tuple[bool, str, float]:
    """Run the proofs with ``mutant`` applied; (caught, first failure line, seconds)."""
    with tempfile.TemporaryDirectory(prefix="litejobs-mutant-") as tmp:
        Path(tmp, "sitecustomize.py").write_text(HOOK)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([tmp, str(ROOT)]),
            "LITEJOBS_MUTANT": json.dumps(mutant.__dict__),
            "HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "dev"),
        }
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
                *PROOFS,
                *mutant.proofs,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        seconds = time.monotonic() - started
    out = done.stdout + done.stderr
    if "mutant no longer applies" in out or done.returncode not in (0, 1):
        raise RuntimeError(f"mutant {mutant.name} did not run cleanly:\n{out[-3000:]}")
    lines = done.stdout.splitlines()
    failed = next((line.split()[1] for line in lines if line.startswith("FAILED ")), "")
    detail = next(
        (line[1:].strip() for line in lines if line.startswith("E ") and line[1:].strip()), ""
    )
    return done.returncode != 0, f"{failed}: {detail}"[:200] if failed else "", seconds


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTANTS if not argv or m.name in argv]
    missed = 0
    for mutant in chosen:
        caught, line, seconds = run(mutant)
        missed += not caught
        verdict = "caught" if caught else "MISSED"
        print(f"{mutant.name:22} {verdict:7} {seconds:6.0f} s  {mutant.what}\n{'':31}{line}")
        sys.stdout.flush()
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
