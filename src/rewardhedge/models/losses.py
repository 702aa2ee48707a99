"""Preference losses, computed for all ensemble members at once."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

PROBIT_SCALE = math.pi / 8.0
"""σ(x) integrated against N(x; μ, s²) is ≈ σ(μ / sqrt(1 + π/8·s²)) (MacKay's probit approximation)."""


def noisy_preference_logit(
    diff: torch.Tensor, var_chosen: torch.Tensor, var_rejected: torch.Tensor
) -> torch.Tensor:
    """The logit of P(c ≻ r) when both rewards carry Gaussian noise (PEARL):
    ``Δμ / sqrt(1 + π/8·(σ_c² + σ_r²))``. Noisy pairs are pulled towards 0.5."""
    return diff * torch.rsqrt(1.0 + PROBIT_SCALE * (var_chosen + var_rejected))


def bradley_terry_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    center_coef: float = 0.0,
    var_chosen: torch.Tensor | None = None,
    var_rejected: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-member Bradley-Terry loss ``-log σ(r_c − r_r − margin)``.

    Args:
        r_chosen: `(K, B)` rewards of the chosen responses, one row per member.
        r_rejected: `(K, B)` rewards of the rejected responses.
        margin: `(B,)` required reward gap per pair, or ``None`` for 0.
        weights: `(K, B)` per-member example weights (bootstrap counts), or
            ``None`` for 1. Each member's loss is its weighted mean.
        center_coef: weight of the reward-centering term
            ``mean((r_c + r_r)²)``, which pins the reward's free offset at 0.
        var_chosen, var_rejected: `(K, B)` noise variances of a Gaussian head;
            the logit becomes :func:`noisy_preference_logit`.

    Returns:
        `(K,)` loss of each member. Sum it to train members independently.

    Example:
        >>> zero = torch.zeros(1, 2)
        >>> round(float(bradley_terry_loss(zero, zero)[0]), 4)  # log 2
        0.6931
    """
    diff = r_chosen - r_rejected  # (K, B)
    if margin is not None:
        diff = diff - margin[None, :]
    if var_chosen is not None and var_rejected is not None:
        diff = noisy_preference_logit(diff, var_chosen, var_rejected)
    per_pair = F.softplus(-diff)  # (K, B) = -log σ(diff)
    if weights is None:
        loss = per_pair.mean(dim=1)
    else:
        loss = (per_pair * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-12)
    if center_coef > 0.0:
        loss = loss + center_coef * ((r_chosen + r_rejected) ** 2).mean(dim=1)
    return loss


def regression_loss(
    rewards: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-member squared error ``mean((r − y)²)`` against absolute ratings.

    Args:
        rewards: `(K, B)` predicted rewards.
        targets: `(B,)` ratings; entries where ``mask`` is False are ignored.
        mask: `(B,)` bool, which items carry a rating (``None``: all).
        weights: `(K, B)` per-member example weights, or ``None`` for 1.

    Returns:
        `(K,)` loss of each member (0 when no item in the batch has a rating).

    Example:
        >>> r = torch.tensor([[1.0, 3.0]])
        >>> float(regression_loss(r, torch.tensor([0.0, 0.0]), torch.tensor([True, False]))[0])
        1.0
    """
    sq = (rewards - targets[None, :]) ** 2  # (K, B)
    w = torch.ones_like(sq) if weights is None else weights.to(sq.dtype)
    if mask is not None:
        w = w * mask[None, :].to(sq.dtype)
    return (sq * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
