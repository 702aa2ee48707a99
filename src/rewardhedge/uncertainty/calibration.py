"""Temperature scaling of preference probabilities.

Why: a Bradley-Terry reward model trained to low loss is usually
overconfident out of sample: σ(r_a − r_b) sits nearer 0 or 1 than the
observed win rates. One scalar fitted on held-out pairs, P(a ≻ b) =
σ((r_a − r_b) / T), fixes most of that without changing which response is
preferred (the order of pairs, and so accuracy, is untouched). It is the
calibration step of "Using rewards" in DESIGN.md.

Orientation: which response of a pair is "a" is arbitrary, so a fit should
not be able to learn a side bias. Temperature scaling cannot: σ(−x) =
1 − σ(x), so a flipped pair (−m, 1 − y) has exactly the same loss as
(m, y), and the symmetrised objective (every pair counted both ways) is the
plain one times two. No explicit symmetrisation is therefore needed, and
pairs may all be given chosen-first (outcomes all 1).

Margins may be `(n,)` (one logit per pair: ``P = σ(m / T)``) or `(m, n)`
member logits (:func:`rewardhedge.types.member_logits`), in which case
``P = mean_k σ(m_k / T)``: exactly how ``pairwise_from_estimates(...,
temperature=T)`` forms an ensemble's probability, so a model stores the ``T``
fitted this way and its ``compare`` applies it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, logsumexp

from rewardhedge.errors import ConfigError

__all__ = ["TEMPERATURE_BOUNDS", "TemperatureScaling", "fit_temperature"]

TEMPERATURE_BOUNDS = (0.25, 50.0)
"""Where a model's fitted temperature may lie. Held-out pairs that the model
orders perfectly would drive ``T → 0`` (probabilities of exactly 0 or 1); a
floor of 0.25 keeps any sharpening to at most 4×."""

_KIND = "temperature_scaling"
_T_BOUNDS = (0.01, 100.0)


def _as_margins(margins: np.ndarray | Sequence[float]) -> np.ndarray:
    m = np.asarray(margins, dtype=np.float64)
    if m.ndim not in (1, 2) or (m.ndim == 2 and m.shape[0] == 0):
        raise ValueError(f"margins must have shape (n,) or (m, n) with m >= 1, got {m.shape}.")
    n_bad = int((~np.isfinite(m)).sum())
    if n_bad:
        raise ValueError(f"margins contain {n_bad} non-finite value(s) (NaN or inf).")
    return m


def _check_pairs(
    margins: np.ndarray | Sequence[float], outcomes: np.ndarray | Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    m = _as_margins(margins)
    y = np.asarray(outcomes, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"outcomes must have shape (n,), got {y.shape}.")
    if m.shape[-1:] != y.shape:
        raise ValueError(f"margins and outcomes differ in length: {m.shape[-1]} vs {y.shape[0]}.")
    if y.size == 0:
        raise ValueError("no pairs given: margins and outcomes are empty.")
    bad = ~((y == 0.0) | (y == 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"outcomes must be binary (0/1 or False/True); {int(bad.sum())} value(s) "
            f"are not, first at index {i}: {y[i]!r}."
        )
    return m, y


def _nll(m: np.ndarray, y: np.ndarray, temperature: float) -> float:
    # −log σ(s·z) = log(1 + exp(−s·z)) with s = ±1 for a win/loss: stable for any z.
    signed = np.where(y == 1.0, m, -m) / temperature
    if m.ndim == 1:
        return float(np.logaddexp(0.0, -signed).mean())
    # −log mean_k σ(s·z_k), in log space: log σ(x) = −log(1 + e^−x).
    log_p = logsumexp(-np.logaddexp(0.0, -signed), axis=0) - math.log(m.shape[0])
    return float(-log_p.mean())


@dataclass(frozen=True)
class TemperatureScaling:
    """``P(a ≻ b) = σ((r_a − r_b) / T)``; ``T > 1`` softens, ``T < 1`` sharpens.

    Attributes:
        temperature: the fitted ``T``; the default 1.0 is the identity.

    Example:
        >>> ts = TemperatureScaling(2.0)
        >>> [round(p, 4) for p in ts.apply([0.0, 2.0]).tolist()]
        [0.5, 0.7311]
        >>> TemperatureScaling.from_dict(ts.to_dict()) == ts
        True
    """

    temperature: float = 1.0

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
            raise ConfigError(f"temperature == {t!r}, must be a finite number > 0.")
        object.__setattr__(self, "temperature", float(t))

    @classmethod
    def fit(
        cls,
        margins: np.ndarray | Sequence[float],
        outcomes: np.ndarray | Sequence[float],
        *,
        bounds: tuple[float, float] = _T_BOUNDS,
    ) -> TemperatureScaling:
        """Fit ``T`` by minimising the NLL of held-out pair outcomes.

        The search is over ``log T`` (scale-free, and the NLL is unimodal
        there because it is convex in ``1/T``) with bounded Brent.

        Args:
            margins: `(n,)` reward gaps ``r_a − r_b``, or `(m, n)` member logits.
            outcomes: `(n,)` 1 if ``a`` won, 0 if ``b`` did (bool works too).
            bounds: the range searched for ``T``. If the pairs are perfectly
                separated the NLL keeps falling as ``T → 0`` and the lower
                bound is returned.

        Returns:
            A fitted :class:`TemperatureScaling`. All-zero margins carry no
            information about ``T`` and give ``T = 1``.

        Raises:
            ValueError: on empty input, unequal lengths, non-finite margins,
                non-binary outcomes or bad bounds.
        """
        m, y = _check_pairs(margins, outcomes)
        lo, hi = bounds
        if not (0.0 < lo < hi and math.isfinite(hi)):
            raise ValueError(f"bounds == {bounds!r}, must satisfy 0 < low < high < inf.")
        if not np.any(m):
            return cls(1.0)
        res = minimize_scalar(
            lambda log_t: _nll(m, y, math.exp(log_t)),
            bounds=(math.log(lo), math.log(hi)),
            method="bounded",
            options={"xatol": 1e-6},
        )
        return cls(float(min(max(math.exp(res.x), lo), hi)))

    def apply(self, margins: np.ndarray | Sequence[float]) -> np.ndarray:
        """Calibrated ``(n,)`` probabilities ``σ(margin / T)`` (mean over members for
        `(m, n)` member logits) that ``a`` wins."""
        p = expit(_as_margins(margins) / self.temperature)
        return p if p.ndim == 1 else p.mean(axis=0)

    def nll(
        self, margins: np.ndarray | Sequence[float], outcomes: np.ndarray | Sequence[float]
    ) -> float:
        """Mean negative log-likelihood (nats) of the outcomes under this ``T``."""
        m, y = _check_pairs(margins, outcomes)
        return _nll(m, y, self.temperature)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, to store next to a model."""
        return {"kind": _KIND, "temperature": self.temperature}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TemperatureScaling:
        """Inverse of :meth:`to_dict`.

        Raises:
            rewardhedge.errors.ConfigError: (a ``ValueError``) if ``kind`` is
                not ``"temperature_scaling"`` or ``temperature`` is missing or
                invalid.
        """
        kind = data.get("kind")
        if kind != _KIND:
            raise ConfigError(f"calibration kind == {kind!r}, expected {_KIND!r}.")
        if "temperature" not in data:
            raise ConfigError(
                f"calibration: field 'temperature' is missing (keys: {sorted(data)})."
            )
        return cls(data["temperature"])


def fit_temperature(
    margins: np.ndarray | Sequence[float],
    outcomes: np.ndarray | Sequence[float],
    *,
    bounds: tuple[float, float] = _T_BOUNDS,
) -> TemperatureScaling:
    """Function form of :meth:`TemperatureScaling.fit`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> m = rng.normal(0.0, 3.0, 5_000)
        >>> y = rng.uniform(size=m.size) < expit(m / 2.0)
        >>> round(fit_temperature(m, y).temperature, 1)
        2.0
    """
    return TemperatureScaling.fit(margins, outcomes, bounds=bounds)
