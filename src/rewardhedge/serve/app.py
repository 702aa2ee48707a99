"""The reward server's FastAPI app: routes, auth, limits, and the batcher's lifecycle.

``create_app(model)`` works with any object that has ``score(prompts,
responses) -> RewardEstimate`` (the ``RewardModel`` protocol); the fitted
``EnsembleRewardModel`` also reports its config and calibration under
``/v1/model``. Nothing a request sends names a file: the model folder is read
once, by the operator, with safetensors + JSON only.

Every request passes the :class:`~rewardhedge.serve.guard.RequestGuard` first
(token, body size, body deadline, UTF-8), then pydantic (types), then the
route's own checks (counts, text lengths, lone surrogates), and only then joins
a micro-batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from rewardhedge import __version__
from rewardhedge.config import ServeConfig
from rewardhedge.errors import ConfigError, DataError
from rewardhedge.serve import apidocs, limits, openrlhf
from rewardhedge.serve.auth import checked_token
from rewardhedge.serve.batcher import BatcherClosedError, MicroBatcher, QueueFullError
from rewardhedge.serve.guard import RequestGuard
from rewardhedge.serve.schemas import (
    CompareRequest,
    CompareResponse,
    CompareResult,
    ErrorBody,
    Health,
    OpenRLHFRequest,
    OpenRLHFResponse,
    ScoreRequest,
    ScoreResponse,
    ScoreResult,
)
from rewardhedge.types import RewardEstimate, RewardModel, pairwise_from_estimates
from rewardhedge.uncertainty.reward_rule import RewardRule

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (401, "Missing or wrong token."),
        (408, "The body did not arrive within body_timeout_s."),
        (413, "Too many items, or body too large."),
        (
            422,
            "Malformed JSON or UTF-8, wrong types, an empty list, a text over the limit "
            "or with a lone surrogate, or texts the model cannot take.",
        ),
        (500, "Scoring this request's own items failed (other requests are not affected)."),
        (503, "Queue full or shutting down; retry after the Retry-After seconds."),
        (504, "Not scored within request_timeout_s."),
    )
}

_log = logging.getLogger("uvicorn.error")


def _brief(exc: BaseException) -> str:
    """The first line of an error's message, at most 200 characters."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return text if len(text) <= 200 else text[:199] + "…"


class RewardService:
    """What the routes share: the model, its reward rule, the batcher, the limits."""

    def __init__(self, model: RewardModel, rule: RewardRule, config: ServeConfig) -> None:
        if not getattr(model, "batch_independent", True):
            raise ConfigError(
                f"{type(model).__name__} cannot be served: its rewards depend on which other "
                "items share the batch (an 'and' combination with per-prompt references), and "
                "the server batches requests together; compose it with reference 'zero'."
            )
        self.model = model
        self.rule = rule
        self.config = config
        self.state = rule.new_state() if rule.needs_state else None
        self.batcher: MicroBatcher | None = None

    def start(self) -> None:
        self.batcher = MicroBatcher(
            self.model.score,
            max_batch_items=self.config.max_batch_items,
            max_wait_s=self.config.max_wait_ms / 1000.0,
            rejoin_wait_s=self.config.rejoin_wait_ms / 1000.0,
            rejoin_gap_s=self.config.rejoin_gap_ms / 1000.0,
            max_queue_items=self.config.max_queue_items,
        )
        self.batcher.start()

    async def estimate(self, prompts: list[str], responses: list[str]) -> RewardEstimate:
        """Scores through the batcher, mapping overload and timeouts to HTTP answers."""
        assert self.batcher is not None, "the app's lifespan has not started"
        retry = {"Retry-After": str(self.config.retry_after_s)}
        try:
            return await asyncio.wait_for(
                self.batcher.score(prompts, responses), self.config.request_timeout_s
            )
        except QueueFullError as exc:
            raise HTTPException(503, f"{exc}; retry later", headers=retry) from exc
        except BatcherClosedError as exc:
            raise HTTPException(503, str(exc), headers=retry) from exc
        except TimeoutError as exc:
            raise HTTPException(
                504,
                f"not scored within request_timeout_s={self.config.request_timeout_s:g}s",
            ) from exc
        except (UnicodeError, DataError) as exc:  # the model refused this request's texts
            raise HTTPException(422, f"the model cannot score these texts: {_brief(exc)}") from exc
        except Exception as exc:  # the batcher has made sure it is this request's own failure
            _log.error("scoring a request failed", exc_info=exc)
            raise HTTPException(
                500, f"scoring failed: {type(exc).__name__}: {_brief(exc)}"
            ) from exc

    def rewards(self, est: RewardEstimate, prompts: Sequence[str]) -> np.ndarray:
        return self.rule.apply(est, groups=list(prompts), state=self.state)

    def model_info(self) -> dict[str, Any]:
        m = self.model
        config = getattr(m, "config", None)
        temperature = getattr(m, "temperature", None)
        return {
            "version": __version__,
            "model_class": type(m).__name__,
            "rule": self.rule.to_dict(),
            "rule_label": self.rule.label(),
            "calibration": {"temperature": temperature},
            "config": config.to_dict() if hasattr(config, "to_dict") else None,
            "encoder_id": getattr(m, "encoder_id_", None),
            "training_data_hash": getattr(m, "data_hash_", None),
            "n_pairs": getattr(m, "n_pairs_", None),
            "limits": self.config.to_dict(),
        }


