"""The typed request and response bodies of every route (they make the OpenAPI schema).

Texts are validated for type here; size limits are the server's settings, so
they are checked in the routes, where the message can name the limit.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


def _wrap_list(key: str, data: Any) -> Any:
    """Accept a bare JSON list as ``{key: list}``, so ``[{...}, ...]`` works as a body."""
    return {key: data} if isinstance(data, list) else data


class ScoreItemIn(BaseModel):
    """One (prompt, response) to score."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(description="The prompt or conversation so far, as text.")
    response: str = Field(description="The response to score.")


class ScoreRequest(BaseModel):
    """``{"items": [...]}``, or the list of items itself."""

    items: list[ScoreItemIn] = Field(description="Items to score; at least one.")

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        return _wrap_list("items", data)


class ScoreResult(BaseModel):
    """A reward with its uncertainty. Variances are in reward units squared."""

    reward: float = Field(description="The server's reward rule (aggregation, transform).")
    mean: float = Field(description="Mean of the members' rewards.")
    epistemic: float = Field(description="Variance between members: what more data would reduce.")
    aleatoric: float = Field(description="Noise variance the members predict (0 for BT heads).")
    std: float = Field(description="sqrt(epistemic).")
    members: list[float] = Field(description="Every member's reward.")


class ScoreResponse(BaseModel):
    results: list[ScoreResult]
    rule: str = Field(description="The reward rule that produced `reward`, in words.")
    n_members: int


class CompareItemIn(BaseModel):
    """Two responses to one prompt."""

    model_config = ConfigDict(extra="forbid")
    prompt: str
    a: str = Field(description="First response.")
    b: str = Field(description="Second response.")


class CompareRequest(BaseModel):
    """``{"pairs": [...]}``, or the list of pairs itself."""

    pairs: list[CompareItemIn] = Field(description="Pairs to compare; at least one.")

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        return _wrap_list("pairs", data)


class CompareResult(BaseModel):
    prob: float = Field(description="P(a ≻ b): mean of member probabilities, calibrated.")
    prob_std: float = Field(description="Spread (std) of the member probabilities.")
    raw_prob: float = Field(description="P(a ≻ b) before the temperature.")
    margin: float = Field(description="mean reward of a minus mean reward of b.")
    members: list[float] = Field(description="Each member's P(a ≻ b).")
    a: ScoreResult
    b: ScoreResult


class CompareResponse(BaseModel):
    results: list[CompareResult]
    temperature: float = Field(description="Temperature the member logits are divided by.")


class OpenRLHFRequest(BaseModel):
    """What OpenRLHF's remote reward client posts (``--remote_rm_url``)."""

    model_config = ConfigDict(extra="allow")
    query: list[str] = Field(description="Full decoded prompt + response per sample.")
    prompts: list[str] | None = Field(
        default=None, description="The prompt part of each query; used to split it off."
    )
    labels: list[Any] | None = Field(default=None, description="Ignored (kept for compatibility).")


class OpenRLHFResponse(BaseModel):
    """What OpenRLHF reads back: ``rewards`` (and ``scores``, ``extra_logs``)."""

    rewards: list[float]
    scores: list[float] = Field(description="Same as rewards (OpenRLHF's own server does this).")
    extra_logs: dict[str, list[float]] = Field(
        description="Per-sample uncertainty; OpenRLHF logs each key's batch mean."
    )


class Health(BaseModel):
    status: str
    queue_items: int = Field(description="Items accepted and not yet answered.")
    max_queue_items: int
    batches: int
    items_scored: int
    largest_batch: int
    requests_rejected: int
    rejoin_waits: int = Field(
        description="Times the scorer waited for just-answered clients to send again."
    )
    scoring_seconds: float = Field(
        description="Seconds spent inside the model; over uptime, the scorer's utilisation."
    )


class ErrorBody(BaseModel):
    detail: str
