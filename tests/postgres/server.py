"""A PostgreSQL server of a test's own, to restart or to cut off without disturbing the server
the rest of the suite shares. Started by ``scripts/pg-server`` (so exactly as that one: a unix
socket in a temp directory, run as ``postgres`` when we are root), restarted with ``pg_ctl``."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    directory: Path  # holds data/, server.log and the unix socket
    url: str

    @classmethod
    def start(cls, state_file: Path) -> Server:
        env = {**os.environ, "LITEJOBS_PG_STATE": str(state_file)}
        started = subprocess.run(
            [str(ROOT / "scripts" / "pg-server"), "start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        exported = {
            name.removeprefix("export "): shlex.split(value)[0]
            for name, value in (line.split("=", 1) for line in started.stdout.splitlines())
        }
        return cls(Path(exported["LITEJOBS_PG_DIR"]), exported["LITEJOBS_TEST_PG_URL"])

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session ends (as in a restart or a failover); the
        server is accepting connections again when this returns."""
        self._pg_ctl("restart", "-m", "fast", "-l", str(self.directory / "server.log"))

    def stop(self) -> None:
        subprocess.run(
            [str(ROOT / "scripts" / "pg-server"), "stop", str(self.directory)],
            capture_output=True,
            timeout=120,
            check=False,
        )

    def _pg_ctl(self, *args: str) -> None:
        found = Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")  # as scripts/pg-server finds it
        newest = max(found, key=lambda p: int(p.parts[-3].split(".")[0]), default=None)
        pg_ctl = str(newest or "pg_ctl")
        argv = [pg_ctl, "-D", str(self.directory / "data"), "-w", "-t", "60", *args]
        if os.getuid() == 0:  # the server belongs to `postgres` (it refuses to run as root)
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(
            argv,
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
            check=True,
        )
