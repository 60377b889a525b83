"""Built-in jobs that run programs: ``litejobs.builtins:run`` (an argv) and ``:shell`` (a string).

They exist for the standalone binary, whose users often have no Python module of their own to
enqueue -- just ``pg_dump`` or a backup script -- but they work the same from an installed
package::

    litejobs enqueue --shell 'pg_dump mydb > /backups/mydb.sql'
    litejobs enqueue litejobs.builtins:run --args '["/usr/bin/backup", "--full"]'

From Python: ``later(builtins.run, ["/usr/bin/backup", "--full"])`` or
``litejobs.enqueue(builtins.run, args=[...], db=...)``.

Design points, each for a reason:

* **Output goes to temporary files, not pipes.** A chatty program cannot fill a pipe and stall,
  memory stays flat however much it prints, and a grandchild that keeps the descriptor open
  (``cmd &``) cannot make the job wait for it. Only the tail is read back.
* **A non-zero exit raises** :class:`CommandFailed` whose message holds the exit status and the
  tails of stderr and stdout, so ``last_error`` tells the operator what went wrong without a
  log hunt.
* **The child runs in its own session and process group**, and when the job is interrupted --
  the worker's ``max_runtime`` timer, a stop-now signal, Ctrl-C -- the whole group is terminated
  (SIGTERM, then SIGKILL after :data:`KILL_GRACE`), so ``sh -c 'a | b'`` leaves nothing behind.
  A descendant that left the group (``setsid``, a daemon's double fork) is found by a marker in
  its environment (``LITEJOBS_COMMAND``, inherited unless the program clears its environment)
  and gets the same signals. The worker's watchdog waits for this sequence before abandoning
  a job. On Linux the direct child also gets SIGKILL if the worker process dies outright
  (``kill -9``); its descendants then do not.
* **The environment is cleaned** when litejobs runs frozen: PyInstaller's bootloader points
  ``LD_LIBRARY_PATH`` at its unpack directory and sets ``_PYI_*`` variables; passed on, those
  make system programs load the bundle's libraries (and a frozen litejobs started from a job
  mistake itself for a helper of this one). The binary already cleans its own environment at
  start-up (:mod:`litejobs.bundle`); this also drops ``PYINSTALLER_RESET_ENVIRONMENT``, which
  litejobs keeps for its own children.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from .bundle import without_bundle_variables
from .deadline import KILL_GRACE

__all__ = ["KILL_GRACE", "CommandFailed", "clean_env", "run", "shell"]

#: How much of each stream's end goes into the error (characters).
TAIL_CHARS = 2000
#: The environment variable that marks a command's processes, wherever they go.
MARKER = "LITEJOBS_COMMAND"
#: The shell that :func:`shell` runs commands with.
SHELL = "/bin/sh"


class CommandFailed(Exception):
    """A command exited non-zero or was killed by a signal.

    ``str()`` is the whole report (status, stderr tail, stdout tail); the attributes are there
    for hooks that want to act on them.
    """

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(self._report())

    def _report(self) -> str:
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            status = f"killed by {name}"
        else:
            status = f"exit status {self.returncode}"
        lines = [f"{_show(self.argv)}: {status}"]
        for label, text in (("stderr", self.stderr), ("stdout", self.stdout)):
            if text.strip():
                lines.append(f"--- {label} (last {TAIL_CHARS} characters) ---")
                lines.append(text.rstrip("\n"))
        return "\n".join(lines)


def clean_env(
    base: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
    *,
    frozen: bool | None = None,
) -> dict[str, str]:
    """The environment a command's process gets: ``base`` (default ``os.environ``) + ``extra``.

    When ``frozen`` (default: this process is a PyInstaller bundle), PyInstaller's own variables
    are removed and ``LD_LIBRARY_PATH`` is put back to what it was before the bootloader changed
    it (``LD_LIBRARY_PATH_ORIG``), or removed if it was unset. An installed litejobs passes the
    environment through untouched: there, ``LD_LIBRARY_PATH`` is the operator's own.
    """
    env = dict(os.environ if base is None else base)
    if frozen is None:
        frozen = bool(getattr(sys, "frozen", False))
    if frozen:
        env = without_bundle_variables(env)
        env.pop("PYINSTALLER_RESET_ENVIRONMENT", None)  # packaging/entry.py's, for litejobs' own
    env.update(extra or {})
    return env


def run(
    *argv: str | Sequence[str],
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run the program ``argv`` (no shell); return 0, or raise :class:`CommandFailed`.

    ``argv`` is the program and its arguments as separate strings, or one list of them.

    ``env`` adds to (or overrides) the cleaned environment; ``cwd`` is where it runs (default:
    the worker's directory, which for detached workers is ``/``).
    """
    args = _check_argv(argv)
    if cwd is not None and not isinstance(cwd, str):
        raise TypeError(f"cwd must be a string, got {type(cwd).__name__}")
    if env is not None and not (
        isinstance(env, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    ):
        raise TypeError('env must be an object of strings, e.g. {"PGPASSWORD": "..."}')
    with _capture() as out, _capture() as err:
        code = _wait(args, cwd=cwd, env=clean_env(extra=env), stdout=out, stderr=err)
        if code != 0:
            raise CommandFailed(args, code, _tail(out), _tail(err))
    return 0


def shell(
    command: str,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``command`` with ``/bin/sh -c`` (pipes, redirections, ``&&``...); see :func:`run`."""
    if not isinstance(command, str) or not command.strip():
        raise ValueError("the shell command must be a non-empty string")
    return run(SHELL, "-c", command, cwd=cwd, env=env)


def _check_argv(argv: tuple[str | Sequence[str], ...]) -> list[str]:
    first = argv[0] if len(argv) == 1 else None
    args: list[Any] = list(first) if isinstance(first, list | tuple) else list(argv)
    if not args or not all(isinstance(a, str) for a in args):
        raise TypeError(
            "run needs the program and its arguments as strings, e.g. "
            '--args \'["/usr/bin/backup", "--full"]\' '
            "(for a command line in one string use litejobs.builtins:shell)"
        )
    return args


def _wait(
    args: list[str], *, cwd: str | None, env: dict[str, str], stdout: IO[bytes], stderr: IO[bytes]
) -> int:
    """Start the child in a new session and wait; on any interruption kill all it started."""
    marker = f"{os.getpid()}.{secrets.token_hex(8)}"
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        env={**env, MARKER: marker},
        start_new_session=True,
        close_fds=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    try:
        return process.wait()
    except BaseException:
        _kill_all(process, marker)
        raise


def _kill_all(process: subprocess.Popen[bytes], marker: str) -> None:
    """SIGTERM the child's process group and every process carrying ``marker``; SIGKILL them
    (stragglers too, even if the leader exited) once the child outlives :data:`KILL_GRACE`."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)
        for pid in _marked(marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(KILL_GRACE)


def _marked(marker: str) -> Iterator[int]:
    """Processes whose environment holds ``MARKER=marker``: the command's descendants, also
    those that left its session. Linux ``/proc``; elsewhere (or unreadable) none."""
    wanted = f"{MARKER}={marker}".encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if wanted in environ.split(b"\0"):
            yield int(entry.name)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGKILL us if the worker process dies."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


@contextlib.contextmanager
def _capture() -> Any:
    with tempfile.TemporaryFile(prefix="litejobs-out-") as handle:
        yield handle


def _tail(handle: IO[bytes]) -> str:
    """The last :data:`TAIL_CHARS` characters written to ``handle`` (bytes decoded leniently)."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - TAIL_CHARS * 4))
    text = handle.read().decode("utf-8", errors="replace")
    return text[-TAIL_CHARS:]


def _show(argv: Sequence[str]) -> str:
    import shlex

    text = shlex.join(argv)
    return text if len(text) <= 200 else text[:197] + "..."
