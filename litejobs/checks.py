"""``litejobs doctor``'s checks: is this project's set-up sound, one verdict per part.

A newcomer who sees "no jobs" or a worker that runs nothing needs to know which of three things
is off: the ``[tool.litejobs]`` configuration, the app it names, or the database. Each check
returns one :class:`Check` (``ok``, ``warn`` or ``fail`` and one line saying what it found and
what to do), never raises, and never changes anything: the database is opened read-only.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .adapters.base import Adapter
    from .appload import AppSource
    from .manager import JobManager

Verdict = Literal["ok", "warn", "fail"]

#: Past this, a WAL is worth a look (the adapter bounds it at 32 MiB while it runs).
WAL_WARN_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str


def check_pyproject(path: Path, app_given: bool) -> Check:
    """``[tool.litejobs]`` in ``path``: readable, an ``app``, known keys only."""
    if not path.is_file():
        if app_given:
            return Check("pyproject", "ok", f"no {path} (the app is given by --app or env)")
        return Check("pyproject", "warn", f"no {path}; `litejobs init` writes one with the app")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return Check("pyproject", "fail", f"cannot read {path}: {exc}")
    table = data.get("tool", {}).get("litejobs")
    if not isinstance(table, dict):
        verdict: Verdict = "ok" if app_given else "warn"
        return Check("pyproject", verdict, f'{path} has no [tool.litejobs] app = "module:attr"')
    unknown = sorted(set(table) - {"app", "recurring"})
    if unknown:
        return Check("pyproject", "warn", f"{path}: unknown [tool.litejobs] keys {unknown}")
    schedules = table.get("recurring", [])
    app = table.get("app")
    said = f'app = "{app}"' if app else "no app"
    return Check("pyproject", "ok", f"{path}: {said}, {len(schedules)} recurring schedule(s)")


def check_app(source: AppSource, load: Any) -> tuple[Check, JobManager | None]:
    """The app ``source`` names imports and is a manager (``load()`` builds it)."""
    try:
        manager: JobManager = load()
    except Exception as exc:
        return Check("app", "fail", str(exc)), None
    if source.spec is None:
        return (
            Check(
                "app",
                "warn",
                "none found (no --app, $LITEJOBS_APP or [tool.litejobs] app): "
                "the default manager, every queue, one worker",
            ),
            manager,
        )
    queues = ", ".join(manager.queues) if manager.queues is not None else "any"
    groups = ", ".join(f"{g.count} on {g.queues_label}" for g in manager.workers)
    detail = (
        f"{source.spec} ({source.origin}): queues {queues}; workers {groups}; "
        f"{len(manager.jobs)} job(s), {len(manager.schedules)} recurring"
    )
    return Check("app", "ok", detail), manager


def check_database(adapter: Adapter) -> Check:
    """The manager's storage: a SQLite file opened read-only, or a PostgreSQL connection."""
    path = getattr(adapter, "path", None)
    if isinstance(path, str):
        return check_sqlite(Path(path).absolute())
    try:
        counts = adapter.counts()
    except Exception as exc:
        return Check("database", "fail", f"{adapter!r}: {exc}")
    total = sum(sum(states.values()) for states in counts.values())
    return Check("database", "ok", f"{adapter!r}: reachable, {total} job(s)")


def check_sqlite(path: Path) -> Check:
    """Open ``path`` read-only: ``PRAGMA quick_check``, schema version, WAL size."""
    import apsw

    from .adapters.sqlite import SCHEMA_VERSION

    if not path.exists():
        if not path.parent.is_dir():
            return Check("database", "fail", f"{path}: directory {path.parent} does not exist")
        return Check("database", "ok", f"{path} does not exist yet (created on first use)")
    try:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            integrity = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
            stored = conn.execute("PRAGMA user_version").fetchall()[0][0]
            version = stored if isinstance(stored, int) else 0
        finally:
            conn.close()
    except apsw.Error as exc:
        return Check("database", "fail", f"{path}: cannot read it ({exc})")
    wal = _size(Path(f"{path}-wal"))
    facts = f"quick_check {integrity[0]}, schema version {version}, WAL {wal / 2**20:.1f} MiB"
    if integrity != ["ok"]:
        return Check("database", "fail", f"{path}: {'; '.join(integrity[:3])}; restore a backup")
    if version > SCHEMA_VERSION:
        return Check("database", "fail", f"{path}: {facts}, newer than this litejobs; upgrade")
    if version < SCHEMA_VERSION:
        return Check("database", "warn", f"{path}: {facts}; upgraded on the next write")
    if wal > WAL_WARN_BYTES:
        return Check("database", "warn", f"{path}: {facts}; a reader may be holding it back")
    return Check("database", "ok", f"{path}: {facts}")


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
