"""Reliability-diagram data for preference probabilities.

Pairs have no natural orientation (which response is "a" is arbitrary), so
the diagram is symmetrised: every (p, y) is also counted as (1 − p, 1 − y).
That makes a model that is merely confident about the order of a pair but
always presents it chosen-first look as (mis)calibrated as it really is.

Two binnings: equal-width bins (the classic reliability diagram) and
equal-mass bins (quantiles of the predictions). Why both: most preference
probabilities pile up near 0.5 or near 0/1, so equal-width bins leave many
bins nearly empty and the ECE is dominated by a few crowded ones;
equal-mass bins give every bin the same support, which makes the ECE less
noisy and less dependent on where the predictions happen to fall.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardhedge.errors import unknown_option

__all__ = ["calibration_metrics", "reliability_bins"]

_STRATEGIES = ("uniform", "quantile")


def reliability_bins(
    prob: np.ndarray | Sequence[float],
    outcome: np.ndarray | Sequence[float],
    *,
    n_bins: int = 10,
    symmetrise: bool = True,
    strategy: str = "uniform",
) -> dict[str, Any]:
    """Bins of predicted P(a ≻ b) against how often a won.

    Args:
        prob: `(n,)` predicted probabilities that the first response wins.
        outcome: `(n,)` 1 if the first response won, 0 if not.
        n_bins: number of bins.
        symmetrise: also count every pair the other way round.
        strategy: ``"uniform"`` for equal-width bins on [0, 1];
            ``"quantile"`` for equal-mass bins whose edges are quantiles of
            the (symmetrised, if ``symmetrise``) predictions. Equal
            predictions always share a bin, so with many ties a quantile
            bin can hold more than its share and fewer bins stay non-empty.

    Returns:
        ``bin_mid``, ``mean_pred``, ``frac_pos``, ``count`` (lists over the
        non-empty bins) and ``ece``: the count-weighted mean absolute gap
        between ``mean_pred`` and ``frac_pos``. For quantile bins,
        ``bin_mid`` is the middle of the bin's edges, the outer edges being
        the smallest and largest prediction.

    Raises:
        ValueError: on empty or unequal-length input or ``n_bins < 1``.
        rewardhedge.errors.ConfigError: if ``strategy`` is not known.

    Example:
        >>> r = reliability_bins([0.9, 0.9, 0.1], [1, 0, 0], n_bins=2, symmetrise=False)
        >>> r["count"], [round(x, 2) for x in r["frac_pos"]]
        ([1, 2], [0.0, 0.5])
        >>> reliability_bins([0.1, 0.2, 0.3, 0.9], [0, 0, 1, 1], n_bins=2, strategy="quantile")["count"]
        [4, 4]
    """
    p = np.asarray(prob, dtype=np.float64).ravel()
    y = np.asarray(outcome, dtype=np.float64).ravel()
    if p.shape != y.shape or p.size == 0:
        raise ValueError(
            f"prob and outcome must be equal-length and non-empty, got {p.shape}, {y.shape}"
        )
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if strategy not in _STRATEGIES:
        raise unknown_option("strategy", strategy, _STRATEGIES)
    if symmetrise:
        p, y = np.concatenate([p, 1.0 - p]), np.concatenate([y, 1.0 - y])
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        edges = np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1))
    # A value equal to an inner edge goes to the upper bin, so ties share a bin.
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


def calibration_metrics(
    prob: np.ndarray | Sequence[float],
    outcome: np.ndarray | Sequence[float],
    *,
    n_bins: int = 10,
    eps: float = 1e-12,
) -> dict[str, Any]:
    """ECE (equal-width and equal-mass), Brier, NLL and reliability data.

    Everything is symmetrised (each pair also counted as ``(1 − p, 1 − y)``).
    For the ECEs this matters: it is what :func:`reliability_bins` does by
    default. Brier and NLL are the means over the symmetrised pairs, but
    both losses are unchanged by flipping a pair, so these equal the plain
    means over the given pairs; with all outcomes 1 they equal
    :func:`rewardhedge.evaluate.pairwise.brier` and ``log_loss``.

    Args:
        prob: `(n,)` predicted P(a ≻ b), in [0, 1].
        outcome: `(n,)` 1 if ``a`` won, 0 if not; values in between (e.g.
            0.5 for a tie) are taken as soft labels.
        n_bins: bins of each reliability diagram.
        eps: probabilities are clipped to ``[eps, 1 − eps]`` in the NLL.

    Returns:
        ``n`` (pairs given), ``ece_equal_width``, ``ece_equal_mass``,
        ``brier``, ``nll`` (nats), and ``reliability_equal_width`` /
        ``reliability_equal_mass`` (the :func:`reliability_bins` dicts).

    Raises:
        ValueError: on empty or unequal-length input, or values outside
            [0, 1] (NaN included).

    Example:
        >>> m = calibration_metrics([0.8, 0.8, 0.8, 0.8, 0.8], [1, 1, 1, 1, 0], n_bins=5)
        >>> round(m["ece_equal_width"], 6), round(m["ece_equal_mass"], 6), round(m["brier"], 2)
        (0.0, 0.0, 0.16)
    """
    p = np.asarray(prob, dtype=np.float64).ravel()
    y = np.asarray(outcome, dtype=np.float64).ravel()
    if p.shape != y.shape or p.size == 0:
        raise ValueError(
            f"prob and outcome must be equal-length and non-empty, got {p.shape}, {y.shape}"
        )
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps == {eps!r}, must be in (0, 0.5).")
    for name, arr in (("prob", p), ("outcome", y)):
        bad = ~((arr >= 0.0) & (arr <= 1.0))  # also catches NaN
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{name} must lie in [0, 1]; {int(bad.sum())} value(s) do not, "
                f"first at index {i}: {arr[i]!r}."
            )
    uniform = reliability_bins(p, y, n_bins=n_bins, strategy="uniform")
    quantile = reliability_bins(p, y, n_bins=n_bins, strategy="quantile")
    ps, ys = np.concatenate([p, 1.0 - p]), np.concatenate([y, 1.0 - y])
    pc = np.clip(ps, eps, 1.0 - eps)
    nll = -(ys * np.log(pc) + (1.0 - ys) * np.log1p(-pc))
    return {
        "n": int(p.size),
        "ece_equal_width": uniform["ece"],
        "ece_equal_mass": quantile["ece"],
        "brier": float(np.mean((ps - ys) ** 2)),
        "nll": float(nll.mean()),
        "reliability_equal_width": uniform,
        "reliability_equal_mass": quantile,
    }


def ece_noise_floor(
    prob: np.ndarray | Sequence[float], *, reps: int = 200, n_bins: int = 10, seed: int = 0
) -> dict[str, float]:
    """The ECE a *perfectly calibrated* model with these probabilities would show here.

    Why: on a few hundred pairs an ECE of a few hundredths is sampling noise.
    Outcomes are drawn from the model's own probabilities (so it is calibrated
    by construction) ``reps`` times; an observed ECE near the mean of these
    cannot be told from perfect calibration on this many pairs.

    Returns:
        ``ece_equal_width`` and ``ece_equal_mass`` (means over the draws) and
        ``p95_equal_width`` / ``p95_equal_mass`` (95th percentiles).

    Example:
        >>> floor = ece_noise_floor(np.full(100, 0.7), reps=50)
        >>> 0.0 < floor["ece_equal_mass"] < 0.2
        True
    """
    p = np.asarray(prob, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"prob must be a non-empty 1-D array, got shape {p.shape}.")
    rng = np.random.default_rng(seed)
    width, mass = np.empty(reps), np.empty(reps)
    for i in range(reps):
        y = (rng.random(p.size) < p).astype(np.float64)
        m = calibration_metrics(p, y, n_bins=n_bins)
        width[i], mass[i] = m["ece_equal_width"], m["ece_equal_mass"]
    return {
        "ece_equal_width": float(width.mean()),
        "ece_equal_mass": float(mass.mean()),
        "p95_equal_width": float(np.quantile(width, 0.95)),
        "p95_equal_mass": float(np.quantile(mass, 0.95)),
    }
