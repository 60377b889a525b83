"""Entry script of the standalone binary (see ``packaging/litejobs.spec``).

``multiprocessing.freeze_support()`` must run before anything parses the command line: a frozen
program is its own interpreter, so a multiprocessing child (spawn / forkserver) re-executes this
binary with multiprocessing's private arguments, and only ``freeze_support`` recognises those and
runs the child instead of the CLI. Left to typer, they are a usage error and the parent hangs.

``PYINSTALLER_RESET_ENVIRONMENT=1`` is inherited by every child: without it, a child that runs this
binary again -- ``litejobs start``'s detached supervisor above all -- counts as a helper of this
process and reuses its unpack directory, which this process deletes when it exits; the supervisor
then fails the first time it loads an extension module (``No module named '_sqlite3'``). With it,
each such child is an independent instance with its own unpack directory.

``litejobs.bundle.scrub_process_environment()`` then takes the bootloader's ``LD_LIBRARY_PATH``
and ``_PYI_*`` / ``_MEIPASS*`` variables out of ``os.environ``, once: user jobs' own
subprocesses (``subprocess``, ``os.system``) would otherwise load the bundle's libraries.
"""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    os.environ["PYINSTALLER_RESET_ENVIRONMENT"] = "1"
    multiprocessing.freeze_support()
    from litejobs.bundle import scrub_process_environment

    scrub_process_environment()
    from litejobs.cli import main

    sys.exit(main())
