"""Direct epistemic uncertainty prediction (DEUP) for pairwise reward models.

Why: an ensemble's spread only sees the errors its members disagree on. Errors
that all members share (the same blind spot learned from the same data, the
same spurious feature) leave the spread small while the model is wrong. DEUP
(Lahlou et al., "DEUP: Direct Epistemic Uncertainty Prediction") instead
trains a second, small model on *held-out* pairs to predict the main model's
loss directly, from features that should track it: ensemble variance,
embedding density (how unlike the training data an item is), and so on. The
epistemic part is then predicted error minus an aleatoric estimate.

Target. The aleatoric part of a pair's log loss is taken to be the entropy
``H(p)`` of the model's own probability ``p`` that the chosen response wins:
the loss a calibrated model expects to pay. The target is the excess loss

    t = −log p − H(p) = (1 − p) · log((1 − p) / p),

which is 0 at ``p = 1/2`` and, averaged over the model's own label
distribution (``y ~ Bernoulli(p)``), is exactly 0. If labels follow a true
probability ``q`` its expectation is ``KL(q ‖ p) + H(q) − H(p)``: the
divergence ``KL(q ‖ p) ≥ 0`` plus an entropy difference that vanishes when
``p`` is as confident as the truth. So ``t`` is large and positive where the
model is confidently wrong, but single values (and even the expectation, for
an under-confident model) can be negative; the non-negative predictor below
fits the positive part of that signal.

Per-item errors. A pair's excess is modelled as the sum of its two items'
errors, ``e(chosen) + e(rejected)`` with ``e ≥ 0``, so every scored item gets
its own epistemic value, in the same protocol as the other per-item
estimators.

Contents:

* :func:`excess_loss` — the training target.
* :class:`FeatureDensity` — a storable Gaussian density of training
  embeddings (PCA subspace + isotropic residual) whose score is a feature.
* :class:`ErrorPredictor` — ``e(x) = softplus(w·z(x) + b)`` on standardised
  item features, fitted by least squares on pair targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

__all__ = ["ErrorPredictor", "FeatureDensity", "excess_loss"]

_KIND = "deup_error_predictor"
_P_EPS = 1e-12
_VAR_FLOOR = 1e-12


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _softplus_inv(y: float) -> float:
    # log(exp(y) − 1) = y + log(1 − exp(−y)), stable for small and large y.
    return float(y + np.log(-np.expm1(-y)))


def _as_matrix(x: Any, name: str, n_cols: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (n, q), got {a.shape}.")
    if n_cols is not None and a.shape[1] != n_cols:
        raise ValueError(f"{name} has {a.shape[1]} column(s), expected {n_cols}.")
    n_bad = int((~np.isfinite(a)).sum())
    if n_bad:
        raise ValueError(f"{name} contains {n_bad} non-finite value(s) (NaN or inf).")
    return a


def _as_vector(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got {a.shape}.")
    n_bad = int((~np.isfinite(a)).sum())
    if n_bad:
        raise ValueError(f"{name} contains {n_bad} non-finite value(s) (NaN or inf).")
    return a


def _get(arrays: Mapping[str, Any], key: str) -> np.ndarray:
    if key not in arrays:
        raise ValueError(f"array {key!r} is missing (keys: {sorted(arrays)}).")
    return np.asarray(arrays[key], dtype=np.float64)


# ---------------------------------------------------------------------------
# target
# ---------------------------------------------------------------------------


def excess_loss(prob_chosen: np.ndarray) -> np.ndarray:
    """Excess log loss ``−log p − H(p)`` of each pair, in nats.

    Args:
        prob_chosen: `(n,)` the model's probability that the chosen response
            wins; clipped to ``[1e-12, 1 − 1e-12]``.

    Returns:
        `(n,)` ``(1 − p)·(log(1 − p) − log p)``: 0 at ``p = 1/2``, negative
        for confident correct pairs, large for confident wrong ones.

    Raises:
        ValueError: if ``prob_chosen`` is not 1-D or has NaN/inf values.

    Example:
        >>> excess_loss(np.array([0.5])).tolist()
        [0.0]
    """
    p = _as_vector(prob_chosen, "prob_chosen")
    p = np.clip(p, _P_EPS, 1.0 - _P_EPS)
    # −log p + p log p + (1 − p) log(1 − p) = (1 − p)(log(1 − p) − log p)
    return (1.0 - p) * (np.log1p(-p) - np.log(p))


# ---------------------------------------------------------------------------
# density feature
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureDensity:
    """Gaussian density of training features in a PCA subspace plus an isotropic residual.

    A cheap, storable stand-in for kNN density: ``k`` principal directions
    keep their own variances and the remaining ``d − k`` dimensions share one.

    Attributes:
        mean: `(d,)` training mean.
        components: `(k, d)` orthonormal principal directions.
        variances: `(k,)` variance along each direction (ddof=1).
        residual_variance: mean variance per remaining dimension.
    """

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    residual_variance: float

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64)
        comps = np.asarray(self.components, dtype=np.float64)
        var = np.asarray(self.variances, dtype=np.float64)
        if mean.ndim != 1 or mean.size == 0:
            raise ValueError(f"mean must have shape (d,) with d >= 1, got {mean.shape}.")
        d = mean.size
        if comps.ndim != 2 or comps.shape[1] != d or comps.shape[0] > d:
            raise ValueError(
                f"components must have shape (k, {d}) with k <= {d}, got {comps.shape}."
            )
        if var.shape != (comps.shape[0],):
            raise ValueError(f"variances must have shape ({comps.shape[0]},), got {var.shape}.")
        if not (np.all(np.isfinite(var)) and np.all(var > 0)):
            raise ValueError("variances must be finite and > 0.")
        rv = float(self.residual_variance)
        if not (np.isfinite(rv) and rv > 0):
            raise ValueError(f"residual_variance == {rv!r}, must be finite and > 0.")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(comps))):
            raise ValueError("mean and components must be finite.")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "components", comps)
        object.__setattr__(self, "variances", var)
        object.__setattr__(self, "residual_variance", rv)

    @property
    def dim(self) -> int:
        """Feature dimension ``d``."""
        return int(self.mean.size)

    @classmethod
    def fit(cls, x: np.ndarray, n_components: int = 32) -> FeatureDensity:
        """Fit on `(n, d)` training features; ``k = min(n_components, n − 1, d)``.

        Raises:
            ValueError: on non-2-D, empty or non-finite ``x``, or ``n_components < 0``.
        """
        x = _as_matrix(x, "x")
        n, d = x.shape
        if n == 0 or d == 0:
            raise ValueError(f"x is empty: shape {x.shape}.")
        if n_components < 0:
            raise ValueError(f"n_components == {n_components}, must be >= 0.")
        mean = x.mean(axis=0)
        xc = x - mean
        k = min(n_components, n - 1, d)
        _, s, vt = np.linalg.svd(xc, full_matrices=False)
        dof = max(n - 1, 1)
        variances = np.maximum(s[:k] ** 2 / dof, _VAR_FLOOR)
        if d > k:
            # Σ of the squared singular values left over = Σ‖residual‖².
            resid_ss = float(np.sum(s[k:] ** 2))
            residual_variance = max(resid_ss / (dof * (d - k)), _VAR_FLOOR)
        else:
            residual_variance = 1.0  # no residual dimensions; unused by score
        return cls(mean, vt[:k].copy(), variances, residual_variance)

    def score(self, x: np.ndarray) -> np.ndarray:
        """`(n,)` unfamiliarity: a scaled Mahalanobis distance (higher = less like training).

        ``(Σ_j proj_j² / var_j + ‖residual‖² / residual_variance) / d``.
        """
        x = _as_matrix(x, "x", self.dim)
        xc = x - self.mean
        proj = xc @ self.components.T
        total = np.sum(proj**2 / self.variances, axis=1)
        if self.components.shape[0] < self.dim:
            resid = xc - proj @ self.components
            total = total + np.sum(resid**2, axis=1) / self.residual_variance
        return total / self.dim

    def to_arrays(self, prefix: str = "density.") -> dict[str, np.ndarray]:
        """Arrays to store (e.g. with ``np.savez``)."""
        return {
            f"{prefix}mean": self.mean.copy(),
            f"{prefix}components": self.components.copy(),
            f"{prefix}variances": self.variances.copy(),
            f"{prefix}residual_variance": np.asarray(self.residual_variance, dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], prefix: str = "density.") -> FeatureDensity:
        """Inverse of :meth:`to_arrays`; ValueError on missing or inconsistent arrays."""
        rv = _get(arrays, f"{prefix}residual_variance")
        if rv.size != 1:
            raise ValueError(f"{prefix}residual_variance must be a scalar, got shape {rv.shape}.")
        return cls(
            _get(arrays, f"{prefix}mean"),
            _get(arrays, f"{prefix}components"),
            _get(arrays, f"{prefix}variances"),
            float(rv.reshape(())),
        )


# ---------------------------------------------------------------------------
# error predictor
# ---------------------------------------------------------------------------


def _objective(
    params: np.ndarray, zc: np.ndarray, zr: np.ndarray, target: np.ndarray, l2: float
) -> tuple[float, np.ndarray]:
    """``mean((e_c + e_r − t)²) + l2·‖w‖²`` and its gradient in ``params = (w, b)``."""
    w, b = params[:-1], params[-1]
    ac = zc @ w + b
    ar = zr @ w + b
    r = _softplus(ac) + _softplus(ar) - target
    n = target.size
    sc = expit(ac)
    sr = expit(ar)
    coef = 2.0 * r / n
    grad = np.empty_like(params)
    grad[:-1] = (coef * sc) @ zc + (coef * sr) @ zr + 2.0 * l2 * w
    grad[-1] = float(np.sum(coef * (sc + sr)))
    value = float(np.mean(r**2) + l2 * np.dot(w, w))
    return value, grad


@dataclass(frozen=True)
class ErrorPredictor:
    """``e(x) = softplus(w·z(x) + b) ≥ 0`` on standardised item features ``z``.

    Attributes:
        feature_names: names of the ``q`` item features, in column order.
        feature_mean: `(q,)` mean used to standardise.
        feature_scale: `(q,)` standard deviation used to standardise.
        weight: `(q,)` ``w``.
        bias: ``b``.
    """

    feature_names: tuple[str, ...]
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    weight: np.ndarray
    bias: float

    def __post_init__(self) -> None:
        names = tuple(str(s) for s in self.feature_names)
        q = len(names)
        if q == 0:
            raise ValueError("feature_names is empty; at least one feature is needed.")
        if len(set(names)) != q:
            raise ValueError(f"feature_names has duplicates: {names!r}.")
        fields = {}
        for field in ("feature_mean", "feature_scale", "weight"):
            a = np.asarray(getattr(self, field), dtype=np.float64)
            if a.shape != (q,):
                raise ValueError(f"{field} must have shape ({q},), got {a.shape}.")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{field} contains non-finite values.")
            fields[field] = a
        if not np.all(fields["feature_scale"] > 0):
            raise ValueError("feature_scale must be > 0.")
        bias = float(self.bias)
        if not np.isfinite(bias):
            raise ValueError(f"bias == {bias!r}, must be finite.")
        object.__setattr__(self, "feature_names", names)
        for field, a in fields.items():
            object.__setattr__(self, field, a)
        object.__setattr__(self, "bias", bias)

    @property
    def n_features(self) -> int:
        """Number of item features ``q``."""
        return len(self.feature_names)

    @classmethod
    def fit(
        cls,
        feat_chosen: np.ndarray,
        feat_rejected: np.ndarray,
        target: np.ndarray,
        *,
        feature_names: Sequence[str],
        l2: float = 1e-3,
    ) -> ErrorPredictor:
        """Fit on held-out pairs by least squares with L-BFGS-B.

        Args:
            feat_chosen: `(n, q)` features of each pair's chosen item.
            feat_rejected: `(n, q)` features of each pair's rejected item.
            target: `(n,)` excess losses (see :func:`excess_loss`).
            feature_names: ``q`` names, in column order.
            l2: ridge penalty on ``w`` (not on ``b``), ``>= 0``.

        Raises:
            ValueError: on mismatched shapes, empty input or non-finite values,
                naming the argument.
        """
        names = tuple(str(s) for s in feature_names)
        q = len(names)
        fc = _as_matrix(feat_chosen, "feat_chosen", q)
        fr = _as_matrix(feat_rejected, "feat_rejected", q)
        t = _as_vector(target, "target")
        if fc.shape[0] == 0:
            raise ValueError("no pairs given: feat_chosen is empty.")
        if fr.shape[0] != fc.shape[0]:
            raise ValueError(f"feat_rejected has {fr.shape[0]} row(s), feat_chosen {fc.shape[0]}.")
        if t.shape[0] != fc.shape[0]:
            raise ValueError(f"target has {t.shape[0]} value(s), feat_chosen {fc.shape[0]} row(s).")
        if not (np.isfinite(l2) and l2 >= 0):
            raise ValueError(f"l2 == {l2!r}, must be finite and >= 0.")
        stacked = np.vstack([fc, fr])
        mean = stacked.mean(axis=0)
        scale = np.maximum(stacked.std(axis=0), _VAR_FLOOR)
        zc = (fc - mean) / scale
        zr = (fr - mean) / scale
        x0 = np.zeros(q + 1)
        x0[-1] = _softplus_inv(max(float(np.mean(t)) / 2.0, 1e-6))
        res = minimize(
            _objective,
            x0,
            args=(zc, zr, t, float(l2)),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 1000, "gtol": 1e-10, "ftol": 1e-15},
        )
        return cls(names, mean, scale, res.x[:-1].copy(), float(res.x[-1]))

    def _standardise(self, features: np.ndarray, name: str) -> np.ndarray:
        x = _as_matrix(features, name, self.n_features)
        return (x - self.feature_mean) / self.feature_scale

    def predict(self, features: np.ndarray) -> np.ndarray:
        """`(n,)` per-item errors ``e ≥ 0`` for `(n, q)` item features."""
        z = self._standardise(features, "features")
        return _softplus(z @ self.weight + self.bias)

    def predict_pairs(self, feat_chosen: np.ndarray, feat_rejected: np.ndarray) -> np.ndarray:
        """`(n,)` predicted pair excess losses ``e(chosen) + e(rejected)``."""
        zc = self._standardise(feat_chosen, "feat_chosen")
        zr = self._standardise(feat_rejected, "feat_rejected")
        if zc.shape[0] != zr.shape[0]:
            raise ValueError(f"feat_rejected has {zr.shape[0]} row(s), feat_chosen {zc.shape[0]}.")
        return _softplus(zc @ self.weight + self.bias) + _softplus(zr @ self.weight + self.bias)

    def to_arrays(self, prefix: str = "deup.") -> dict[str, np.ndarray]:
        """Arrays to store (e.g. with ``np.savez``); names go in :meth:`to_json`."""
        return {
            f"{prefix}feature_mean": self.feature_mean.copy(),
            f"{prefix}feature_scale": self.feature_scale.copy(),
            f"{prefix}weight": self.weight.copy(),
            f"{prefix}bias": np.asarray(self.bias, dtype=np.float64),
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-ready metadata: the kind and the feature names."""
        return {"kind": _KIND, "feature_names": list(self.feature_names)}

    @classmethod
    def from_arrays(
        cls,
        arrays: Mapping[str, Any],
        feature_names: Sequence[str],
        prefix: str = "deup.",
    ) -> ErrorPredictor:
        """Inverse of :meth:`to_arrays`; ValueError on missing or inconsistent arrays."""
        bias = _get(arrays, f"{prefix}bias")
        if bias.size != 1:
            raise ValueError(f"{prefix}bias must be a scalar, got shape {bias.shape}.")
        return cls(
            tuple(feature_names),
            _get(arrays, f"{prefix}feature_mean"),
            _get(arrays, f"{prefix}feature_scale"),
            _get(arrays, f"{prefix}weight"),
            float(bias.reshape(())),
        )
