"""Every command follows the same conventions: described options with their defaults visible,
``-q/--quiet`` and ``-v/--verbose``, and help that fits 80 columns."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from medimeta.cli.app import app


def _commands() -> Iterator[tuple[str, Any]]:
    root = typer.main.get_command(app)

    def walk(cmd: Any, path: str) -> Iterator[tuple[str, Any]]:
        if hasattr(cmd, "commands"):  # a group (typer vendors click: duck-type it)
            if getattr(cmd, "invoke_without_command", False) and path:
                yield path, cmd  # a group that runs itself too (benchmark): its options count
            for name, sub in cmd.commands.items():
                yield from walk(sub, f"{path} {name}".strip())
        else:
            yield path, cmd

    yield from walk(root, "")


COMMANDS = dict(_commands())


def test_the_walk_finds_every_command() -> None:
    wanted = "list info verify download build train fewshot evaluate score montage report"
    wanted += " benchmark embed audit"
    more = ["episodes sample", "convert csv", "plot labels"]
    more += ["benchmark status", "benchmark collect"]
    for name in [*wanted.split(), *more]:
        assert name in COMMANDS, name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_options_are_described(name: str) -> None:
    for param in COMMANDS[name].params:
        if type(param).__name__.endswith("Option") and param.name != "help":
            text = (param.help or "").strip()
            assert text, f"{name} {param.opts[0]} has no description"
            assert not text.endswith(" ."), f"{name} {param.opts[0]}: {text!r}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_quiet_and_verbose_everywhere(name: str) -> None:
    flags = {opt for p in COMMANDS[name].params for opt in getattr(p, "opts", [])}
    assert {"-q", "--quiet", "-v", "--verbose"} <= flags, f"{name}: {sorted(flags)}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_shows_defaults_and_fits_80_columns(name: str) -> None:
    result = CliRunner().invoke(app, [*name.split(), "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, name
    # "Image size ." was what a "[default]" eaten as rich markup left behind
    assert not re.search(r" \.(\s|$)", result.output), name
