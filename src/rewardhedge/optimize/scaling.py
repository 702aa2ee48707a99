"""Gao et al.'s best-of-n overoptimisation curve: fit, peak, and KL ↔ n.

Why: "Scaling Laws for Reward Model Overoptimization" (Gao et al.) found that
the gold reward gained by best-of-n against a proxy follows

    R(d) = d · (α − β·d),   d = sqrt(KL),

where KL = KL(n) = log n − (n−1)/n. α is the initial slope (how useful the
proxy is), β how fast overoptimisation eats the gain. Fitting the two numbers
summarises a whole curve, and the peak — d* = α/(2β), R* = α²/(4β) — says how
hard one can optimise before the gold reward starts to fall. The form has no
intercept: at KL = 0 (n = 1) the gain is 0 by definition, so fit it to
``gold(n) − gold(1)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq

from rewardhedge.optimize.order_stats import kl_best_of_n

__all__ = ["GaoFit", "fit_gao", "n_at_kl"]

# exp(KL + 1) bounds the n with KL(n) = KL; keep it finite.
_MAX_KL = 700.0


def _n_at_kl_scalar(kl: float) -> float:
    if not math.isfinite(kl) or kl < 0:
        raise ValueError(f"kl == {kl!r}, must be finite and >= 0.")
    if kl > _MAX_KL:
        raise ValueError(f"kl == {kl!r} is too large to invert (max {_MAX_KL}).")
    if kl == 0:
        return 1.0
    # KL(n) >= log n − 1, so KL(n) = kl has its root below exp(kl + 1).
    hi = math.exp(kl + 1.0) + 1.0
    return float(
        brentq(lambda n: kl_best_of_n(n) - kl, 1.0, hi, xtol=1e-12, rtol=4 * np.finfo(float).eps)
    )


def n_at_kl(kl: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
    """The (real-valued) n whose best-of-n KL is ``kl``: the inverse of
    :func:`~rewardhedge.optimize.order_stats.kl_best_of_n`.

    KL(n) is strictly increasing on n >= 1, so the inverse is unique. Found
    with ``scipy.optimize.brentq``. Vectorised; a scalar gives a ``float``.

    Example:
        >>> round(n_at_kl(kl_best_of_n(16)), 9)
        16.0
    """
    arr = np.asarray(kl, dtype=np.float64)
    if arr.ndim == 0:
        return _n_at_kl_scalar(float(arr))
    return np.vectorize(_n_at_kl_scalar, otypes=[np.float64])(arr)


@dataclass(frozen=True)
class GaoFit:
    """A fitted ``R(d) = d·(α − β·d)`` curve, ``d = sqrt(KL)``.

    Attributes:
        alpha, beta: the fitted coefficients.
        r2: coefficient of determination ``1 − SS_res/SS_tot`` with SS_tot
            about the mean of the gains (the usual centred R²; it can be
            negative for a form without intercept). ``nan`` if every gain is
            equal and the fit is not exact.
        peak_kl, peak_d, peak_gold: the maximum of the curve over d >= 0;
            ``peak_gold`` is the *gain* over n=1 (plus ``baseline`` if
            :func:`fit_gao` got one). ``None`` when β <= 0: within this form
            the curve is still rising, no peak. When β > 0 but α <= 0 the
            best is not to optimise: the peak is at d = 0 with gain 0.
            A fitted β that is round-off (its term below 1e-9 of α's at
            the largest observed d) is set to 0.
        n_points: how many points were fitted.
        kl_max: the largest fitted KL; a ``peak_kl`` beyond it is an
            extrapolation of the form, not an observation.
    """

    alpha: float
    beta: float
    r2: float
    peak_kl: float | None
    peak_d: float | None
    peak_gold: float | None
    n_points: int = 0
    kl_max: float = float("nan")

    @property
    def peak_n(self) -> float | None:
        """The best-of-n (real-valued) at the peak, via :func:`n_at_kl`."""
        if self.peak_kl is None or self.peak_kl > _MAX_KL:
            return None
        return float(n_at_kl(self.peak_kl))

    def predict(self, kl: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """The fitted gain ``d·(α − β·d)`` at ``kl`` (without any baseline)."""
        d = np.sqrt(np.asarray(kl, dtype=np.float64))
        return d * (self.alpha - self.beta * d)

    def to_dict(self) -> dict[str, Any]:
        """Plain floats (``None`` where there is no peak), for JSON."""
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "r2": self.r2,
            "peak_kl": self.peak_kl,
            "peak_d": self.peak_d,
            "peak_gold": self.peak_gold,
            "peak_n": self.peak_n,
            "n_points": self.n_points,
            "kl_max": self.kl_max,
        }


def fit_gao(
    kl: Sequence[float] | np.ndarray,
    gains: Sequence[float] | np.ndarray,
    *,
    baseline: float = 0.0,
) -> GaoFit:
    """Least-squares fit (no intercept) of ``gains ≈ d·(α − β·d)``, ``d = sqrt(kl)``.

    Args:
        kl: `(k,)` KL values, ``>= 0`` (e.g. ``kl_best_of_n(ns)``).
        gains: `(k,)` gold reward minus the gold reward at n=1.
        baseline: added to ``peak_gold`` only, so that passing the n=1 gold
            reward makes ``peak_gold`` an absolute gold reward.

    Raises:
        ValueError: shapes differ, NaN/negative KL, or fewer than two distinct
            nonzero KL values (α and β are then not identifiable).

    Example:
        >>> k = kl_best_of_n(np.array([1, 2, 4, 8, 16, 64]))
        >>> d = np.sqrt(k)
        >>> fit = fit_gao(k, d * (1.0 - 0.5 * d))
        >>> round(fit.alpha, 9), round(fit.beta, 9), round(fit.peak_kl, 9)
        (1.0, 0.5, 1.0)
    """
    k = np.asarray(kl, dtype=np.float64)
    g = np.asarray(gains, dtype=np.float64)
    if k.ndim != 1 or g.shape != k.shape:
        raise ValueError(f"kl and gains must be 1-D of equal length, got {k.shape} and {g.shape}.")
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(g))):
        raise ValueError("kl and gains must be finite (no NaN or inf).")
    if np.any(k < 0):
        raise ValueError(f"kl must be >= 0, got min {k.min()!r}.")
    if np.unique(k[k > 0]).size < 2:
        raise ValueError(
            "need at least two distinct nonzero KL values to fit alpha and beta, "
            f"got {np.unique(k).tolist()}."
        )
    d = np.sqrt(k)
    X = np.column_stack([d, -d * d])
    (alpha, beta), *_ = np.linalg.lstsq(X, g, rcond=None)
    alpha, beta = float(alpha), float(beta)
    resid = g - X @ np.array([alpha, beta])
    ss_res = float(resid @ resid)
    ss_tot = float(((g - g.mean()) ** 2).sum())
    # All gains equal: R² is 1 for an exact fit and undefined otherwise.
    exact = ss_res <= 1e-24 * max(float(g @ g), 1.0)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if exact else float("nan"))
    peak_kl: float | None
    peak_d: float | None
    peak_gold: float | None
    # A β whose term is round-off at the largest observed d is zero: otherwise
    # exact linear data would report a peak at KL ~ 1e32.
    d_max = float(d.max())
    if abs(beta) * d_max * d_max <= 1e-9 * abs(alpha) * d_max:
        beta = 0.0
    if beta > 0 and alpha > 0:
        peak_d = alpha / (2.0 * beta)
        peak_kl = peak_d * peak_d
        peak_gold = alpha * alpha / (4.0 * beta) + baseline
    elif beta > 0:
        peak_d, peak_kl, peak_gold = 0.0, 0.0, float(baseline)
    else:
        peak_d = peak_kl = peak_gold = None
    return GaoFit(
        alpha=alpha,
        beta=beta,
        r2=r2,
        peak_kl=peak_kl,
        peak_d=peak_d,
        peak_gold=peak_gold,
        n_points=int(k.size),
        kl_max=float(k.max()),
    )
