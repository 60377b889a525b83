"""A TCP front for a PostgreSQL server that listens on a unix socket only:
``python -m tests.postgres.forwarder HOST PORT SOCKET``.

The test server has no TCP listener (nothing to clash with other runs on the machine); tests
that need TCP (keepalives, a peer that vanishes) put this in front of it, in this process (a
thread) or in a network namespace of its own, where the link can be cut. Prints ``ready`` once
listening, then one ``accepted`` line per connection, so a test knows who came through it.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading


def serve(listener: socket.socket, target: str, on_accept: threading.Event | None = None) -> None:
    """Forward every connection ``listener`` accepts to the unix socket ``target``, until the
    listener is closed."""
    while True:
        try:
            client, _ = listener.accept()
        except OSError:  # closed: stop
            return
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(target)
        print("accepted", flush=True)
        if on_accept is not None:
            on_accept.set()
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(src, dst), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    for sock in (src, dst):  # one side ended: end the other, as a real peer would
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def listen(host: str, port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(64)
    return listener


def main(argv: list[str]) -> int:
    host, port, target = argv[0], int(argv[1]), argv[2]
    listener = listen(host, port)
    print("ready", flush=True)
    serve(listener, target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
