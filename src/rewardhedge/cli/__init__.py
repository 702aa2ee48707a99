"""The ``rewardhedge`` command line.

One module per group of commands, each a thin layer over the library (parse,
call, print): ``train`` (train, score), ``finetune``, ``evaluate`` (eval),
``optimize`` (sandbox, bon, report), ``lab`` (overopt, demo), ``serve``.
``flags`` makes flags from typed configs (help and defaults from the config's
attribute docstrings and defaults) and merges a config file with them;
``common`` holds the option groups every command shares. Errors raised on
purpose (``RewardHedgeError``) print one clear line and exit with code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from rewardhedge import __version__
from rewardhedge.cli import (
    audit,
    composite,
    evaluate,
    explain,
    finetune,
    gpm,
    lab,
    optimize,
    serve,
    train,
)
from rewardhedge.cli.common import out
from rewardhedge.errors import RewardHedgeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Reward models that know when not to be trusted.",
)


def _version(value: bool) -> None:
    if value:
        out.print(f"rewardhedge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Reward models that know when not to be trusted."""


for _module in (train, finetune, evaluate, optimize, lab, serve, audit, gpm, explain, composite):
    _module.register(app)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for the console script and ``python -m rewardhedge``.

    Usage errors are reported by typer (exit 2); errors this library raises on
    purpose print ``error: <message>`` on one line and exit 2; anything else is
    a bug and keeps its traceback.
    """
    try:
        app(args=list(argv) if argv is not None else None, prog_name="rewardhedge")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except RewardHedgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


__all__ = ["app", "main"]
