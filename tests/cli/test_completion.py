"""Shell completion through the real executable, as bash, zsh and fish ask for it: commands,
options, job states, the app's queue and job names; a broken app completes nothing, silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from litejobs.cli.app import COMMAND_MODULES

from .conftest import APP, ROOT, litejobs


def complete(shell: str, words: str, *, cwd: Path = ROOT, **env: str) -> list[str]:
    """What ``litejobs`` answers to ``shell``'s completion request for the command line
    ``words`` (the last word is the one being completed; a trailing space starts a new one)."""
    request = {"_LITEJOBS_COMPLETE": f"complete_{shell}", **env}
    if shell == "bash":
        parts = words.split(" ")
        request |= {"COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}
    else:
        request |= {"_TYPER_COMPLETE_ARGS": words}
    if shell == "fish":
        request["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    result = litejobs(cwd=cwd, **request)
    assert result.code == 0, result.err
    assert result.err == ""
    return [line for line in result.out.splitlines() if line]


def test_bash_completes_command_names() -> None:
    assert complete("bash", "litejobs wo") == ["work", "workoff", "worker"]
    assert set(complete("bash", "litejobs ")) >= set(COMMAND_MODULES)


def test_bash_completes_options_of_a_command() -> None:
    assert complete("bash", "litejobs list --st") == ["--state"]
    assert "--kwargs" in complete("bash", "litejobs enqueue --")


def test_bash_completes_job_states() -> None:
    assert complete("bash", "litejobs list --state ") == [
        "scheduled",
        "ready",
        "reserved",
        "running",
        "failed",
        "succeeded",
        "cancelled",
    ]
    assert complete("bash", "litejobs list --state f") == ["failed"]


def test_queue_names_come_from_the_app() -> None:
    assert complete("bash", f"litejobs --app {APP} list --queue ") == ["default", "email"]
    assert complete("bash", f"litejobs --app {APP} enqueue x:y --queue e") == ["email"]
    assert complete("bash", "litejobs retry --failed --queue ", LITEJOBS_APP=APP) == [
        "default",
        "email",
    ]


def test_queue_names_from_pyproject_app(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(
        "from litejobs import JobManager\njobs = JobManager(queues=['mail', 'bills'])\n"
    )
    (tmp_path / "pyproject.toml").write_text('[tool.litejobs]\napp = "shop:jobs"\n')
    assert complete("bash", "litejobs list --queue ", cwd=tmp_path) == ["bills", "mail"]


def test_job_names_come_from_the_apps_declared_jobs(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(
        "from litejobs import JobManager\n"
        "jobs = JobManager()\n"
        "@jobs.job\ndef send_invoice(order_id: int) -> None: ...\n"
        "@jobs.job(queue='mail')\ndef send_reminder(user_id: int) -> None: ...\n"
        "@jobs.job\ndef refund(order_id: int) -> None: ...\n"
    )
    (tmp_path / "pyproject.toml").write_text('[tool.litejobs]\napp = "shop:jobs"\n')
    assert complete("bash", "litejobs list --name ", cwd=tmp_path) == [
        "refund",
        "send_invoice",
        "send_reminder",
    ]
    assert complete("bash", "litejobs list --name send_r", cwd=tmp_path) == ["send_reminder"]
    assert complete("bash", "litejobs list --name ") == []  # no app: no names to offer
    assert not list(tmp_path.rglob("*.db"))  # completing opened (created) no database


def test_a_broken_app_completes_nothing_and_prints_nothing(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("print('noise')\nraise RuntimeError('at import')\n")
    assert complete("bash", "litejobs --app broken:jobs list --queue ", cwd=tmp_path) == []
    assert complete("bash", "litejobs --app nosuch:jobs list --queue ") == []
    assert complete("bash", "litejobs --app broken:jobs list --name ", cwd=tmp_path) == []


def test_without_an_app_the_default_queue_is_offered(tmp_path: Path) -> None:
    assert complete("bash", "litejobs list --queue ", cwd=tmp_path) == ["default"]
    assert list(tmp_path.iterdir()) == []  # completing opened (created) no database


def test_zsh_and_fish_formats() -> None:
    assert complete("zsh", "litejobs list --state r") == [
        '_arguments \'*: :(("ready"',
        '"reserved"',
        '"running"))\'',
    ]
    fish = dict(line.split("\t") for line in complete("fish", "litejobs sta"))
    assert sorted(fish) == ["start", "stats", "status"]
    assert fish["start"].startswith("Start detached workers")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_the_script_for_each_shell(shell: str) -> None:
    result = litejobs("--show-completion", shell, _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert result.code == 0, result.err
    assert "_LITEJOBS_COMPLETE" in result.out
    assert f"complete_{shell}" in result.out


def test_install_completion_writes_the_bash_script_and_sources_it(tmp_path: Path) -> None:
    result = litejobs(
        "--install-completion",
        "bash",
        HOME=str(tmp_path),
        _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1",
    )
    assert result.code == 0, result.err
    assert "bash completion installed" in result.out
    script = tmp_path / ".bash_completions" / "litejobs.sh"
    assert "_LITEJOBS_COMPLETE" in script.read_text()
    assert str(script.relative_to(tmp_path)) in (tmp_path / ".bashrc").read_text()
