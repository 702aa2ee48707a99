"""Best-of-n reranking: pick the candidate with the highest (aggregated) reward.

The ensemble's members are reduced with an :class:`Aggregation` before the
argmax, so a conservative aggregation picks candidates the members agree on.
When pools carry gold rewards, :func:`summarise_picks` reports what the
picks are really worth: their gold, the regret to the best candidate, and
the win rate against a uniformly random pick (computed exactly, not sampled).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardhedge.evaluate.pairwise import bootstrap_ci
from rewardhedge.types import CandidatePool, RewardEstimate, RewardModel
from rewardhedge.uncertainty import Aggregation


@dataclass(frozen=True)
class BonPick:
    """The candidate best-of-n chose from one pool, with its reward and spread."""

    pool_id: str | None
    index: int
    response: str
    score: float
    """The aggregated reward that was maximised."""
    mean: float
    std: float
    """Ensemble standard deviation (sqrt of epistemic variance)."""
    n_candidates: int
    gold: float | None = None
    best_gold: float | None = None
    random_gold: float | None = None
    """Expected gold of a uniformly random candidate of the pool."""
    win_vs_random: float | None = None
    """P(pick's gold > a random candidate's gold), ties counted half."""

    @property
    def regret(self) -> float | None:
        return None if self.gold is None or self.best_gold is None else self.best_gold - self.gold

    def to_dict(self) -> dict[str, Any]:
        row = {
            "id": self.pool_id,
            "index": self.index,
            "response": self.response,
            "score": self.score,
            "mean": self.mean,
            "std": self.std,
            "n_candidates": self.n_candidates,
        }
        if self.gold is not None:
            row |= {"gold": self.gold, "best_gold": self.best_gold, "regret": self.regret}
            row |= {"random_gold": self.random_gold, "win_vs_random": self.win_vs_random}
        return row


def score_pools(
    model: RewardModel, pools: Sequence[CandidatePool], *, progress: bool = False
) -> list[RewardEstimate]:
    """Score every candidate of every pool in one batched call; one estimate per pool."""
    prompts = [p.prompt for p in pools for _ in p.candidates]
    responses = [c for p in pools for c in p.candidates]
    # ``progress`` is not part of the RewardModel protocol; pass it only when asked for.
    est = (
        model.score(prompts, responses, progress=True)
        if progress
        else model.score(prompts, responses)
    )  # type: ignore[call-arg]
    bounds = np.cumsum([0] + [len(p.candidates) for p in pools])
    return [est.take(np.arange(lo, hi)) for lo, hi in itertools.pairwise(bounds)]


def pick(pool: CandidatePool, estimate: RewardEstimate, aggregation: Aggregation) -> BonPick:
    """The best-of-n pick of one pool; ties go to the first candidate."""
    scores = aggregation.apply(estimate)
    i = int(np.argmax(scores))
    fields: dict[str, Any] = {}
    if pool.gold is not None:
        gold = np.asarray(pool.gold, dtype=np.float64)
        fields = {
            "gold": float(gold[i]),
            "best_gold": float(gold.max()),
            "random_gold": float(gold.mean()),
            "win_vs_random": float(np.mean((gold[i] > gold) + 0.5 * (gold[i] == gold))),
        }
    return BonPick(
        pool_id=pool.id,
        index=i,
        response=pool.candidates[i],
        score=float(scores[i]),
        mean=float(estimate.mean[i]),
        std=float(np.sqrt(estimate.epistemic[i])),
        n_candidates=len(pool.candidates),
        **fields,
    )


def best_of_n(
    model: RewardModel,
    pools: Sequence[CandidatePool],
    aggregation: Aggregation | None = None,
    *,
    progress: bool = False,
) -> list[BonPick]:
    """Pick one candidate per pool by the aggregated reward (default: the mean)."""
    agg = aggregation or Aggregation("mean")
    return [
        pick(p, e, agg)
        for p, e in zip(pools, score_pools(model, pools, progress=progress), strict=True)
    ]


def summarise_picks(picks: Sequence[BonPick], *, seed: int = 0) -> dict[str, Any]:
    """Mean gold, regret and win rate of the picks (with 95% bootstrap CIs over pools).

    Pools without gold are counted but left out of the gold statistics.
    """
    with_gold = [p for p in picks if p.gold is not None]
    summary: dict[str, Any] = {"n_pools": len(picks), "n_pools_with_gold": len(with_gold)}
    if not with_gold:
        return summary
    for key, values in (
        ("gold", [p.gold for p in with_gold]),
        ("regret", [p.regret for p in with_gold]),
        ("win_vs_random", [p.win_vs_random for p in with_gold]),
        ("random_gold", [p.random_gold for p in with_gold]),
        ("best_gold", [p.best_gold for p in with_gold]),
    ):
        arr = np.asarray(values, dtype=np.float64)
        low, high = bootstrap_ci(arr, seed=seed)
        summary[key] = {"mean": float(arr.mean()), "ci_low": low, "ci_high": high}
    return summary
