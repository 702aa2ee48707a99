"""Selective prediction: abstain on uncertain pairs, with a guaranteed error rate.

Why: a reward model's uncertainty is only useful if a user can act on it. The
simplest action is to *abstain* — not trust the reward — on the most uncertain
items. Picking the abstention threshold by eye (or by the empirical error on a
held-out split) overfits that split: the chosen threshold is too lenient about
half of the time. This module chooses the threshold with a finite-sample
guarantee instead, in the spirit of "Learning Conformal Abstention Policies"
and Learn-then-Test (Angelopoulos et al., 2021).

Setting. Calibration pairs ``(u_i, l_i)``, ``i = 1..n``, are drawn i.i.d.
(exchangeable with the test pairs): ``u_i`` is an uncertainty score (higher =
less trusted), ``l_i`` is 1 if the reward model misorders pair ``i`` and 0
otherwise. The rule "keep items with ``u <= λ``" has the *selective risk*

    R(λ) = P(L = 1 | U <= λ),

the error rate on the items it keeps (a population quantity).

Procedure. Candidate thresholds are the distinct calibration scores, scanned
from strict (few kept) to lenient (all kept). At threshold λ with ``n_λ`` kept
calibration items of which ``k_λ`` are errors, the exact binomial-tail p-value
of ``H0: R(λ) > α`` is ``p(λ) = P(Binomial(n_λ, α) <= k_λ)`` (the
Clopper-Pearson test). Fixed-sequence testing walks along the scan and stops at
the first threshold it cannot reject. A single walk that starts at the
strictest threshold would nearly always stop at once — a handful of kept items
can never show an error rate below α — so ``m`` walks start at kept counts
``c, 2c, 4c, …, 2^(m-1)·c`` (``c`` = the fewest items with which a rejection is
possible at all), each at level ``δ/m`` (Bonferroni over walks). ``m`` and
``c`` depend only on ``n``, α and δ. The chosen threshold λ̂ is the most lenient
threshold any walk rejected; if none rejected anything, λ̂ = −∞ (abstain on
everything, :attr:`AbstentionRule.abstains_on_all`).

Guarantee (as implemented). Over the draw of the calibration set,

    P( R(λ̂) > α ) <= δ,

with λ̂ = −∞ counted as a success (it keeps nothing, so makes no error),
provided that

1. the selective risk ``R(λ)`` is nondecreasing in λ — more uncertain items
   are not easier on average, which is what an uncertainty score is for; and
2. ``U`` has a continuous distribution (no ties among scores).

Sketch: let λ* = sup{λ : R(λ) <= α}; continuity gives R(λ*) = α. A walk fails
only if it rejects some threshold above λ*. If it starts at or below λ*, it must
first reject the largest candidate <= λ*, whose kept set is exactly
{i : u_i <= λ*}, where the errors are Binomial(n_λ*, α) — rejected with
probability <= δ/m. If it starts above λ*, conditioning on the start's kept
count shows its errors are stochastically at least Binomial(n_λ, α), again
rejected with probability <= δ/m. A union over the ``m`` walks gives δ.

Ties among scores do not break the procedure (a threshold keeps every tied
item), but the proof above assumes none; with heavy ties the guarantee is
approximate. The guarantee is about the population risk of the chosen rule,
not the error on any particular finite test split, which also fluctuates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from rewardhedge.errors import ConfigError

__all__ = ["AbstentionRule", "fit_abstention", "selective_report"]


def _as_scores(x: np.ndarray | Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got {arr.shape}.")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains {int(np.isnan(arr).sum())} NaN value(s).")
    return arr


def _as_losses(x: np.ndarray | Sequence[float], *, binary: bool) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"losses must have shape (n,), got {arr.shape}.")
    if binary:
        bad = ~((arr == 0.0) | (arr == 1.0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"losses must be 0 or 1 (1 = misordered pair); {int(bad.sum())} value(s) "
                f"are not, first at index {i}: {arr[i]!r}. For ties use loss 1 "
                "(``correct < 1``), which keeps the guarantee."
            )
    else:
        bad = ~((arr >= 0.0) & (arr <= 1.0))
        if bad.any():
            raise ValueError(f"losses must lie in [0, 1]; {int(bad.sum())} value(s) do not.")
    return arr


def _check_level(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} == {value!r}, must be a number in (0, 1).")
    v = float(value)
    if not 0.0 < v < 1.0:
        raise ConfigError(f"{name} == {value!r}, must be in (0, 1).")
    return v


def _min_count(alpha: float, level: float) -> int:
    """Fewest kept items with which zero errors reject ``R > alpha`` at ``level``."""
    c = max(1, math.ceil(math.log(level) / math.log1p(-alpha)))
    while (1.0 - alpha) ** c > level:  # guard against rounding in the logs
        c += 1
    while c > 1 and (1.0 - alpha) ** (c - 1) <= level:
        c -= 1
    return c


def _walks(n: int, alpha: float, delta: float) -> tuple[int, int]:
    """Number of walks ``m`` and first start count ``c`` (``m == 0``: none fit in ``n``).

    ``m`` is the largest number such that the starts ``c·2^i`` (``i < m``),
    with ``c`` the minimum count at level ``δ/m``, all fit within ``n`` items.
    """
    m = 0
    while True:
        c = _min_count(alpha, delta / (m + 1))
        if c * 2**m > n:
            break
        m += 1
    return m, (_min_count(alpha, delta / m) if m else 0)


@dataclass(frozen=True)
class AbstentionRule:
    """Keep an item iff its uncertainty is ``<= threshold``; see the module docstring.

    Attributes:
        threshold: the largest kept uncertainty; ``-inf`` abstains on everything.
        alpha: the target selective error rate.
        delta: the allowed probability that the rule's error rate exceeds ``alpha``.
        n_calibration: number of calibration pairs it was fitted on.
        calibration_coverage: fraction of calibration pairs kept.
        calibration_error: error rate on the kept calibration pairs (NaN if none kept).

    Example:
        >>> rule = AbstentionRule(0.5, 0.1, 0.1, 100, 0.4, 0.05)
        >>> rule.keep([0.2, 0.5, 0.9]).tolist()
        [True, True, False]
        >>> AbstentionRule.from_dict(rule.to_dict()) == rule
        True
    """

    threshold: float
    alpha: float
    delta: float
    n_calibration: int
    calibration_coverage: float
    calibration_error: float

    @property
    def abstains_on_all(self) -> bool:
        """True when no threshold could be certified: the rule keeps nothing."""
        return self.threshold == -math.inf

    def keep(self, uncertainty: np.ndarray | Sequence[float]) -> np.ndarray:
        """`(n,)` bool: which items to trust (``u <= threshold``; NaN is never kept)."""
        u = np.asarray(uncertainty, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return u <= self.threshold

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; a ``-inf`` threshold and a NaN error become ``None``."""
        return {
            "threshold": None if self.abstains_on_all else float(self.threshold),
            "alpha": self.alpha,
            "delta": self.delta,
            "n_calibration": self.n_calibration,
            "calibration_coverage": self.calibration_coverage,
            "calibration_error": (
                None if math.isnan(self.calibration_error) else self.calibration_error
            ),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AbstentionRule:
        """Inverse of :meth:`to_dict`."""
        thr = data["threshold"]
        err = data["calibration_error"]
        return cls(
            threshold=-math.inf if thr is None else float(thr),
            alpha=float(data["alpha"]),
            delta=float(data["delta"]),
            n_calibration=int(data["n_calibration"]),
            calibration_coverage=float(data["calibration_coverage"]),
            calibration_error=math.nan if err is None else float(err),
        )


def fit_abstention(
    uncertainty: np.ndarray | Sequence[float],
    losses: np.ndarray | Sequence[float],
    *,
    alpha: float = 0.1,
    delta: float = 0.1,
) -> AbstentionRule:
    """Choose the most lenient threshold whose selective error is certified ``<= alpha``.

    Args:
        uncertainty: `(n,)` calibration uncertainty scores, higher = less trusted.
        losses: `(n,)` 0/1 losses on the same pairs, 1 = misordered.
        alpha: target error rate on kept items, in (0, 1).
        delta: allowed failure probability of the guarantee, in (0, 1).

    Returns:
        An :class:`AbstentionRule`; with probability at least ``1 - delta`` over
        the calibration draw its population selective error is ``<= alpha``
        (assumptions in the module docstring). If nothing can be certified
        (too few pairs, or too many errors even among the most certain), the
        threshold is ``-inf`` and :attr:`AbstentionRule.abstains_on_all` is True.

    Raises:
        ValueError: bad shapes, NaN scores, losses not in {0, 1}, or alpha /
            delta outside (0, 1) (a :class:`~rewardhedge.errors.ConfigError`).

    Example:
        >>> u = np.linspace(0.0, 1.0, 200)
        >>> rule = fit_abstention(u, (u > 0.8).astype(float), alpha=0.1, delta=0.1)
        >>> 0.75 < rule.threshold < 0.85
        True
    """
    alpha = _check_level("alpha", alpha)
    delta = _check_level("delta", delta)
    u = _as_scores(uncertainty, "uncertainty")
    loss = _as_losses(losses, binary=True)
    if u.shape != loss.shape:
        raise ValueError(
            f"uncertainty and losses differ in length: {u.shape[0]} vs {loss.shape[0]}."
        )
    n = int(u.shape[0])

    order = np.argsort(u, kind="stable")
    u_sorted = u[order]
    errors = np.cumsum(loss[order])
    # Candidate j keeps every item up to the last one tied with u_sorted[j].
    last = np.flatnonzero(np.append(u_sorted[1:] != u_sorted[:-1], True)) if n else np.array([])
    last = last.astype(np.int64)
    kept = last + 1
    n_err = errors[last] if n else np.array([])

    m, c = _walks(n, alpha, delta)
    best = -1  # index into the candidates; -1 = abstain on everything
    if m:
        p = stats.binom.cdf(n_err, kept, alpha)
        rejected = p <= delta / m
        # Index of the first non-rejected candidate at or after each candidate.
        stop = np.full(len(kept) + 1, len(kept), dtype=np.int64)
        for j in range(len(kept) - 1, -1, -1):
            stop[j] = stop[j + 1] if rejected[j] else j
        for i in range(m):
            start = int(np.searchsorted(kept, c * 2**i, side="left"))
            if start < len(kept) and rejected[start]:
                best = max(best, int(stop[start]) - 1)

    if best < 0:
        return AbstentionRule(-math.inf, alpha, delta, n, 0.0, math.nan)
    n_kept = int(kept[best])
    return AbstentionRule(
        threshold=float(u_sorted[last[best]]),
        alpha=alpha,
        delta=delta,
        n_calibration=n,
        calibration_coverage=n_kept / n,
        calibration_error=float(n_err[best]) / n_kept,
    )


def selective_report(
    rule: AbstentionRule,
    uncertainty: np.ndarray | Sequence[float],
    losses: np.ndarray | Sequence[float],
) -> dict[str, float]:
    """Coverage and error of ``rule`` on (test) pairs.

    Args:
        rule: a fitted :class:`AbstentionRule`.
        uncertainty: `(n,)` scores of the pairs.
        losses: `(n,)` losses in [0, 1] (ties may count half here).

    Returns:
        ``{"coverage", "error", "n_kept", "n"}``; ``error`` is NaN when nothing
        is kept, ``n_kept`` and ``n`` are ints.

    Example:
        >>> rule = AbstentionRule(0.5, 0.1, 0.1, 100, 0.5, 0.0)
        >>> selective_report(rule, [0.1, 0.4, 0.9, 0.7], [0, 1, 1, 0])
        {'coverage': 0.5, 'error': 0.5, 'n_kept': 2, 'n': 4}
    """
    u = _as_scores(uncertainty, "uncertainty")
    loss = _as_losses(losses, binary=False)
    if u.shape != loss.shape:
        raise ValueError(
            f"uncertainty and losses differ in length: {u.shape[0]} vs {loss.shape[0]}."
        )
    keep = rule.keep(u)
    n = int(u.shape[0])
    n_kept = int(keep.sum())
    return {
        "coverage": n_kept / n if n else math.nan,
        "error": float(loss[keep].mean()) if n_kept else math.nan,
        "n_kept": n_kept,
        "n": n,
    }
