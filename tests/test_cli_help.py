"""The CLI's own help and its guide name every command and option there is.

Walked over the click commands, not kept as a list: a command or option
added later fails here until ``proctor --help`` and docs/cli.md mention it.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
from click.testing import CliRunner

from cli import cli

CLI_GUIDE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in sorted(group.commands.items()):
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found.extend(commands(command, (*path, name)))
    return found


def test_proctor_help_names_every_runs_subcommand() -> None:
    """``proctor --help`` and ``proctor runs --help`` describe what ``runs``
    holds: its readers and its writers (restart, prune) alike."""
    runs = cli.commands["runs"]
    assert isinstance(runs, click.Group)
    top = CliRunner().invoke(cli, ["--help"]).stdout
    group = CliRunner().invoke(cli, ["runs", "--help"]).stdout
    description = group.split("Options:", 1)[0]
    for name in runs.commands:
        assert re.search(rf"\b{name}\b", top.split("Options:", 1)[0]), name
        assert re.search(rf"\b{name}\b", description), name


def test_every_option_of_every_command_is_in_its_synopsis_in_the_cli_guide() -> None:
    """Each ``## proctor ...`` section of docs/cli.md opens with a synopsis
    that names every option of that command."""
    guide = CLI_GUIDE.read_text()
    for path, command in commands(cli):
        heading = f"## proctor {' '.join(path)}\n"
        if isinstance(command, click.Group) or heading not in guide:
            continue
        section = guide.split(heading, 1)[1]
        synopsis = section.split("```", 2)[1]
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                flags = [f for f in param.opts if f.startswith("--")]
                if flags == ["--help"]:
                    continue
                assert any(f in synopsis for f in flags), (path, flags)
