"""Preference losses, computed for all ensemble members at once."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def bradley_terry_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    center_coef: float = 0.0,
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
    per_pair = F.softplus(-diff)  # (K, B) = -log σ(diff)
    if weights is None:
        loss = per_pair.mean(dim=1)
    else:
        loss = (per_pair * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-12)
    if center_coef > 0.0:
        loss = loss + center_coef * ((r_chosen + r_rejected) ** 2).mean(dim=1)
    return loss
