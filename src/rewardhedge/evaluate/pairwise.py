"""Pairwise preference metrics: pure functions of arrays.

Every function takes per-pair arrays of shape `(n,)` (pair ``i`` is
"``chosen[i]`` is preferred to ``rejected[i]``") and returns either a
per-pair array of shape `(n,)` or a scalar ``float``.

Ties count half: a pair whose two rewards (or two lengths) are exactly equal
scores 0.5, as a coin flip would on average. This keeps a constant reward
model at accuracy 0.5 rather than 0 or 1.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from rewardhedge.errors import unknown_option

__all__ = [
    "bootstrap_ci",
    "brier",
    "finite_1d",
    "length_baseline_correct",
    "length_matched_mask",
    "log_loss",
    "pairwise_accuracy",
    "pairwise_correct",
    "per_subset",
]

_PREFER = ("longer", "shorter")

# scipy >= 1.15 takes ``rng``; older versions only ``random_state``.
_RNG_KW = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"

# Cap on resample elements per vectorised batch (about 16 MB of float64).
_BATCH_ELEMENTS = 2_000_000


def _as_1d(x: np.ndarray | Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got {arr.shape}.")
    return arr


def finite_1d(x: np.ndarray | Sequence[float], name: str) -> np.ndarray:
    """``x`` as a float64 `(n,)` array; a ValueError naming ``name`` and the first bad index
    if it has another shape or holds NaN or infinity.

    Example:
        >>> finite_1d([1, 2], "margin").tolist()
        [1.0, 2.0]
    """
    arr = _as_1d(x, name)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must be finite; {int(bad.sum())} value(s) are NaN or infinite, "
            f"first at index {i}: {arr[i]!r}."
        )
    return arr


def pairwise_correct(
    r_chosen: np.ndarray | Sequence[float], r_rejected: np.ndarray | Sequence[float]
) -> np.ndarray:
    """Per-pair correctness of a reward: does the chosen response score higher?

    Ties count half: an exactly equal pair scores 0.5.

    Args:
        r_chosen: `(n,)` rewards of the chosen responses.
        r_rejected: `(n,)` rewards of the rejected responses.

    Returns:
        `(n,)` float array: 1.0 where ``r_chosen > r_rejected``, 0.5 on an exact
        tie, 0.0 otherwise.

    Raises:
        ValueError: if the shapes differ, are not 1-D, or a reward is NaN.

    Example:
        >>> pairwise_correct([1.0, 2.0, 3.0], [0.0, 3.0, 3.0]).tolist()
        [1.0, 0.0, 0.5]
    """
    c = _as_1d(r_chosen, "r_chosen")
    r = _as_1d(r_rejected, "r_rejected")
    if c.shape != r.shape:
        raise ValueError(f"r_chosen and r_rejected differ in length: {c.shape[0]} vs {r.shape[0]}.")
    n_nan = int(np.isnan(c).sum() + np.isnan(r).sum())
    if n_nan:
        raise ValueError(f"rewards contain {n_nan} NaN value(s); cannot rank pairs.")
    return np.where(c > r, 1.0, np.where(c == r, 0.5, 0.0))


def pairwise_accuracy(
    r_chosen: np.ndarray | Sequence[float], r_rejected: np.ndarray | Sequence[float]
) -> float:
    """Fraction of pairs ranked correctly, ties counting half.

    Args:
        r_chosen: `(n,)` rewards of the chosen responses.
        r_rejected: `(n,)` rewards of the rejected responses.

    Returns:
        The mean of :func:`pairwise_correct`; NaN when ``n == 0``.

    Example:
        >>> round(pairwise_accuracy([1.0, 2.0, 3.0], [0.0, 3.0, 1.0]), 4)
        0.6667
    """
    correct = pairwise_correct(r_chosen, r_rejected)
    return float(correct.mean()) if correct.size else float("nan")


def _check_prob(prob_chosen: np.ndarray | Sequence[float]) -> np.ndarray:
    p = _as_1d(prob_chosen, "prob_chosen")
    bad = ~((p >= 0.0) & (p <= 1.0))  # also catches NaN
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"prob_chosen must lie in [0, 1]; {int(bad.sum())} value(s) do not, "
            f"first at index {i}: {p[i]!r}."
        )
    return p


def log_loss(prob_chosen: np.ndarray | Sequence[float], eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the observed preferences.

    Args:
        prob_chosen: `(n,)` predicted P(chosen ≻ rejected), in [0, 1].
        eps: probabilities are clipped to ``[eps, 1 - eps]`` so that a
            confident mistake costs ``-log(eps)`` rather than infinity.

    Returns:
        ``mean(-log p)`` in nats; NaN when ``n == 0``.

    Raises:
        ValueError: if a probability is outside [0, 1] or NaN, or ``eps`` is
            not in (0, 0.5).

    Example:
        >>> round(log_loss([0.5, 0.5]), 6)  # log 2
        0.693147
    """
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps == {eps!r}, must be in (0, 0.5).")
    p = _check_prob(prob_chosen)
    if p.size == 0:
        return float("nan")
    return float(-np.log(np.clip(p, eps, 1.0 - eps)).mean())


