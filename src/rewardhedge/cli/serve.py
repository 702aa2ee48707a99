"""``rewardhedge serve``: the HTTP reward server on a saved model.

Loopback by default; binding another interface without a token prints a
warning, since anyone who can reach the port could then use the model.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rewardhedge.cli_options import (
    AggregateOpt,
    BetaOpt,
    LamOpt,
    ReferenceOpt,
    TransformOpt,
    rule_from_flags,
)
from rewardhedge.config import ServeConfig
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.loading import load_reward_model

err = Console(stderr=True)
_DEFAULT = ServeConfig()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    model: Annotated[Path, typer.Option(help="Model folder written by train.")],
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = (
        _DEFAULT.host
    ),
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = _DEFAULT.port,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="REWARDHEDGE_TOKEN",
            show_default=False,
            help="Require 'Authorization: Bearer <token>' (or X-Api-Key) on every route but /health.",
        ),
    ] = None,
    aggregate: AggregateOpt = None,
    lam: LamOpt = None,
    beta: BetaOpt = None,
    transform: TransformOpt = None,
    reference: ReferenceOpt = None,
    max_batch: Annotated[
        int, typer.Option(help="Most items per forward pass (requests are coalesced).")
    ] = _DEFAULT.max_batch_items,
    max_wait_ms: Annotated[
        float, typer.Option(help="How long an idle scorer waits for a batch to fill.")
    ] = _DEFAULT.max_wait_ms,
    rejoin_wait_ms: Annotated[
        float,
        typer.Option(help="How long to wait for just-answered clients to send again (0: off)."),
    ] = _DEFAULT.rejoin_wait_ms,
    rejoin_gap_ms: Annotated[
        float,
        typer.Option(help="End that wait once clients stop coming back for this long."),
    ] = _DEFAULT.rejoin_gap_ms,
    max_queue: Annotated[
        int, typer.Option(help="Items queued or in flight before 503 + Retry-After.")
    ] = _DEFAULT.max_queue_items,
    max_items: Annotated[
        int, typer.Option(help="Items per request before 413.")
    ] = _DEFAULT.max_items_per_request,
    max_chars: Annotated[
        int, typer.Option(help="Characters per text before 422.")
    ] = _DEFAULT.max_text_chars,
    max_body_bytes: Annotated[
        int, typer.Option(help="Request body bytes before 413.")
    ] = _DEFAULT.max_body_bytes,
    timeout: Annotated[
        float, typer.Option(help="Seconds a request may wait for its scores before 504.")
    ] = _DEFAULT.request_timeout_s,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
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
    config = ServeConfig(
        host=host,
        port=port,
        max_batch_items=max_batch,
        max_wait_ms=max_wait_ms,
        rejoin_wait_ms=rejoin_wait_ms,
        rejoin_gap_ms=rejoin_gap_ms,
        max_queue_items=max_queue,
        max_items_per_request=max_items,
        max_text_chars=max_chars,
        max_body_bytes=max_body_bytes,
        request_timeout_s=timeout,
    )
    with err.status(f"Loading {model} …"):
        rm = load_reward_model(model, use_cache=False)
        rm.score(["warm-up"], ["warm-up"])  # load the encoder before the first request
    rule = rule_from_flags(rm.rule, aggregate, lam, beta, transform, reference)
    if not token and not _is_loopback(host):
        err.print(
            f"[yellow]warning:[/] serving on {host} without a token: anyone who can reach "
            "the port can use the model. Set --token or REWARDHEDGE_TOKEN."
        )

    def announce(url: str) -> None:
        err.print(
            f"Serving [bold]{model}[/] on {url} · reward = {rule.label()} · "
            f"temperature {rm.temperature:.3g} · auth {'on' if token else 'off'}\n"
            f"OpenRLHF: --remote_rm_url {url}/get_reward · API docs: {url}/docs"
        )

    app = create_app(rm, rule=rule, config=config, token=token)
    run_server(app, config, log_level=log_level, announce=announce)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the main app."""
    app.command()(serve)
