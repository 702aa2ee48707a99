"""Reliability-diagram data for preference probabilities.

Pairs have no natural orientation (which response is "a" is arbitrary), so
the diagram is symmetrised: every (p, y) is also counted as (1 − p, 1 − y).
That makes a model that is merely confident about the order of a pair but
always presents it chosen-first look as (mis)calibrated as it really is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["reliability_bins"]


def reliability_bins(
    prob: np.ndarray | Sequence[float],
    outcome: np.ndarray | Sequence[float],
    *,
    n_bins: int = 10,
    symmetrise: bool = True,
) -> dict[str, Any]:
    """Equal-width bins of predicted P(a ≻ b) against how often a won.

    Args:
        prob: `(n,)` predicted probabilities that the first response wins.
        outcome: `(n,)` 1 if the first response won, 0 if not.
        n_bins: number of equal-width bins on [0, 1].
        symmetrise: also count every pair the other way round.

    Returns:
        ``bin_mid``, ``mean_pred``, ``frac_pos``, ``count`` (lists over the
        non-empty bins) and ``ece``: the count-weighted mean absolute gap
        between ``mean_pred`` and ``frac_pos``.

    Example:
        >>> r = reliability_bins([0.9, 0.9, 0.1], [1, 0, 0], n_bins=2, symmetrise=False)
        >>> r["count"], [round(x, 2) for x in r["frac_pos"]]
        ([1, 2], [0.0, 0.5])
    """
    p = np.asarray(prob, dtype=np.float64).ravel()
    y = np.asarray(outcome, dtype=np.float64).ravel()
    if p.shape != y.shape or p.size == 0:
        raise ValueError(
            f"prob and outcome must be equal-length and non-empty, got {p.shape}, {y.shape}"
        )
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if symmetrise:
        p, y = np.concatenate([p, 1.0 - p]), np.concatenate([y, 1.0 - y])
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    sum_p = np.bincount(which, weights=p, minlength=n_bins)
    sum_y = np.bincount(which, weights=y, minlength=n_bins)
    keep = count > 0
    mean_pred = sum_p[keep] / count[keep]
    frac_pos = sum_y[keep] / count[keep]
    ece = float(np.sum(count[keep] * np.abs(mean_pred - frac_pos)) / count.sum())
    mids = (edges[:-1] + edges[1:]) / 2
    return {
        "bin_mid": mids[keep].tolist(),
        "mean_pred": mean_pred.tolist(),
        "frac_pos": frac_pos.tolist(),
        "count": count[keep].astype(int).tolist(),
        "ece": ece,
    }