def brier(prob_chosen: np.ndarray | Sequence[float]) -> float:
    """Brier score of the preference probabilities: ``mean((1 - p)^2)``.

    Args:
        prob_chosen: `(n,)` predicted P(chosen ≻ rejected), in [0, 1].

    Returns:
        The mean squared error against the label 1; NaN when ``n == 0``.

    Example:
        >>> brier([1.0, 0.5, 0.0])  # (0 + 0.25 + 1) / 3
        0.4166666666666667
    """
    p = _check_prob(prob_chosen)
    if p.size == 0:
        return float("nan")
    return float(np.mean((1.0 - p) ** 2))


def length_baseline_correct(
    chosen: Sequence[str], rejected: Sequence[str], *, prefer: str = "longer"
) -> np.ndarray:
    """Per-pair correctness of the "pick the longer (or shorter) response" baseline.

    Length is the number of characters. Equal lengths count half.

    Args:
        chosen: `(n,)` chosen response texts.
        rejected: `(n,)` rejected response texts.
        prefer: ``"longer"`` or ``"shorter"``.

    Returns:
        `(n,)` float array of 1.0 / 0.5 / 0.0.

    Raises:
        ValueError: if the lengths of ``chosen`` and ``rejected`` differ.
        rewardhedge.errors.ConfigError: if ``prefer`` is not a known option.

    Example:
        >>> length_baseline_correct(["aaa", "a", "ab"], ["a", "aaa", "cd"]).tolist()
        [1.0, 0.0, 0.5]
        >>> length_baseline_correct(["aaa", "a"], ["a", "aaa"], prefer="shorter").tolist()
        [0.0, 1.0]
    """
    if prefer not in _PREFER:
        raise unknown_option("prefer", prefer, _PREFER)
    if len(chosen) != len(rejected):
        raise ValueError(f"chosen and rejected differ in length: {len(chosen)} vs {len(rejected)}.")
    lc = np.array([len(t) for t in chosen], dtype=np.float64)
    lr = np.array([len(t) for t in rejected], dtype=np.float64)
    if prefer == "shorter":
        lc, lr = -lc, -lr
    return pairwise_correct(lc, lr)


def length_matched_mask(
    chosen: Sequence[str], rejected: Sequence[str], tolerance: float | None = None
) -> np.ndarray:
    """Which pairs have responses of about equal length: the "is my reward just length?" control.

    A pair is length-matched when ``|len_c - len_r| / max(len_c, len_r) <= tolerance``
    (lengths in characters; two empty strings count as matched). Accuracy on these
    pairs is accuracy where a length preference cannot help.

    Args:
        chosen: `(n,)` chosen response texts.
        rejected: `(n,)` rejected response texts.
        tolerance: the largest relative length difference that counts as matched;
            ``None`` means :data:`rewardhedge.evaluate.length_controls.MATCH_TOLERANCE`
            (0.10). The boundary itself counts as matched.

    Returns:
        `(n,)` bool array.

    Raises:
        ValueError: if the lengths of ``chosen`` and ``rejected`` differ, or
            ``tolerance`` is negative or NaN.

    Example:
        >>> length_matched_mask(["a" * 10, "a" * 10, "", "ab"], ["a" * 9, "a" * 8, "", "cd"]).tolist()
        [True, False, True, True]
    """
    # Imported here: length_controls imports this module (bootstrap_ci) at import time.
    from rewardhedge.evaluate.length_controls import MATCH_TOLERANCE

    tol = MATCH_TOLERANCE if tolerance is None else float(tolerance)
    if not tol >= 0.0:
        raise ValueError(f"tolerance == {tolerance!r}, must be >= 0.")
    if len(chosen) != len(rejected):
        raise ValueError(f"chosen and rejected differ in length: {len(chosen)} vs {len(rejected)}.")
    lc = np.array([len(t) for t in chosen], dtype=np.float64)
    lr = np.array([len(t) for t in rejected], dtype=np.float64)
    # |lc - lr| <= tol * max: no division, so two empty strings (0 <= 0) need no special case.
    return np.abs(lc - lr) <= tol * np.maximum(lc, lr)


