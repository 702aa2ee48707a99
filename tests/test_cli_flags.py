"""Flags made from typed configs: help text and defaults come from the config class
itself (its attribute docstrings and defaults), so the two cannot drift; a config file
and flags merge into one dataclass; a refused value names its flag."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

from rewardhedge.cli import app
from rewardhedge.cli.flags import (
    Flag,
    FlagSet,
    attribute_docs,
    field_info,
    flag_help,
    help_text,
    shown_default,
    with_flags,
)
from rewardhedge.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    rate: float = 0.5
    """How fast, per step."""


@dataclass(frozen=True)
class Outer:
    size: int = 3
    """How many ``things`` (see :class:`Inner`)."""
    inner: Inner = dataclasses.field(default_factory=Inner)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigError(f"outer.size == {self.size!r}, must be >= 1.")


def command_for(cls: type, default_size: int) -> typer.Typer:
    """A two-command app whose ``run`` takes ``cls``'s size and inner.rate as flags."""
    flags = FlagSet(cls, (Flag("size"), Flag("inner.rate")))
    cli = typer.Typer()

    @cli.command()
    @with_flags(flags=flags)
    def run(
        config: Annotated[Path | None, typer.Option()] = None, *, flags: dict[str, Any]
    ) -> None:
        cfg = FlagSet(cls, (Flag("size"), Flag("inner.rate"))).config(config, flags)
        print(json.dumps(dataclasses.asdict(cfg)))

    @cli.command()
    def other() -> None: ...

    return cli


@dataclass(frozen=True)
class Bigger(Outer):
    size: int = 7
    """How many things, more of them."""


def _help(cli: typer.Typer) -> str:
    text = CliRunner().invoke(cli, ["run", "--help"]).output
    return " ".join(text.replace("│", " ").split())


def test_help_shows_the_docstring_and_follows_a_changed_default() -> None:
    text = _help(command_for(Outer, 3))
    assert "How many things (see Inner). [default: (3)]" in text
    assert "How fast, per step. [default: (0.5)]" in text
    # Change the class (its default and docstring) and the help follows: one source.
    text = _help(command_for(Bigger, 7))
    assert "How many things, more of them. [default: (7)]" in text


def test_a_field_without_a_docstring_cannot_become_a_flag() -> None:
    bare = dataclasses.make_dataclass(
        "Bare", [("size", int, 1), ("inner", Inner, dataclasses.field(default_factory=Inner))]
    )
    with pytest.raises(KeyError, match="no attribute docstring"):
        FlagSet(bare, (Flag("size"),)).parameters()


def test_defaults_then_file_then_flags(tmp_path: Path) -> None:
    runner = CliRunner()
    cli = command_for(Outer, 3)
    (tmp_path / "c.json").write_text(json.dumps({"size": 5, "inner": {"rate": 0.1}}))
    result = runner.invoke(cli, ["run"])
    assert json.loads(result.output) == {"size": 3, "inner": {"rate": 0.5}}
    result = runner.invoke(cli, ["run", "--config", str(tmp_path / "c.json")])
    assert json.loads(result.output) == {"size": 5, "inner": {"rate": 0.1}}
    result = runner.invoke(cli, ["run", "--config", str(tmp_path / "c.json"), "--rate", "0.9"])
    assert json.loads(result.output) == {"size": 5, "inner": {"rate": 0.9}}
    result = runner.invoke(cli, ["run", "--size", "0"])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("--size: outer.size == 0")


def test_attribute_docs_reads_the_string_after_each_field() -> None:
    assert attribute_docs(Outer) == {"size": "How many ``things`` (see :class:`Inner`)."}
    assert help_text(attribute_docs(Outer)["size"]) == "How many things (see Inner)."
    assert shown_default(None) is False and shown_default(("a", "b")) == "a,b"


COMMANDS = {c.name or c.callback.__name__: c.callback for c in app.registered_commands}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_config_flag_shows_its_fields_doc_and_default(name: str) -> None:
    """Each command's config flags: help is the field's docstring, the shown default
    the dataclass default, read from the class now (not a copy)."""
    command = COMMANDS[name]
    shown = flag_help(command)
    module = __import__(command.__module__, fromlist=["*"])
    sets = [v for v in vars(module).values() if isinstance(v, FlagSet)]
    checked = 0
    for flags in sets:
        for flag in flags.flags:
            key = "--" + flag.param.replace("_", "-")
            if key not in shown:
                continue  # a set another command of the module uses
            info = field_info(flags.cls, flag.path)
            assert shown[key] == (help_text(info.doc), shown_default(info.default)), key
            checked += 1
    assert checked or name in {"score", "bon", "report", "explain", "compose"}, (
        f"{name} has no config flags"
    )


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_no_help_text_restates_a_default(name: str) -> None:
    """A default written into help text by hand drifts; typer shows the real one."""
    for flag, (text, _) in flag_help(COMMANDS[name], own_only=True).items():
        restated = r"\(default:? -?\d[\d.e-]*\)|\(-?\d[\d.e-]*\)\.?$|\w+ \(default\)"
        assert not re.search(restated, text), (flag, text)
