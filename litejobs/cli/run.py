"""Commands that run workers: work, workoff, worker, start, stop, restart.

They are thin wrappers around the runtime (:mod:`litejobs.supervisor` for attached workers,
:mod:`litejobs.daemon` for detached ones): pick the worker groups (``-n SPEC`` or the app's),
call, report.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app import Settings, settings

if TYPE_CHECKING:
    from litejobs.config import WorkerConfig
    from litejobs.daemon import Identity
    from litejobs.manager import JobManager
    from litejobs.worker import WorkerStats

log = logging.getLogger("litejobs.cli")

SpecOption = Annotated[
    str | None,
    typer.Option(
        "-n",
        "--workers",
        metavar="SPEC",
        help="How many workers on which queues: 4, email:2, default:2,email:4, :2,email:4 "
        "[default: the app's worker groups, else 1 on all queues].",
    ),
]


def groups_for(manager: JobManager, spec: str | None) -> list[WorkerConfig]:
    """Worker groups from ``-n SPEC`` (checked against the app's queues) or the app's own."""
    from litejobs.scheduling import check_queue
    from litejobs.workerspec import parse_worker_spec

    if spec is None:
        return list(manager.workers)
    groups = parse_worker_spec(spec, manager.workers)
    for group in groups:
        for queue in group.queues or ():
            check_queue(queue, manager.queues)
    idle = unserved_queues(manager.queues, groups)
    if idle:
        log.warning(
            "-n %s leaves queue%s %s without workers: %s jobs wait until a worker serves them",
            spec,
            "s" if len(idle) > 1 else "",
            ", ".join(idle),
            "their" if len(idle) > 1 else "its",
        )
    return groups


def running_manager(cfg: Settings) -> JobManager:
    """The app's manager for a command that runs its jobs: a bad recurring entry refuses, and
    the app's own log lines (in jobs, hooks, its loggers) print like litejobs' own."""
    from litejobs.logconfig import route_app_logs

    manager = cfg.manager(running=True)
    route_app_logs([manager.logger, *(c.logger for c in manager.workers if c.logger)])
    return manager


def unserved_queues(declared: Sequence[str] | None, groups: Sequence[WorkerConfig]) -> list[str]:
    """The declared queues no group works on (none when a group takes every queue)."""
    if declared is None or any(group.queues is None for group in groups):
        return []
    served = {queue for group in groups for queue in group.queues or ()}
    return [queue for queue in declared if queue not in served]


def announce_app(cfg: Settings) -> None:
    """Tell the workers' logs (and their import errors) which app they run; with none found,
    warn once, naming where it was looked for: the default manager would take the queue's
    jobs and fail those of an app it cannot import."""
    from litejobs.handler import set_app_label

    source = cfg.source()
    if source.spec is not None:
        set_app_label(f"{source.spec} ({source.origin})")
        return
    where = Path.cwd() / "pyproject.toml"
    set_app_label(f"none found (default manager; looked in --app, $LITEJOBS_APP, {where})")
    log.warning(
        "no app found (no --app, no $LITEJOBS_APP, no [tool.litejobs] app in %s): "
        "workers use the default manager (every queue, one worker)",
        where,
    )


def describe(groups: Sequence[WorkerConfig]) -> str:
    return ", ".join(f"{g.count} on {g.queues_label}" for g in groups)


def summary(stats: WorkerStats) -> str:
    line = (
        f"ran {stats.ran}: {stats.succeeded} succeeded, {stats.errored} errored (will retry), "
        f"{stats.failed} failed"
    )
    if stats.cancelled:
        line += f", {stats.cancelled} cancelled"
    if stats.snoozed:
        line += f", {stats.snoozed} snoozed"
    if stats.lost:
        line += f", {stats.lost} lost to another worker (lock taken over)"
    return line


class StopSignal:
    """Remembers the first signal that stopped a run (the runtime's ``stopping`` events)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.now = False  # a second signal: stop now

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind != "stopping":
            return
        if self.signum is None:
            self.signum = data.get("signal")
        self.now = self.now or bool(data.get("now"))

    def describe(self) -> str:
        name = signal.Signals(self.signum).name if self.signum else "a signal"
        how = " (Ctrl-C)" if self.signum == signal.SIGINT else ""
        cut = ", then stopped now: running jobs were cut short and will run again" * self.now
        return f"interrupted by {name}{how}{cut}; jobs not yet started were left for the next run"


def finish_workoff(stats: WorkerStats | None, stopped: StopSignal) -> None:
    """Print the summary; exit 128 + signal if a signal cut the run short (130 for Ctrl-C, 143
    for SIGTERM, as shells report it), else 1 if any job raised."""
    parts = [summary(stats)] if stats is not None else []
    if stopped.signum is not None:
        parts.append(stopped.describe())
    sys.stdout.write("; ".join(parts) + "\n")
    if stopped.signum is not None:
        raise typer.Exit(128 + stopped.signum)
    if stats is not None and stats.any_error:
        raise typer.Exit(1)


def work(ctx: typer.Context, spec: SpecOption = None) -> None:
    """Run workers attached to this terminal until stopped.

    The first Ctrl-C or SIGTERM is graceful: running jobs finish, nothing new starts. A second
    one stops now (the interrupted jobs run again later). A worker process that dies is replaced
    under the same name.

    A warning names any queue the app declares that -n leaves without workers.

    Examples:

      litejobs work

      litejobs --app myapp.jobs:jobs work -n default:2,email:1
    """
    cfg = settings(ctx)
    manager = running_manager(cfg)
    groups = groups_for(manager, spec)
    announce_app(cfg)
    log.info("starting %s", describe(groups))
    from litejobs.supervisor import run_workers

    stats = run_workers(manager, groups, workoff=False)
    log.info("stopped; %s", summary(stats))


def workoff(ctx: typer.Context, spec: SpecOption = None) -> None:
    """Run every job that is due now, then exit: for cron, CI and deploy scripts.

    Prints a summary; exits 1 if any job raised (retried later or failed for good), 130 when
    stopped by Ctrl-C and 143 by SIGTERM (running jobs finish first; a second signal stops now).

    Examples:

      litejobs workoff

      litejobs workoff -n 4
    """
    cfg = settings(ctx)
    manager = running_manager(cfg)
    groups = groups_for(manager, spec)
    announce_app(cfg)
    from .progress import WorkoffProgress

    show_bar = sys.stderr.isatty() and not cfg.quiet  # drawn on stderr, with the log lines
    if show_bar and not cfg.verbose:
        # The bar shows progress; per-job INFO lines would tear it. Warnings still show.
        logging.getLogger("litejobs").setLevel(logging.WARNING)
    queues: set[str] | None = set()
    for group in groups:
        if group.queues is None:
            queues = None
            break
        queues.update(group.queues)  # type: ignore[union-attr]
    from litejobs.supervisor import run_workers

    stopped = StopSignal()
    with WorkoffProgress(manager.adapter(groups[0].adapter), queues, enabled=show_bar):
        stats = run_workers(manager, groups, workoff=True, on_event=stopped)
    finish_workoff(stats, stopped)


def worker(
    ctx: typer.Context,
    index: Annotated[
        int, typer.Option("--index", metavar="I", help="Which of the app's worker groups.")
    ] = 0,
    worker_id: Annotated[
        int, typer.Option("--id", metavar="N", help="Worker number within the group.")
    ] = 0,
    workoff_: Annotated[bool, typer.Option("--workoff", help="Exit when nothing is due.")] = False,
    clear_: Annotated[
        bool, typer.Option("--clear", help="Delete every job in the group's storage, then exit.")
    ] = False,
) -> None:
    """Run one worker in this process (for systemd, supervisord...).

    The process title and lock owner are litejobs-worker.QUEUES.ID. SIGTERM or Ctrl-C lets the
    running job finish, then the worker exits.

    Example: litejobs --app myapp.jobs:jobs worker --index 1 --id 0
    """
    from litejobs.errors import ConfigurationError

    cfg = settings(ctx)
    manager = running_manager(cfg)
    announce_app(cfg)
    if not 0 <= index < len(manager.workers):
        raise ConfigurationError(
            f"--index {index} is out of range: the app has {len(manager.workers)} worker "
            f"group(s) (0..{len(manager.workers) - 1})"
        )
    if worker_id < 0:
        raise ConfigurationError(f"--id must be 0 or more, got {worker_id}")
    config = manager.workers[index]
    from litejobs.supervisor import run_single_worker

    stopped = StopSignal()
    stats: WorkerStats | None = None
    try:
        stats = run_single_worker(
            manager, config, worker_id, workoff=workoff_, clear=clear_, on_event=stopped
        )
    except KeyboardInterrupt:  # a second signal: stopped now, mid-job (its counts are lost)
        if not workoff_ or stopped.signum is None:
            raise
    if workoff_:
        finish_workoff(stats, stopped)


# -- detached workers -------------------------------------------------------------------------
StateDirOption = Annotated[
    Path | None,
    typer.Option("--state-dir", metavar="DIR", help="Where pid files live [default: per user]."),
]
AllOption = Annotated[
    bool,
    typer.Option("--all", help="Every detached supervisor of the state dir, whatever its app."),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", metavar="SECONDS", help="Seconds to wait before killing.")
]
LogFileOption = Annotated[
    Path | None, typer.Option("--log-file", metavar="FILE", help="Where workers log.")
]


def work_argv(cfg: Settings, spec: str | None) -> list[str]:
    """The argv a detached ``litejobs work`` needs to see what this invocation sees.

    The supervisor runs in this directory with the app's own adapters (all their options);
    ``--db`` is passed only when given (absolute already), and import paths are made absolute.
    """
    argv: list[str] = []
    if cfg.db:
        argv += ["--db", cfg.db]
    source = cfg.source()
    if source.spec:
        argv += ["--app", source.spec]
    for path in [*cfg.paths, os.getcwd()]:
        argv += ["--path", str(Path(path).resolve())]
    argv += ["--log-format", cfg.log_format]
    argv += ["-v"] * cfg.verbose + ["-q"] * cfg.quiet
    argv += ["work"] + (["-n", spec] if spec else [])
    return argv


def identity(cfg: Settings) -> Identity:
    """Whose detached workers this invocation means: its databases and app."""
    from litejobs.daemon import Identity
    from litejobs.location import place_of

    manager = cfg.manager()
    databases = sorted({place_of(a).label for a in manager.adapters.values()})
    return Identity(tuple(databases), cfg.source().spec)


def start(
    ctx: typer.Context,
    spec: SpecOption = None,
    log_file: LogFileOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Start detached workers (a supervisor in the background) and print its pid.

    Examples:

      litejobs start -n default:2,email:1 --log-file /var/log/litejobs.log

      litejobs stop
    """
    cfg = settings(ctx)
    groups_for(cfg.manager(running=True), spec)  # validate here, where the operator sees it
    from litejobs import daemon

    pid = daemon.start(
        work_argv(cfg, spec),
        state_dir=state_dir.resolve() if state_dir else None,
        log_file=log_file.resolve() if log_file else None,
        identity=identity(cfg),
    )
    sys.stdout.write(f"started workers (supervisor pid {pid})\n")


def stop(
    ctx: typer.Context,
    timeout: TimeoutOption = 30.0,
    state_dir: StateDirOption = None,
    all_: AllOption = False,
) -> None:
    """Stop detached workers of this database and app: let running jobs finish, then
    escalate after --timeout.

    Example: litejobs stop --timeout 60
    """
    from litejobs import daemon
    from litejobs.errors import ConfigurationError

    if not 0 <= timeout < float("inf"):  # NaN fails too
        raise ConfigurationError(f"--timeout must be 0 or more seconds, got {timeout}")
    cfg = settings(ctx)
    whose = None if all_ else identity(cfg)
    pids = daemon.stop(state_dir=state_dir, timeout=timeout, identity=whose)
    if pids:
        sys.stdout.write(f"stopped supervisor pid {', '.join(map(str, pids))}\n")
        # Workers killed past --timeout left their jobs locked: release them now.
        daemon.rescue_gone(cfg.manager().adapters.values())
    else:
        scope = "" if all_ else " for this database and app"
        sys.stdout.write(f"no detached workers running{scope}\n")
    if whose is not None:
        _hint_others(cfg, state_dir)


def _hint_others(cfg: Settings, state_dir: Path | None) -> None:
    """Say what else keeps running: other projects' supervisors in this state dir, and live
    workers of this database that no supervisor of this state dir runs (``litejobs work``,
    systemd, another host or ``--state-dir``): "nothing running" must not hide them."""
    from litejobs import daemon

    from .app import warn

    others = daemon.running(state_dir=state_dir)
    if others:
        warn(
            f"{len(others)} other detached supervisor(s) in this state dir run another database "
            f"or app (pid {', '.join(str(d.pid) for d in others)}); --all includes them",
            "note",
        )
    manager = cfg.manager()
    strays = [
        w
        for w in daemon.live_workers(manager.adapters.values())
        if daemon.supervisor_of(w.host, w.pid, others) is None
    ]
    if strays:
        names = ", ".join(f"{w.name} (pid {w.pid})" for w in strays[:3])
        more = f" and {len(strays) - 3} more" if len(strays) > 3 else ""
        warn(
            f"{len(strays)} live worker(s) of this database are not run from this state dir: "
            f"{names}{more}; started by `litejobs work`, systemd, another host or --state-dir",
            "note",
        )


def restart(
    ctx: typer.Context,
    spec: SpecOption = None,
    log_file: LogFileOption = None,
    timeout: TimeoutOption = 30.0,
    state_dir: StateDirOption = None,
) -> None:
    """Stop the detached workers of this database and app (if any), then start them again,
    e.g. after a deploy.

    Example: litejobs restart -n 4
    """
    settings(ctx).manager(running=True)  # a broken app or config: refuse before stopping
    stop(ctx, timeout=timeout, state_dir=state_dir)
    start(ctx, spec=spec, log_file=log_file, state_dir=state_dir)


def register(app: typer.Typer) -> None:
    app.command()(work)
    app.command()(workoff)
    app.command()(worker)
    app.command()(start)
    app.command()(stop)
    app.command()(restart)
