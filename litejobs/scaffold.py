"""Setting up a project for litejobs: ``litejobs init`` and ``litejobs new job NAME``.

A newcomer's first ten minutes decide whether a library feels easy. These two commands write
the code the README would have them type: a jobs module with a manager, its queues, worker groups
and ``later``, the ``[tool.litejobs]`` line that lets a plain ``litejobs work`` find it, then one
job function at a time with a test that uses :mod:`litejobs.testing` and passes as written.

Nothing here overwrites a file: every target is checked before anything is written, and a
conflict raises a :class:`~litejobs.errors.ConfigurationError` that says what to do.
"""

from __future__ import annotations

import ast
import keyword
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigurationError

#: The database path the generated manager uses, relative to the project directory.
DB_PATH = "var/jobs.db"

MODULE_TEMPLATE = '''\
"""Background jobs of this project, run by litejobs.

Schedule from your code:  later(send_welcome_email, [user.id], wait=60)
Run them:                 litejobs work          (or `litejobs workoff` from cron)
Look at them:             litejobs list / litejobs status
Add one:                  litejobs new job NAME  (a job function here and a test for it)
"""

from litejobs import JobManager, SQLiteAdapter, WorkerConfig

{attr} = JobManager(
    adapters={{"sqlite": SQLiteAdapter("{db}")}},
    queues=["default"],
    workers=[WorkerConfig(queue="*", count=2)],
)

later = {attr}.create_scheduler()
'''

JOB_TEMPLATE = '''

@{attr}.job{options}
def {name}(record_id: int) -> None:
    """Say what {name} does.

    It runs in a worker process; if it raises, it is retried later (with a backoff).
    """
'''

TEST_TEMPLATE = '''\
"""Tests for the {name} job (written by `litejobs new job {name}`)."""

from pathlib import Path

from litejobs.testing import temp_jobs

from {module} import {attr}, {name}


def test_{name}_runs(tmp_path: Path) -> None:
    with temp_jobs({attr}, tmp_path) as tj:
        tj.later({name}, [1])
        tj.assert_enqueued({name}, args=[1])
        stats = tj.drain()
    assert stats.succeeded == 1
    assert stats.failed == 0
'''


@dataclass(frozen=True)
class Written:
    """One thing a scaffolding command did, as a line for the person who ran it."""

    what: str


def init_project(root: Path, module: str = "jobs", attr: str = "jobs") -> list[Written]:
    """Write ``module`` (a manager called ``attr``, queues, worker groups, ``later``), create
    the database directory and point ``[tool.litejobs] app`` in ``pyproject.toml`` at it."""
    _check_dotted(module, "module")
    _check_identifier(attr, "manager name")
    target = module_file(root, module)
    if target.with_suffix("").is_dir():
        raise ConfigurationError(
            f"{target.with_suffix('')} is a directory (a package would hide {target.name}); "
            f"choose another --module, e.g. --module {module}.tasks"
        )
    if target.exists():
        raise ConfigurationError(
            f"{target} already exists and litejobs init never overwrites; "
            "choose another --module, or add the manager to that file by hand"
        )
    spec = f"{module}:{attr}"
    pyproject = root / "pyproject.toml"
    new_pyproject = _with_app(pyproject, spec)  # checked before anything is written
    done = _write_package_dirs(root, module)
    target.write_text(MODULE_TEMPLATE.format(attr=attr, db=DB_PATH), encoding="utf-8")
    done.append(Written(f"created {_rel(target, root)}: a JobManager `{attr}` and `later`"))
    db_dir = root / Path(DB_PATH).parent
    if not db_dir.is_dir():
        db_dir.mkdir(parents=True)
        done.append(Written(f"created {_rel(db_dir, root)}/ for the database ({DB_PATH})"))
    if new_pyproject is not None:
        pyproject.write_text(new_pyproject, encoding="utf-8")
        done.append(Written(f'set [tool.litejobs] app = "{spec}" in pyproject.toml'))
    return done


