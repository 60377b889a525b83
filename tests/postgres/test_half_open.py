"""A connection to a server whose host vanished cannot hang a worker.

When the server's host disappears without a word (power cut, a network partition, a failover
that moved the database elsewhere), nothing tells the client: an idle connection looks fine
forever, and a query waits for an answer while the kernel retransmits for ~15 minutes. libpq
bounds both when asked: TCP keepalives notice an idle connection's dead peer, and
``tcp_user_timeout`` fails a connection whose sent data goes unacknowledged. The adapter sets
them unless the URL does.

How the vanishing is made without a firewall: the test server listens on a unix socket only,
so a small TCP forwarder (``tests/postgres/forwarder.py``) runs inside a network namespace of
its own, joined to this one by a veth pair. Deleting the forwarder's address inside the
namespace turns it into a black hole: packets still arrive there and are dropped in silence (no
RST, no ICMP), exactly what a vanished host looks like. The URL lists the unix socket as a
second host, the way a client lists a standby: the worker must give up on the first and go on.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from litejobs.adapters.base import NewJob
from litejobs.adapters.postgres import KEEPALIVE, PostgresAdapter
from tests.postgres import forwarder
from tests.postgres.procs import ROOT, logged_jobs, runs, spawn_worker, stop_all, wait_until

#: Short bounds for the test (the defaults, 30 s idle + 3 probes 10 s apart and 30 s of
#: unacknowledged data, would make it last minutes).
SHORT = "keepalives_idle=1&keepalives_interval=1&keepalives_count=2&tcp_user_timeout=2000"
#: And a short life for a session the vanished client left inside a transaction (it holds
#: locks the reconnected worker needs: see the test of it below).
SHORT_IDLE = "options=-c%20idle_in_transaction_session_timeout%3D2s"
HANDLER = json.dumps({"name": "record", "path": "tests.sample_jobs:record", "args": [1]})
SOCKET_OPTIONS = {
    "keepalives_idle": (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1),
    "keepalives_interval": (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1),
    "keepalives_count": (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 1),
    "tcp_user_timeout": (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 1),
}


def socket_dir(url: str) -> str:
    """The unix socket directory of the test server's URL (``?host=/tmp/litejobs-pg.X``)."""
    return parse_qs(urlsplit(url).query)["host"][0]


def tcp_options(adapter: PostgresAdapter) -> dict[str, int]:
    """What the kernel holds for this thread's connection: the settings themselves, not what
    was asked for."""
    with socket.socket(fileno=os.dup(adapter.connection.fileno())) as sock:
        found = {"keepalives": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)}
        for name, (level, option, _) in SOCKET_OPTIONS.items():
            found[name] = sock.getsockopt(level, option)
    return found


@pytest.fixture
def tcp_front(pg_url: str) -> Iterator[int]:
    """A forwarder on 127.0.0.1 (a thread of this process); yields its port."""
    listener = forwarder.listen("127.0.0.1", 0)
    target = f"{socket_dir(pg_url)}/.s.PGSQL.5432"
    thread = threading.Thread(target=forwarder.serve, args=(listener, target), daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()


def test_keepalives_and_user_timeout_are_set_unless_the_url_sets_them(
    tcp_front: int, pg_schema: str
) -> None:
    base = f"postgresql://postgres@127.0.0.1:{tcp_front}/postgres"
    defaults = PostgresAdapter(base, schema=pg_schema)
    own = PostgresAdapter(f"{base}?keepalives_idle=7&tcp_user_timeout=1234", schema=pg_schema)
    off = PostgresAdapter(f"{base}?keepalives=0", schema=pg_schema)
    try:
        expected = {"keepalives": 1, **{k: int(KEEPALIVE[k]) for k in SOCKET_OPTIONS}}
        assert tcp_options(defaults) == expected
        assert tcp_options(own) == {**expected, "keepalives_idle": 7, "tcp_user_timeout": 1234}
        assert tcp_options(off)["keepalives"] == 0
    finally:
        for adapter in (defaults, own, off):
            adapter.close()


def test_the_urls_connect_timeout_and_application_name_win(pg_url: str, pg_schema: str) -> None:
    """Every libpq setting litejobs adds is a default: what the URL says is kept."""
    sep = "&" if "?" in pg_url else "?"
    mine = PostgresAdapter(f"{pg_url}{sep}connect_timeout=3&application_name=web", schema=pg_schema)
    plain = PostgresAdapter(pg_url, schema=pg_schema, connect_timeout=4)
    try:
        given = mine.connection.info.get_parameters()
        assert (given["connect_timeout"], given["application_name"]) == ("3", "web")
        defaults = plain.connection.info.get_parameters()
        assert (defaults["connect_timeout"], defaults["application_name"]) == ("4", "litejobs")
    finally:
        mine.close()
        plain.close()


def test_a_transaction_whose_client_vanished_ends_and_frees_its_locks(
    pg_url: str, pg_schema: str
) -> None:
    """A client that vanishes between two statements of a transaction leaves its session
    "idle in transaction" on the server, holding its row locks; every worker touching those
    rows (a rescue, the reconnected worker's own heartbeat: seen in the test below) would wait
    for them until the server's TCP keepalive gave up on the client, two hours by default.
    litejobs' sessions tell the server to end such a session (60 s; here the URL says 1 s)."""
    sep = "&" if "?" in pg_url else "?"
    vanishing = PostgresAdapter(
        f"{pg_url}{sep}options=-c%20idle_in_transaction_session_timeout%3D1s", schema=pg_schema
    )
    other = PostgresAdapter(pg_url, schema=pg_schema)
    try:
        assert other.connection.execute("SHOW idle_in_transaction_session_timeout").fetchone() == (
            "1min",
        )
        job_id = other.enqueue(NewJob(handler=HANDLER))
        orphan = vanishing.connection
        orphan.execute("BEGIN")
        orphan.execute(
            f'SELECT 1 FROM "{pg_schema}".background_jobs WHERE id = %s FOR UPDATE', (job_id,)
        )
        started = time.monotonic()
        assert other.delete(job_id)  # waits for the lock until the server ends the orphan
        assert time.monotonic() - started < 30
        query = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
        pid = orphan.info.backend_pid
        gone = lambda: other.connection.execute(query, (pid,)).fetchone() == (0,)  # noqa: E731
        wait_until(gone, 30, "the server to end the orphaned session")  # its locks went first
    finally:
        vanishing.close()
        other.close()


@dataclass
class Namespace:
    """A network namespace joined to this one by a veth pair; ``address`` is its side."""

    name: str
    host_link: str
    link: str
    address: str

    def run(self, argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **options)

    def vanish(self) -> None:
        """Take the address away: what is sent to it is dropped without a word."""
        _ip("-n", self.name, "addr", "del", f"{self.address}/30", "dev", self.link)


def _ip(*argv: str) -> None:
    done = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(argv)}: {done.stderr.strip()}")


