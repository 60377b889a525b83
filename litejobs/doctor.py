"""What this litejobs is made of: ``litejobs doctor`` and ``litejobs --version --verbose``.

An operator who copied a single binary onto a server has no ``pip show`` to ask, and a bug report
is only useful with the SQLite and Python versions that really ran. The one figure that decides
whether a binary runs on a box at all is glibc: the binary needs at least the highest ``GLIBC_x.y``
symbol version that any of its own ELF files asks for, so that is measured from the files
themselves rather than remembered from the build machine.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_GLIBC_SYMBOL = re.compile(rb"GLIBC_(2\.[0-9]+(?:\.[0-9]+)?)\x00")
#: glibc's own libraries *define* every version up to theirs; they are not requirements.
_GLIBC_OWN = re.compile(r"^(ld-linux.*|ld64|libc|libm|libdl|libpthread|librt|libutil|libresolv)\.")
_CHUNK = 1 << 20


def collect() -> dict[str, Any]:
    """Everything ``doctor`` reports, as plain data (the CLI prints it or dumps it as JSON)."""
    from litejobs import __version__

    frozen = bool(getattr(sys, "frozen", False))
    required, needed_by = glibc_required(elf_files(frozen))
    info: dict[str, Any] = {
        "litejobs": __version__,
        "frozen": frozen,
        "executable": sys.executable,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": _sqlite(),
        "postgres": _postgres(),
        "platform": f"{platform.system()} {platform.machine()}",
        "glibc_available": glibc_available(),
        "glibc_required": required,
        "glibc_required_by": needed_by,
    }
    if frozen:
        info["bundle_dir"] = getattr(sys, "_MEIPASS", None)
    return info


def report(info: dict[str, Any] | None = None) -> str:
    """``collect()`` as aligned ``key: value`` lines."""
    info = collect() if info is None else info
    glibc = info["glibc_required"] or "unknown"
    if info["glibc_required_by"]:
        glibc += f" (highest GLIBC symbol version, needed by {info['glibc_required_by']})"
    rows = [
        ("litejobs", info["litejobs"]),
        ("build", "standalone binary (PyInstaller)" if info["frozen"] else "installed package"),
        ("executable", info["executable"]),
        ("python", info["python"]),
        ("sqlite", info["sqlite"]),
        ("postgres", info["postgres"]),
        ("platform", info["platform"]),
        ("glibc available", info["glibc_available"] or "none (not glibc Linux)"),
        ("glibc required", glibc),
    ]
    if info.get("bundle_dir"):
        rows.append(("unpacked to", info["bundle_dir"]))
    width = max(len(key) for key, _ in rows) + 1
    return "\n".join(f"{key + ':':<{width}} {value}" for key, value in rows)


def glibc_available() -> str | None:
    """This machine's glibc version, e.g. ``"2.36"`` (``None`` on musl or non-Linux)."""
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):
        return None
    return value.split()[-1] if value and value.startswith("glibc") else None


def elf_files(frozen: bool) -> list[Path]:
    """The native files this litejobs is made of.

    Frozen: the executable and every shared object unpacked from it (including ones loaded only
    on demand, e.g. PostgreSQL's libpq). Installed: what this process has loaded, without glibc.
    """
    if frozen:
        found = [Path(sys.executable)]
        bundle = getattr(sys, "_MEIPASS", None)
        if bundle:
            found += [p for p in Path(bundle).rglob("*.so*") if p.is_file()]
        return found
    loaded: list[Path] = [Path(sys.executable).resolve()]
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return loaded
    for line in maps:
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].startswith("/") and ".so" in parts[5]:
            path = Path(parts[5])
            if not _GLIBC_OWN.match(path.name) and path not in loaded:
                loaded.append(path)
    return loaded


def glibc_required(files: Iterable[Path]) -> tuple[str | None, str | None]:
    """The highest ``GLIBC_x.y`` version any of ``files`` references, and the file that does."""
    best: tuple[int, ...] = ()
    best_file: str | None = None
    for path in files:
        for version in _versions(path):
            key = tuple(int(part) for part in version.split("."))
            if key > best:
                best, best_file = key, path.name
    return (".".join(map(str, best)) if best else None), best_file


def _versions(path: Path) -> set[str]:
    """``GLIBC_*`` version names in a file's string tables (read in chunks: binaries are big)."""
    found: set[str] = set()
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != b"\x7fELF":
                return found
            tail = b""
            while chunk := handle.read(_CHUNK):
                data = tail + chunk
                found.update(m.decode() for m in _GLIBC_SYMBOL.findall(data))
                tail = data[-32:]
    except OSError:
        pass
    return found


def _sqlite() -> str:
    try:
        import apsw
    except ImportError as exc:  # pragma: no cover - apsw is a hard dependency
        return f"unavailable ({exc})"
    return f"{apsw.sqlite_lib_version()} (apsw {apsw.apsw_version()})"


def _postgres() -> str:
    try:
        import psycopg
        from psycopg import pq
    except ImportError:
        return "not available (install litejobs[postgres])"
    except Exception as exc:  # libpq missing or broken: say so rather than crash the report
        return f"broken: {type(exc).__name__}: {exc}"
    libpq = pq.version()
    return f"psycopg {psycopg.__version__} ({pq.__impl__}, libpq {libpq // 10000}.{libpq % 100})"