def new_job(
    root: Path, module_path: Path, module: str, attr: str, name: str, queue: str | None = None
) -> list[Written]:
    """Append a job function ``name`` to the app module and write ``tests/test_<name>_job.py``."""
    _check_identifier(name, "job name")
    source = module_path.read_text(encoding="utf-8")
    if name in _top_level_names(source, module_path):
        raise ConfigurationError(f"{module_path} already defines {name!r}; pick another job name")
    tests = root / "tests"
    test_file = tests / f"test_{name}_job.py"
    if test_file.exists():
        raise ConfigurationError(
            f"{test_file} already exists and litejobs new never overwrites; remove it first"
        )
    options = "" if queue is None else f"(queue={queue!r})"
    body = JOB_TEMPLATE.format(attr=attr, name=name, options=options)
    module_path.write_text(source.rstrip("\n") + "\n" + body, encoding="utf-8")
    done = [Written(f"added job {name} to {_rel(module_path, root)}")]
    if not tests.is_dir():
        tests.mkdir()
        # A package, so pytest puts the project directory (not tests/) on sys.path.
        (tests / "__init__.py").write_text("", encoding="utf-8")
        done.append(Written("created tests/"))
    test_file.write_text(TEST_TEMPLATE.format(module=module, attr=attr, name=name), "utf-8")
    done.append(Written(f"created {_rel(test_file, root)}"))
    return done


def module_file(root: Path, module: str) -> Path:
    """Where ``module`` lives in a project rooted at ``root`` (``a.b`` -> ``a/b.py``)."""
    return root.joinpath(*module.split(".")).with_suffix(".py")


def _write_package_dirs(root: Path, module: str) -> list[Written]:
    """Create the packages ``module`` sits in (``myapp/__init__.py`` for ``myapp.jobs``)."""
    done: list[Written] = []
    directory = root
    for part in module.split(".")[:-1]:
        directory = directory / part
        if not directory.is_dir():
            directory.mkdir()
        marker = directory / "__init__.py"
        if not marker.exists():
            marker.write_text("", encoding="utf-8")
            done.append(Written(f"created {_rel(marker, root)}"))
    return done


_TABLE = re.compile(r"^\[tool\.litejobs\][ \t]*(#.*)?$", re.M)


def _with_app(pyproject: Path, spec: str) -> str | None:
    """The new text of ``pyproject.toml`` with ``app = spec`` (``None``: already set so).

    Refuses a different ``app`` already there, and any layout it cannot edit safely.
    """
    line = f'app = "{spec}"\n'
    if not pyproject.exists():
        return f"[tool.litejobs]\n{line}"
    text = pyproject.read_text(encoding="utf-8")
    try:
        current = tomllib.loads(text).get("tool", {}).get("litejobs")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"cannot read {pyproject}: {exc}; fix it first") from None
    if current is not None and "app" in current:
        if current["app"] == spec:
            return None
        raise ConfigurationError(
            f'{pyproject} already has [tool.litejobs] app = "{current["app"]}"; '
            "litejobs init never overwrites: remove that line to start afresh"
        )
    table = _TABLE.search(text)
    if table is not None:  # the table exists without app: the line goes right under its header
        new = text[: table.end()] + "\n" + line.rstrip("\n") + text[table.end() :]
    else:
        new = text.rstrip("\n") + ("\n\n" if text.strip() else "") + f"[tool.litejobs]\n{line}"
    try:
        added = tomllib.loads(new).get("tool", {}).get("litejobs", {}).get("app")
    except tomllib.TOMLDecodeError:
        added = None
    if added != spec:
        raise ConfigurationError(f'cannot add app = "{spec}" to {pyproject}; add it by hand')
    return new


def _top_level_names(source: str, path: Path) -> set[str]:
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ConfigurationError(f"{path} does not parse ({exc}); fix it first") from None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _check_identifier(value: str, what: str) -> None:
    if not value.isidentifier() or keyword.iskeyword(value):
        raise ConfigurationError(
            f"{what} {value!r} is not a Python identifier; use letters, digits and _, "
            "e.g. send_welcome_email"
        )


def _check_dotted(value: str, what: str) -> None:
    for part in value.split("."):
        _check_identifier(part, what)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
