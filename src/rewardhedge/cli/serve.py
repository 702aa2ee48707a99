"""``rewardhedge serve``: the HTTP reward server on a saved model.

Loopback by default; binding another interface without a token prints a
warning, since anyone who can reach the port could then use the model.

Everything that can be wrong with the command line (a flag's value, the
token, the log level, the host, a port already taken) is found before the
model is loaded, and reported on one line.
"""

from __future__ import annotations

import ipaddress
import os
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
        Flag("header_timeout_s", "header_timeout"),
        Flag("body_timeout_s", "body_timeout"),
        Flag("keep_alive_s", "keep_alive"),
        Flag("max_connections"),
        Flag("max_header_bytes"),
        Flag("api_docs"),
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


def _read_token_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"--token-file {path}: cannot read it ({reason}).") from exc
    token = text.strip()
    if not token:
        raise ConfigError(f"--token-file {path} is empty; write the token in it, on one line.")
    if "\n" in token:
        raise ConfigError(
            f"--token-file {path} has more than one line; write only the token in it."
        )
    return token


def _token(token: str | None, token_file: Path | None) -> str | None:
    """The token from ``--token-file``, ``--token`` or the environment, or ``None``
    (no auth); an empty one is refused, since it would silently turn auth off."""
    from rewardhedge.serve.auth import TOKEN_ENV, checked_token

    env = os.environ.get(TOKEN_ENV)
    if token_file is not None:
        if token is not None:
            raise ConfigError(
                f"give the token once: --token-file, or --token / {TOKEN_ENV}, not both."
            )
        return _read_token_file(token_file)
    if token is None:
        if env is not None:  # set but empty: click reads that as unset
            raise ConfigError(
                f"{TOKEN_ENV} is set but empty, which would turn auth off; set a token, "
                "or unset it to serve without auth."
            )
        return None
    return checked_token(token, TOKEN_ENV if token == env else "--token")


@with_flags(flags=SERVE_FLAGS, rule=RuleOptions)
def serve(
    model: Annotated[Path, typer.Option(help="Model folder written by train or finetune.")],
    token: Annotated[
        str | None,
        typer.Option(
            envvar="REWARDHEDGE_TOKEN",
            show_default=False,
            help="Require 'Authorization: Bearer <token>' (or X-Api-Key) on every route but "
            "/health. A token on the command line is visible in ps: prefer --token-file or "
            "the environment variable.",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            show_default=False,
            help="Read the token from this file (its one line; the newline is stripped).",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug, trace.")
    ] = "info",
    *,
    flags: dict[str, Any],
    rule: RuleOptions,
) -> None:
    """Serve rewards with their uncertainty over HTTP: /v1/score, /v1/compare, /v1/model,
    /health, and OpenRLHF's /get_reward. Stops gracefully on Ctrl-C or SIGTERM."""
    try:
        from rewardhedge.serve import create_app
        from rewardhedge.serve.server import bind_socket, check_log_level
        from rewardhedge.serve.server import serve as run_server
    except ImportError as exc:  # the serve extra is missing
        raise ConfigError(
            f"rewardhedge serve needs FastAPI and uvicorn ({exc.name} is missing): "
            "pip install 'rewardhedge[serve]'."
        ) from exc
    config = SERVE_FLAGS.config(None, flags)
    token = _token(token, token_file)
    log_level = check_log_level(log_level)
    sock = bind_socket(config.host, config.port)  # a bad host or a taken port, before loading
    try:
        with err.status(f"Loading {model} …"):
            rm = load_reward_model(model, use_cache=False)
            check_servable(rm, model)
            rm.score(["warm-up"], ["warm-up"])  # load the encoder before the first request
        reward_rule = rule.rule(rm.rule)
        if not token and not _is_loopback(config.host):
            err.print(
                f"[yellow]warning:[/] serving on {config.host} without a token: anyone who can "
                "reach the port can use the model. Set --token-file or REWARDHEDGE_TOKEN."
            )

        def announce(url: str) -> None:
            docs = (
                f"API docs: {url}/docs"
                if config.api_docs
                else f"OpenAPI schema: {url}/openapi.json (--api-docs serves /docs)"
            )
            err.print(
                f"Serving [bold]{model}[/] on {url} · reward = {reward_rule.label()} · "
                f"temperature {rm.temperature:.3g} · auth {'on' if token else 'off'}\n"
                f"OpenRLHF: --remote_rm_url {url}/get_reward · {docs}"
            )

        app = create_app(rm, rule=reward_rule, config=config, token=token)
        run_server(app, config, log_level=log_level, announce=announce, sock=sock)
    finally:
        sock.close()


def check_servable(rm: object, folder: Path) -> None:
    """Refuse a model whose rewards depend on the batch (a composite whose AND takes
    per-prompt references): the server scores requests batched together, so a median
    over a prompt's candidates would depend on which other requests shared the batch.
    ``create_app`` refuses it too; this says it in terms of the command line."""
    if getattr(rm, "batch_independent", True):
        return
    combination = getattr(rm, "combination", None)
    what = (
        f"its 'and' combination takes each prompt's {combination.reference} as reference"
        if combination is not None and not combination.batch_independent
        else "a component's 'and' combination takes per-prompt references"
    )
    raise ConfigError(
        f"--model {folder}: {what}, which a server batching requests "
        "cannot give; compose it with --combine-reference zero to serve it."
    )


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the main app."""
    app.command()(serve)