def bootstrap_ci(
    values: np.ndarray | Sequence[float],
    statistic: Callable[..., float] = np.mean,
    *,
    reps: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a statistic, resampling items.

    Uses ``scipy.stats.bootstrap(method="percentile")``. Degenerate inputs
    are answered directly, without warnings: ``n == 0`` gives ``(nan, nan)``;
    ``n == 1`` or all-equal values give ``(s, s)`` with ``s = statistic(values)``.

    Args:
        values: `(n,)` per-item values (e.g. :func:`pairwise_correct`).
        statistic: a function of a 1-D array returning a scalar; vectorised
            (faster) if it accepts ``axis`` like ``np.mean``.
        reps: number of bootstrap resamples.
        level: confidence level in (0, 1).
        seed: seed of the resampling generator; equal seeds give equal intervals.

    Returns:
        ``(low, high)`` as floats.

    Example:
        >>> low, high = bootstrap_ci([0.0, 1.0, 1.0, 1.0, 0.5, 1.0], reps=500)
        >>> bool(0.0 <= low <= 0.75 <= high <= 1.0)
        True
        >>> bootstrap_ci([1.0, 1.0])
        (1.0, 1.0)
    """
    v = _as_1d(values, "values")
    if reps < 1:
        raise ValueError(f"reps == {reps!r}, must be >= 1.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level == {level!r}, must be in (0, 1).")
    n = v.shape[0]
    if n == 0:
        return (float("nan"), float("nan"))
    if n == 1 or bool(np.all(v == v[0])):
        s = float(statistic(v))
        return (s, s)
    res = stats.bootstrap(
        (v,),
        statistic,
        n_resamples=reps,
        batch=max(1, min(reps, _BATCH_ELEMENTS // n)),
        confidence_level=level,
        method="percentile",
        **{_RNG_KW: np.random.default_rng(seed)},
    )
    ci = res.confidence_interval
    return (float(ci.low), float(ci.high))


def per_subset(
    values: np.ndarray | Sequence[float],
    subsets: Sequence[str | None],
    *,
    reps: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Mean of per-item values (accuracy) within each subset, with a bootstrap CI.

    Items whose subset is ``None`` are left out of every subset. Every subset
    uses the same ``seed``, so results do not depend on which others exist.

    Args:
        values: `(n,)` per-item values, e.g. :func:`pairwise_correct`.
        subsets: `(n,)` subset name of each item, or ``None``.
        reps: bootstrap resamples per subset.
        seed: seed of the resampling generator.

    Returns:
        ``{name: {"n": count, "accuracy": mean, "ci_low": .., "ci_high": ..}}``
        with names sorted; ``n`` is an ``int``, the others ``float`` (95% CI).

    Raises:
        ValueError: if ``values`` and ``subsets`` differ in length.

    Example:
        >>> out = per_subset([1.0, 0.0, 1.0, 1.0], ["b", "a", None, "b"])
        >>> list(out), out["b"]["n"], out["b"]["accuracy"], out["a"]["accuracy"]
        (['a', 'b'], 2, 1.0, 0.0)
    """
    v = _as_1d(values, "values")
    if v.shape[0] != len(subsets):
        raise ValueError(f"values and subsets differ in length: {v.shape[0]} vs {len(subsets)}.")
    out: dict[str, dict[str, float]] = {}
    for name in sorted({s for s in subsets if s is not None}):
        vals = v[np.array([s == name for s in subsets], dtype=bool)]
        low, high = bootstrap_ci(vals, reps=reps, seed=seed)
        out[name] = {
            "n": int(vals.shape[0]),
            "accuracy": float(vals.mean()),
            "ci_low": low,
            "ci_high": high,
        }
    return out