def _need_ip_tool() -> None:
    """Install iproute2 the way scripts/pg-server installs PostgreSQL: only when missing."""
    if shutil.which("ip") is None and shutil.which("apt-get") is not None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (["update", "-q"], ["install", "-y", "-q", "iproute2"]):
            subprocess.run(["apt-get", *argv], env=env, capture_output=True, timeout=600)
    if shutil.which("ip") is None:
        pytest.skip("no `ip` command (iproute2) and it could not be installed")


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root: the half-open connection test cannot run")
    _need_ip_tool()
    pid = os.getpid()
    net = (pid % 16384) * 4  # a /30 of 10.213.0.0/16 per test process
    prefix = f"10.213.{net // 256}."
    ns = Namespace(f"ljho{pid}", f"ljh{pid}", f"ljp{pid}", f"{prefix}{net % 256 + 2}")
    try:
        _ip("netns", "add", ns.name)
    except RuntimeError as exc:
        pytest.skip(f"cannot create a network namespace here: {exc}")
    try:
        _ip("link", "add", ns.host_link, "type", "veth", "peer", "name", ns.link, "netns", ns.name)
        _ip("addr", "add", f"{prefix}{net % 256 + 1}/30", "dev", ns.host_link)
        _ip("link", "set", ns.host_link, "up")
        _ip("-n", ns.name, "addr", "add", f"{ns.address}/30", "dev", ns.link)
        _ip("-n", ns.name, "link", "set", ns.link, "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", ns.host_link], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, timeout=30)


def test_a_worker_whose_server_vanished_goes_on_within_seconds(
    namespace: Namespace, pg: PostgresAdapter, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    """The worker reaches the server through the namespace; the namespace's address vanishes;
    a job enqueued then still runs within seconds, through the URL's second host. Without the
    bounds the worker's idle LISTEN connection would never learn, and its next query would wait
    ~15 minutes (its sleep_delay is 120 s, so nothing but a dead connection noticed can have
    woken it)."""
    directory = socket_dir(pg_url)
    accepted = tmp_path / "forwarder.out"
    with accepted.open("w") as out:
        target = f"{directory}/.s.PGSQL.5432"
        argv = [sys.executable, "-m", "tests.postgres.forwarder", namespace.address, "5432", target]
        front = namespace.run(argv, cwd=ROOT, stdout=out, stderr=subprocess.DEVNULL)
    log = tmp_path / "runs.log"
    url = f"postgresql://postgres@/postgres?host={namespace.address},{directory}&{SHORT}"
    url += f"&{SHORT_IDLE}"
    url += "&connect_timeout=2"
    worker = None
    try:
        wait_until(lambda: accepted.read_text().startswith("ready"), 30, "the forwarder")
        worker = spawn_worker(url, pg_schema, "host-a", 0, sleep_delay=120)
        pg.enqueue_many(logged_jobs(["before"], log, 0))
        wait_until(lambda: len(runs(log)) == 1, 60, "the job enqueued before")
        # Its connections (work, heartbeat, and LISTEN once idle) all go through the front.
        through = lambda: accepted.read_text().count("accepted") >= 3  # noqa: E731
        wait_until(through, 30, "the idle worker's three connections through the front")
        namespace.vanish()
        vanished = time.monotonic()
        pg.enqueue_many(logged_jobs(["after"], log, 0))
        wait_until(lambda: len(runs(log)) == 2, 45, "the job enqueued after the host vanished")
        print(f"the job ran {time.monotonic() - vanished:.1f} s after the host vanished")
        assert worker.poll() is None
    finally:
        stop_all([worker] if worker else [])
        front.kill()
        front.wait(timeout=30)
    assert [token for token, _, _ in runs(log)] == ["before", "after"]