def _results(est: RewardEstimate, reward: np.ndarray) -> list[ScoreResult]:
    std = est.std
    members = est.members.T.tolist()
    return [
        ScoreResult(
            reward=float(reward[i]),
            mean=float(est.mean[i]),
            epistemic=float(est.epistemic[i]),
            aleatoric=float(est.aleatoric[i]),
            std=float(std[i]),
            members=members[i],
        )
        for i in range(len(est))
    ]


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        loc = error.get("loc", ())
        msg = error.get("msg", "invalid")
        if error.get("type") == "json_invalid":
            at = loc[1] if len(loc) > 1 else "?"
            err = (error.get("ctx") or {}).get("error", msg)
            parts.append(f"body: malformed JSON at character {at} ({err})")
            continue
        if len(loc) <= 1:
            parts.append(
                f"body: {msg} (send a JSON object or list with Content-Type: application/json)"
            )
            continue
        where = ""
        for part in loc[1:]:  # loc[0] is "body"
            where += f"[{part}]" if isinstance(part, int) else f".{part}"
        parts.append(f"{where.lstrip('.')}: {msg}")
    return "; ".join(parts)


def create_app(
    model: RewardModel,
    *,
    rule: RewardRule | None = None,
    config: ServeConfig | None = None,
    token: str | None = None,
) -> FastAPI:
    """The reward server for ``model``.

    Args:
        model: anything with ``score(prompts, responses) -> RewardEstimate``; one whose
            ``batch_independent`` is false (rewards that depend on the other items of
            the batch) is refused with a :class:`ConfigError`.
        rule: how ``reward`` is computed (default: the model's saved ``rule``, else the mean).
        config: batching, queue, limits, timeouts, and whether ``/docs`` is served.
        token: if set, every route but ``/health`` needs it as a bearer token (or
            ``X-Api-Key``), ``/openapi.json`` and ``/docs`` included. An empty one is
            refused: it would turn auth off.
    """
    config = config if config is not None else ServeConfig()
    token = checked_token(token)
    rule = rule if rule is not None else getattr(model, "rule", None) or RewardRule()
    service = RewardService(model, rule, config)
    app = FastAPI(
        title="rewardhedge reward server",
        version=__version__,
        description="Rewards with their uncertainty (mean, epistemic, aleatoric, members), "
        "micro-batched, with a bounded queue. Also speaks OpenRLHF's /get_reward.",
        lifespan=_lifespan(service),
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.service = service
    app.add_middleware(
        RequestGuard,
        token=token,
        max_body_bytes=config.max_body_bytes,
        body_timeout_s=config.body_timeout_s,
        max_header_bytes=config.max_header_bytes,
    )
    app.exception_handler(RequestValidationError)(_invalid)
    _register_routes(app, service)
    if config.api_docs:
        _add_docs_route(app)
    return app


def _add_docs_route(app: FastAPI) -> None:
    """``/docs``: the API as one HTML page made here from the OpenAPI schema, with no
    scripts and nothing loaded from elsewhere (its CSP says so)."""

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(
            apidocs.render(app.openapi()),
            headers={"Content-Security-Policy": apidocs.CSP, "X-Content-Type-Options": "nosniff"},
        )


def _lifespan(service: RewardService) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start the batcher with the app; on shutdown, let queued work finish (up to
    ``shutdown_grace_s``) and answer the rest 503."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            assert service.batcher is not None
            await service.batcher.stop(service.config.shutdown_grace_s)

    return lifespan


async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": _validation_message(exc)}, status_code=422)


def _register_routes(app: FastAPI, service: RewardService) -> None:
    """The routes, in this order; all but ``/health`` need the token when one is set
    (the request guard checks it before the body is read)."""
    guarded: dict[str, Any] = {"responses": ERRORS}
    _add_info_routes(app, service, guarded)
    _add_score_route(app, service, guarded)
    _add_compare_route(app, service, guarded)
    _add_openrlhf_route(app, service, guarded)


def _add_info_routes(app: FastAPI, service: RewardService, guarded: dict[str, Any]) -> None:
    """``/health`` (open) and ``/v1/model``."""

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        """Liveness and queue depth; needs no token (for load balancers and probes)."""
        b = service.batcher
        assert b is not None
        return Health(
            status="ok",
            queue_items=b.queued_items,
            max_queue_items=b.max_queue_items,
            batches=b.stats.batches,
            items_scored=b.stats.items_scored,
            largest_batch=b.stats.largest_batch,
            requests_rejected=b.stats.requests_rejected,
            rejoin_waits=b.stats.rejoin_waits,
            scoring_seconds=round(b.stats.scoring_seconds, 6),
        )

    @app.get("/v1/model", **guarded)
    async def model_info() -> dict[str, Any]:
        """The model's config, reward rule, calibration, server limits and version."""
        return service.model_info()


def _add_score_route(app: FastAPI, service: RewardService, guarded: dict[str, Any]) -> None:
    config = service.config

    @app.post("/v1/score", response_model=ScoreResponse, **guarded)
    async def score(body: ScoreRequest) -> ScoreResponse:
        """Reward + uncertainty for each (prompt, response)."""
        limits.check_count(len(body.items), "items", config)
        prompts = [it.prompt for it in body.items]
        responses = [it.response for it in body.items]
        limits.check_texts((("items[].prompt", prompts), ("items[].response", responses)), config)
        est = await service.estimate(prompts, responses)
        return ScoreResponse(
            results=_results(est, service.rewards(est, prompts)),
            rule=service.rule.label(),
            n_members=est.n_members,
        )


def _add_compare_route(app: FastAPI, service: RewardService, guarded: dict[str, Any]) -> None:
    config = service.config

    @app.post("/v1/compare", response_model=CompareResponse, **guarded)
    async def compare(body: CompareRequest) -> CompareResponse:
        """P(a ≻ b) per pair at the model's calibrated temperature, with member spread."""
        limits.check_count(len(body.pairs), "pairs", config)
        prompts = [p.prompt for p in body.pairs]
        a = [p.a for p in body.pairs]
        b = [p.b for p in body.pairs]
        limits.check_texts(
            (("pairs[].prompt", prompts), ("pairs[].a", a), ("pairs[].b", b)), config
        )
        est = await service.estimate(prompts + prompts, a + b)
        n = len(prompts)
        est_a, est_b = est.take(np.arange(n)), est.take(np.arange(n, 2 * n))
        temperature = float(getattr(service.model, "temperature", 1.0))
        pw = pairwise_from_estimates(est_a, est_b, temperature)
        raw = pw.raw_prob if pw.raw_prob is not None else pw.prob
        ra = _results(est_a, service.rewards(est_a, prompts))
        rb = _results(est_b, service.rewards(est_b, prompts))
        prob_std = pw.prob_std
        members = pw.members.T.tolist()
        return CompareResponse(
            results=[
                CompareResult(
                    prob=float(pw.prob[i]),
                    prob_std=float(prob_std[i]),
                    raw_prob=float(raw[i]),
                    margin=float(pw.margin[i]),
                    members=members[i],
                    a=ra[i],
                    b=rb[i],
                )
                for i in range(n)
            ],
            temperature=temperature,
        )


def _add_openrlhf_route(app: FastAPI, service: RewardService, guarded: dict[str, Any]) -> None:
    config = service.config

    @app.post("/get_reward", response_model=OpenRLHFResponse, **guarded)
    async def get_reward(body: OpenRLHFRequest) -> OpenRLHFResponse:
        """OpenRLHF's remote reward route: ``rewards`` (= ``scores``) plus the
        uncertainty per sample in ``extra_logs``."""
        limits.check_count(len(body.query), "query", config)
        if body.prompts is not None and len(body.prompts) != len(body.query):
            raise HTTPException(
                422,
                f"prompts has {len(body.prompts)} entries but query has {len(body.query)}; "
                "send one prompt per query (or none).",
            )
        limits.check_texts((("query[]", body.query), ("prompts[]", body.prompts or ())), config)
        prompts, responses, split = openrlhf.split_queries(body.query, body.prompts)
        est = await service.estimate(prompts, responses)
        rewards = service.rewards(est, prompts).tolist()
        return OpenRLHFResponse(
            rewards=rewards, scores=rewards, extra_logs=openrlhf.extra_logs(est, split)
        )
