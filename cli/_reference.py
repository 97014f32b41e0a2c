"""docs/cli-reference.md, generated from the click commands themselves.

A test checks the file matches, so the reference cannot drift from the CLI.
Regenerate with ``python -m cli._reference > docs/cli-reference.md``.
"""

from __future__ import annotations

import click

from cli._main import cli


def reference() -> str:
    """Every command's usage and help, as Markdown."""
    parts = [
        "# CLI reference",
        "",
        "Generated from the commands' own help (`python -m cli._reference`);",
        "[Operating runs](cli.md) explains them with examples.",
        "",
    ]
    for path, command in _commands(cli, ("proctor",)):
        ctx = click.Context(
            command,
            info_name=" ".join(path),
            help_option_names=["-h", "--help"],
            terminal_width=88,  # the same text on every machine
            max_content_width=88,
        )
        parts += [f"## {' '.join(path)}", "", "```text", command.get_help(ctx).rstrip(), "```", ""]
    return "\n".join(parts)


def _commands(
    group: click.Group, prefix: tuple[str, ...]
) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = [(prefix, group)]
    for name in sorted(group.commands):
        command = group.commands[name]
        path = (*prefix, name)
        if isinstance(command, click.Group):
            found += _commands(command, path)
        else:
            found.append((path, command))
    return found


if __name__ == "__main__":
    click.echo(reference())
