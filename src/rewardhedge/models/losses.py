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
    soft_label: torch.Tensor | None = None,
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
        soft_label: `(B,)` probability ``s`` that chosen is preferred, or ``None``
            for 1; the per-pair loss becomes the cross-entropy
            ``−s·log σ(Δ) − (1 − s)·log σ(−Δ)``, least at ``Δ = logit(s)``.

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
    if soft_label is not None:
        per_pair = soft_label[None, :] * per_pair + (1.0 - soft_label[None, :]) * F.softplus(diff)
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
    return _weighted_mean((rewards - targets[None, :]) ** 2, mask, weights)


def _weighted_mean(
    per_item: torch.Tensor, mask: torch.Tensor | None, weights: torch.Tensor | None
) -> torch.Tensor:
    """`(K,)` mean of the `(K, B)` ``per_item`` losses weighted by ``weights`` (1 if
    ``None``) over the items ``mask`` keeps; 0 where no item is kept."""
    w = torch.ones_like(per_item) if weights is None else weights.to(per_item.dtype)
    if mask is not None:
        w = w * mask[None, :].to(per_item.dtype)
    return (per_item * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


def hl_gauss_targets(values: torch.Tensor, centers: torch.Tensor, sigma: float) -> torch.Tensor:
    """`(B,)` ratings -> `(B, bins)` HL-Gauss targets: the mass of N(y, σ²) in each bin
    (bins of equal width around ``centers``), renormalised to sum to 1 over the range;
    ratings outside the range are clamped to it first.

    Example:
        >>> t = hl_gauss_targets(torch.tensor([0.0]), torch.linspace(-1.0, 1.0, 3), 0.375)
        >>> [round(v, 3) for v in t[0].tolist()]
        [0.091, 0.818, 0.091]
    """
    width = float(centers[1] - centers[0])
    # A rating past the range (a validation item) counts as the end bin's, not as no mass.
    values = values.clamp(float(centers[0]), float(centers[-1]))
    edges = torch.cat([centers - width / 2, centers[-1:] + width / 2])  # (bins + 1,)
    cdf = torch.special.ndtr((edges[None, :] - values[:, None]) / sigma)  # (B, bins + 1)
    mass = cdf[:, 1:] - cdf[:, :-1]
    return mass / mass.sum(dim=1, keepdim=True).clamp_min(1e-12)


def hl_gauss_loss(
    logits: torch.Tensor,
    values: torch.Tensor,
    centers: torch.Tensor,
    sigma: float,
    mask: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-member HL-Gauss loss: cross-entropy of the `(K, B, bins)` ``logits`` against
    :func:`hl_gauss_targets` of the `(B,)` ratings (Farebrother et al. 2024, "Stop
    Regressing"); ``mask`` and ``weights`` as in :func:`regression_loss`.

    Returns:
        `(K,)` loss of each member (0 when no item in the batch has a rating).
    """
    target = hl_gauss_targets(torch.nan_to_num(values), centers, sigma)  # (B, bins)
    per_item = -(target[None] * torch.log_softmax(logits, dim=-1)).sum(dim=-1)  # (K, B)
    return _weighted_mean(per_item, mask, weights)


def decorrelation_penalty(rewards: torch.Tensor, covariate: torch.Tensor) -> torch.Tensor:
    """`(K,)` squared Pearson correlation, over the batch, between each member's `(K, B)`
    rewards and a `(B,)` covariate (ODIN's penalty that keeps a reward head apart from
    length); 0 where either does not vary.

    Example:
        >>> r = torch.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, 1.0]])
        >>> [round(v, 3) for v in decorrelation_penalty(r, torch.tensor([1.0, 2.0, 3.0])).tolist()]
        [1.0, 0.0]
    """
    r = rewards - rewards.mean(dim=1, keepdim=True)
    c = covariate - covariate.mean()
    cov = (r * c[None, :]).mean(dim=1)
    scale = r.pow(2).mean(dim=1).sqrt() * c.pow(2).mean().sqrt()
    return (cov / (scale + 1e-8)) ** 2
