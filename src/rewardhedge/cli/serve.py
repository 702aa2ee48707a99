"""``rewardhedge serve``: the HTTP reward server on a saved model.

Loopback by default; binding another interface without a token prints a
warning, since anyone who can reach the port could then use the model.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardhedge.cli.common import RuleOptions, err
from rewardhedge.cli.flags import Flag, FlagSet, with_flags
from rewardhedge.config import ServeConfig
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.loading import load_reward_model

SERVE_FLAGS = FlagSet(
    ServeConfig,
    (
        Flag("host"),
        Flag("port"),
        Flag("max_batch_items", "max_batch"),
        Flag("max_wait_ms"),
        Flag("rejoin_wait_ms"),
        Flag("rejoin_gap_ms"),
        Flag("max_queue_items", "max_queue"),
        Flag("max_items_per_request", "max_items"),
        Flag("max_text_chars", "max_chars"),
        Flag("max_body_bytes"),
        Flag("request_timeout_s", "timeout"),
    ),
)
"""The ``ServeConfig`` fields ``serve`` takes as flags."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@with_flags(flags=SERVE_FLAGS, rule=RuleOptions)
def serve(
    model: Annotated[Path, typer.Option(help="Model folder written by train or finetune.")],
    token: Annotated[
        str | None,
        typer.Option(
            envvar="REWARDHEDGE_TOKEN",
            show_default=False,
            help="Require 'Authorization: Bearer <token>' (or X-Api-Key) on every route but /health.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    *,
    flags: dict[str, Any],
    rule: RuleOptions,
) -> None:
    """Serve rewards with their uncertainty over HTTP: /v1/score, /v1/compare, /v1/model,
    /health, and OpenRLHF's /get_reward. Stops gracefully on Ctrl-C or SIGTERM."""
    try:
        from rewardhedge.serve import create_app
        from rewardhedge.serve.server import serve as run_server
    except ImportError as exc:  # the serve extra is missing
        raise ConfigError(
            f"rewardhedge serve needs FastAPI and uvicorn ({exc.name} is missing): "
            "pip install 'rewardhedge[serve]'."
        ) from exc
    config = SERVE_FLAGS.config(None, flags)
    with err.status(f"Loading {model} …"):
        rm = load_reward_model(model, use_cache=False)
        rm.score(["warm-up"], ["warm-up"])  # load the encoder before the first request
    reward_rule = rule.rule(rm.rule)
    if not token and not _is_loopback(config.host):
        err.print(
            f"[yellow]warning:[/] serving on {config.host} without a token: anyone who can reach "
            "the port can use the model. Set --token or REWARDHEDGE_TOKEN."
        )

    def announce(url: str) -> None:
        err.print(
            f"Serving [bold]{model}[/] on {url} · reward = {reward_rule.label()} · "
            f"temperature {rm.temperature:.3g} · auth {'on' if token else 'off'}\n"
            f"OpenRLHF: --remote_rm_url {url}/get_reward · API docs: {url}/docs"
        )

    app = create_app(rm, rule=reward_rule, config=config, token=token)
    run_server(app, config, log_level=log_level, announce=announce)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the main app."""
    app.command()(serve)
