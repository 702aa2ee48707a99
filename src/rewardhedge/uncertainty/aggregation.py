"""Conservative aggregation of an ensemble's rewards into one reward per item.

Why: a single reward model is easy to exploit; an optimiser finds the texts it
over-rates. An ensemble's members disagree most exactly where the proxy is
unreliable, so scoring with a pessimistic summary of the members (rather than
their mean) penalises those texts. Coste et al., "Reward Model Ensembles Help
Mitigate Overoptimization" (WCO, UWO) and "Reward-Robust RLHF" (the BRME-style
mix of mean and minimum) show this reduces reward hacking.

Members lie along ``axis`` (default 0, so a `(K, n)` array: K members, n
items, as in :attr:`rewardhedge.types.RewardEstimate.members`). Definitions:

=========  ============================================  ==========================
name       value                                         parameter (default)
=========  ============================================  ==========================
mean       ``mean_k r_k``                                —
wco        ``min_k r_k`` (worst-case optimisation)       —
uwo        ``mean − λ·var_k r_k`` (ddof=0)               λ ≥ 0 (0.5)
lcb        ``mean − β·std_k r_k`` (ddof=0)               β ≥ 0 (1.0)
brme       ``λ·mean + (1−λ)·min``                        λ in [0, 1] (0.5)
softmin    ``−β·log mean_k exp(−r_k/β)``                 β > 0 (1.0)
=========  ============================================  ==========================

The variance and standard deviation are population ones (``ddof=0``), as in
Coste et al.'s code and :attr:`RewardEstimate.epistemic`. With one member
(K=1) every aggregation returns that member's reward unchanged.

A model's :class:`RewardEstimate` carries members normalised per member on
the training items (``EnsembleConfig.member_norm``, default ``standardize``),
so a member's arbitrary Bradley-Terry offset does not decide the minimum or the
spread; ``mean`` applied to an estimate returns its raw ``mean`` instead.

λ and β do not mean the same thing across aggregations. UWO's λ multiplies a
*variance* (reward units squared) while LCB's β multiplies a *standard
deviation* (reward units): with member spread s, UWO subtracts λ·s² and LCB
β·s, so the same number is milder than LCB for s < 1 and harsher for s > 1,
and UWO's penalty changes with the scale of the rewards while LCB's scales
with them. BRME's λ is a weight on the mean (λ=1 is the mean, λ=0 the
minimum, so a *smaller* λ is *more* conservative), and the soft-min's β is a
temperature in reward units (β → 0 gives the minimum, β → ∞ the mean).
Compare aggregations by their effect, not by their parameter values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp

from rewardhedge.errors import ConfigError, unknown_option
from rewardhedge.types import RewardEstimate

__all__ = ["AGGREGATIONS", "Aggregation", "aggregate"]

AGGREGATIONS: tuple[str, ...] = ("mean", "wco", "uwo", "lcb", "brme", "softmin")

# Which parameter each aggregation takes, and its default.
_PARAM: dict[str, tuple[str, float] | None] = {
    "mean": None,
    "wco": None,
    "uwo": ("lam", 0.5),
    "lcb": ("beta", 1.0),
    "brme": ("lam", 0.5),
    "softmin": ("beta", 1.0),
}

AGGREGATION_LABELS = {
    "mean": "mean",
    "wco": "WCO",
    "uwo": "UWO",
    "lcb": "LCB",
    "brme": "BRME",
    "softmin": "soft-min",
}

_SYMBOL = {"lam": "λ", "beta": "β"}


def _check_param(agg: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"aggregation {agg!r}: {key} == {value!r}, must be a number.")
    v = float(value)
    if not math.isfinite(v):
        raise ConfigError(f"aggregation {agg!r}: {key} == {value!r}, must be finite.")
    if v < 0:
        raise ConfigError(f"aggregation {agg!r}: {key} == {value!r}, must be >= 0.")
    if agg == "brme" and v > 1:
        raise ConfigError(
            f"aggregation 'brme': lam == {value!r}, must be in [0, 1] "
            "(the weight of the mean; 1 - lam goes to the minimum)."
        )
    if agg == "softmin" and v == 0:
        raise ConfigError(
            "aggregation 'softmin': beta == 0, must be > 0 (use 'wco' for the plain minimum)."
        )
    return v


@dataclass(frozen=True)
class Aggregation:
    """A named, validated ensemble aggregation with its parameter.

    Construct it directly or with :meth:`parse`; both validate. ``lam`` is
    used by ``uwo`` and ``brme``, ``beta`` by ``lcb`` and ``softmin``;
    ``None`` means the default. Passing a parameter the aggregation does not
    use is an error, so a typo such as ``Aggregation("lcb", lam=2)`` cannot
    silently run with the default.

    Example:
        >>> agg = Aggregation.parse("UWO", lam=0.5)
        >>> agg.label()
        'UWO λ=0.5'
        >>> agg.apply(np.array([[1.0, 0.0], [3.0, 0.0]])).tolist()
        [1.5, 0.0]
    """

    name: str
    lam: float | None = None
    beta: float | None = None

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or name not in AGGREGATIONS:
            raise unknown_option("aggregation", name, AGGREGATIONS)
        spec = _PARAM[name]
        used = spec[0] if spec is not None else None
        for key in ("lam", "beta"):
            value = getattr(self, key)
            if value is None:
                continue
            if key != used:
                takes = f"takes only {used!r}" if used else "takes no parameter"
                raise ConfigError(
                    f"aggregation {name!r} does not use {key!r} (got {key}={value!r}); it {takes}."
                )
            object.__setattr__(self, key, _check_param(name, key, value))

    @classmethod
    def parse(cls, name: str, lam: float | None = None, beta: float | None = None) -> Aggregation:
        """Validate a user-given name (case-insensitive) and parameters."""
        if not isinstance(name, str):
            raise unknown_option("aggregation", name, AGGREGATIONS)
        return cls(name.strip().lower(), lam=lam, beta=beta)

    def params(self) -> dict[str, float]:
        """The parameter this aggregation uses, default filled in (``{}`` if none)."""
        spec = _PARAM[self.name]
        if spec is None:
            return {}
        key, default = spec
        value = getattr(self, key)
        return {key: default if value is None else value}

    def label(self) -> str:
        """A short human label, e.g. ``"UWO λ=0.5"`` or ``"WCO"``."""
        parts = [AGGREGATION_LABELS[self.name]]
        parts += [f"{_SYMBOL[k]}={v:g}" for k, v in self.params().items()]
        return " ".join(parts)

    def apply(self, members: np.ndarray | RewardEstimate, axis: int = 0) -> np.ndarray:
        """Aggregate over the members ``axis`` (removed from the result).

        A :class:`RewardEstimate` is aggregated over its `(m, n)` members,
        except that ``mean`` returns its ``mean``: an estimate's members may be
        normalised per member (``models/member_norm.py``), its mean is the raw one.
        """
        if isinstance(members, RewardEstimate):
            if self.name == "mean" and axis == 0:
                return np.asarray(members.mean, dtype=np.float64)
            members = members.members
        r = np.asarray(members, dtype=np.float64)
        if r.ndim == 0:
            raise ValueError("members must have at least one dimension (the members axis).")
        if r.shape[axis] == 0:
            raise ValueError(f"members has no members along axis {axis} (shape {r.shape}).")
        p = self.params()
        name = self.name
        if name == "mean":
            return r.mean(axis=axis)
        if name == "wco":
            return r.min(axis=axis)
        if name == "uwo":
            return r.mean(axis=axis) - p["lam"] * r.var(axis=axis)
        if name == "lcb":
            return r.mean(axis=axis) - p["beta"] * r.std(axis=axis)
        if name == "brme":
            # min + λ·(mean − min) == λ·mean + (1−λ)·min, exact when all members agree.
            lo = r.min(axis=axis)
            return lo + p["lam"] * (r.mean(axis=axis) - lo)
        # softmin, shifted by the minimum: exact for K=1 and for agreeing members.
        beta = p["beta"]
        lo = r.min(axis=axis, keepdims=True)
        k = r.shape[axis]
        lse = logsumexp(-(r - lo) / beta, axis=axis)
        return np.squeeze(lo, axis=axis) - beta * (lse - math.log(k))

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., <param>: value}``, defaults filled in, for JSON."""
        return {"name": self.name, **self.params()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Aggregation:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        if "name" not in d:
            raise ConfigError(f"aggregation dict has no 'name' (keys present: {', '.join(d)}).")
        extra = sorted(set(d) - {"name", "lam", "beta"})
        if extra:
            raise ConfigError(
                f"aggregation dict has unknown key(s) {', '.join(map(repr, extra))}; "
                "allowed: name, lam, beta."
            )
        return cls.parse(d["name"], lam=d.get("lam"), beta=d.get("beta"))


def aggregate(
    members: np.ndarray | RewardEstimate,
    name: str,
    *,
    lam: float | None = None,
    beta: float | None = None,
    axis: int = 0,
) -> np.ndarray:
    """Aggregate ensemble rewards with the aggregation called ``name``.

    Shorthand for ``Aggregation.parse(name, lam, beta).apply(members, axis)``.

    Example:
        >>> aggregate(np.array([[1.0], [3.0]]), "wco").tolist()
        [1.0]
    """
    return Aggregation.parse(name, lam=lam, beta=beta).apply(members, axis=axis)
