"""Help texts as a newcomer reads them, through the real executable: plain metavars (no
``<int>``/``<bool>``), usage lines without typer's ``{ID}``/``[[ID]]``, nothing eaten as markup,
and the facts an operator looks for (how ``work`` stops)."""

from __future__ import annotations

import re

import pytest

from litejobs.cli.app import COMMAND_MODULES

from .conftest import litejobs

#: What typer prints when a parameter has no metavar of its own, and its usage-line wrappers.
TYPER_NOISE = re.compile(r"<(bool|int|str|float|text|path|integer)>|\{[A-Z:_]+\}|\[\[[A-Z]+\]\]")


def help_of(*command: str) -> str:
    result = litejobs(*command, "--help", COLUMNS="100")
    assert result.code == 0, result.err
    assert result.err == ""
    return result.out


@pytest.mark.parametrize("command", [[], *([name] for name in COMMAND_MODULES), ["new", "job"]])
def test_help_has_no_typer_metavars_or_markup_leftovers(command: list[str]) -> None:
    text = help_of(*command)
    assert text.startswith(f"Usage: litejobs {' '.join(command)}".rstrip())
    assert not TYPER_NOISE.search(text), TYPER_NOISE.search(text)
    assert "``" not in text  # reST-style backticks from a docstring
    assert "\\[" not in text  # rich-markup escapes shown as written


def test_top_level_help_lists_every_command_and_plain_flags() -> None:
    text = help_of()
    commands = text.split("Commands:")[1]
    for name in COMMAND_MODULES:
        assert re.search(rf"^  {name}\s+\S", commands, re.M), name
    assert re.search(r"^  -v, --verbose\s+More log output", text, re.M)
    assert "--install-completion" in text and "--show-completion" in text


def test_usage_lines_show_arguments_plainly() -> None:
    assert "Usage: litejobs show [OPTIONS] ID\n" in help_of("show")
    assert "Usage: litejobs retry [OPTIONS] [ID]\n" in help_of("retry")
    assert "Usage: litejobs new job [OPTIONS] NAME\n" in help_of("new", "job")


def test_toml_table_names_survive_in_help() -> None:
    assert "[[tool.litejobs.recurring]]" in " ".join(help_of("recurring").split())


def test_flags_have_no_metavar() -> None:
    listing = help_of("list")
    assert re.search(r"^  --json\s+A JSON array of jobs", listing, re.M)
    assert re.search(r"^  --state STATE\s", listing, re.M)


def test_work_help_says_the_first_sigterm_is_graceful() -> None:
    text = " ".join(help_of("work").split())
    assert "The first Ctrl-C or SIGTERM is graceful" in text
    assert "A second one stops now" in text
