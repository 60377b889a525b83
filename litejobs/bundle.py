"""The standalone binary's environment: what PyInstaller's bootloader adds, and taking it out.

The one-file bootloader points ``LD_LIBRARY_PATH`` at its unpack directory (the original value,
if any, kept in ``LD_LIBRARY_PATH_ORIG``) and sets ``_PYI_*`` / ``_MEIPASS*`` variables for its
own use. Once Python runs, this process needs none of them: its libraries are loaded by path,
and the dynamic loader read ``LD_LIBRARY_PATH`` when the process started. But every program it
starts inherits them, and a user's job calling ``subprocess.run(["psql", ...])`` or
``os.system(...)`` would load the bundle's ``libssl`` instead of the system's. So the binary's
entry point cleans ``os.environ`` once, at start-up (:func:`scrub_process_environment`), for
litejobs and every job it runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: Variables the bootloader sets for itself.
BUNDLE_PREFIXES = ("_PYI_", "_MEIPASS")


def without_bundle_variables(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` as it was before the bootloader changed it.

    ``_PYI_*`` / ``_MEIPASS*`` go; ``LD_LIBRARY_PATH`` gets back its original value from
    ``LD_LIBRARY_PATH_ORIG``, or goes if the bootloader set it from nothing (its variables are
    there, but no original). An environment without the bootloader's variables comes back as it
    is: cleaning twice keeps the operator's own ``LD_LIBRARY_PATH``.
    """
    cleaned = {key: value for key, value in env.items() if not key.startswith(BUNDLE_PREFIXES)}
    original = cleaned.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        cleaned["LD_LIBRARY_PATH"] = original
    elif len(cleaned) < len(env):  # the bootloader was here, and there was no original
        cleaned.pop("LD_LIBRARY_PATH", None)
    return cleaned


def scrub_process_environment() -> None:
    """Clean ``os.environ`` in place (the frozen binary's start-up; see the module docstring)."""
    cleaned = without_bundle_variables(os.environ)
    for key in [key for key in os.environ if key not in cleaned]:
        del os.environ[key]
    os.environ.update(cleaned)
