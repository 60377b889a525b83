"""The ``litejobs`` command line: parse, call the library, print.

This module is the process boundary. It turns every way a command can go wrong into one line on
stderr and an exit code an operator (or cron) can act on, and never shows a traceback unless asked
with ``-v``:

====  ==========================================================================
0     success
1     a job raised during ``workoff`` (summary printed), or an unexpected bug
2     usage or input error: bad option, bad JSON, unknown job, queue or id ...
3     storage unavailable: missing directory, read-only, not a database, locked
130   interrupted (Ctrl-C)
====  ==========================================================================

Heavy imports (typer, rich, the engine) happen only when a command needs them: ``litejobs
--version`` is on the path of cron jobs and health checks and should cost no more than Python.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_JOB_ERRORED = 1
EXIT_USAGE = 2
EXIT_STORAGE = 3
EXIT_INTERRUPTED = 130

PROG = "litejobs"


def error_line(message: object) -> str:
    """``litejobs: error: <message>`` squeezed onto one line."""
    text = " ".join(str(message).split()) or "unknown error"
    return f"{PROG}: error: {text}"


def fail(message: object) -> None:
    sys.stderr.write(error_line(message) + "\n")
    sys.stderr.flush()


def _verbose(argv: Sequence[str]) -> bool:
    return any(a == "--verbose" or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``litejobs`` console script and ``python -m litejobs``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        from litejobs import __version__

        sys.stdout.write(f"{PROG} {__version__}\n")
        return EXIT_OK
    if set(args) & {"--version", "-V"} and _verbose(args):
        # Any other option (`--db X --version -v`): --version is eager and wins over them anyway.
        from litejobs.doctor import report  # the binary's users have no `pip show` to ask

        sys.stdout.write(report() + "\n")
        return EXIT_OK
    try:
        return _run(args)
    except KeyboardInterrupt:
        fail("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `litejobs list | head`: the reader left; say nothing more and do not crash on exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        code, message = classify(exc)
        if code == 1 and _verbose(args):
            import traceback

            traceback.print_exc()
        fail(message)
        return code


def classify(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message for an exception that reached the top."""
    from litejobs.errors import LiteJobsError, StorageError

    if isinstance(exc, StorageError):
        return EXIT_STORAGE, str(exc)
    if isinstance(exc, LiteJobsError):
        return EXIT_USAGE, str(exc)
    return 1, (
        f"unexpected {type(exc).__name__}: {exc} "
        "(this is a bug in litejobs or the app; run with -v for the traceback)"
    )


def _run(args: list[str]) -> int:
    import typer

    from .app import build_command

    command = build_command()
    try:
        result = command.main(args=args, prog_name=PROG, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        fail("aborted")
        return EXIT_INTERRUPTED
    except typer.TyperException as exc:
        from typer._click.exceptions import NoArgsIsHelpError  # no public alias

        if isinstance(exc, NoArgsIsHelpError):
            sys.stdout.write(exc.format_message() + "\n")
            return EXIT_OK
        fail(exc.format_message())
        return getattr(exc, "exit_code", EXIT_USAGE) or EXIT_USAGE
    return result if isinstance(result, int) else EXIT_OK
