"""docs/cli.md documents every command: its options, its exit codes and an example.

Each command has a section headed ``### `lem <path>` ``; the section names every option
(long form) and every argument, says ``Exit`` somewhere, and shows at least one example
line that starts with the command itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from lem.cli import main

DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()


def commands(group: click.Group = main, prefix: str = "lem") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from commands(command, path)
        else:
            yield path, command


ALL = dict(commands())


def section(path: str) -> str:
    match = re.search(rf"^### `{re.escape(path)}`.*?$(.*?)(?=^### |\Z)", DOC, flags=re.M | re.S)
    assert match is not None, f"docs/cli.md has no section '### `{path}`'"
    return match.group(1)


def test_there_are_commands_to_document() -> None:
    assert len(ALL) >= 15
    assert {"lem config validate", "lem config migrate", "lem campaign run", "lem campaign plan"} <= set(ALL)


@pytest.mark.parametrize("path", sorted(ALL))
def test_every_command_is_documented_with_options_exit_codes_and_an_example(path: str) -> None:
    text = section(path)
    command = ALL[path]
    assert command.help, f"{path} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            longest = max(param.opts, key=len)
            if longest in ("--help",):
                continue
            assert f"`{longest}" in text, f"{path}: option {longest} is not documented"
        elif isinstance(param, click.Argument):
            assert param.human_readable_name.upper() in text, f"{path}: argument {param.name} not named"
    assert "Exit" in text, f"{path}: exit codes are not documented"
    assert re.search(rf"^{re.escape(path)}\b", text, flags=re.M), f"{path}: no example line"
