"""PF-PPO-style filtering: drop or down-weight samples whose reward is unreliable.

Why: PF-PPO ("Policy Filtration in RLHF") showed that training only on the
samples whose reward can be trusted improves the policy, because gradients
from mis-rewarded samples teach it the reward model's mistakes. Here
"trusted" is the reward model's own uncertainty (ensemble std), so no extra
data is needed. Numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardhedge.errors import ConfigError, unknown_option
from rewardhedge.types import RewardEstimate

__all__ = ["FILTER_MODES", "BatchFilter", "filter_by_uncertainty"]

FILTER_MODES: tuple[str, ...] = ("filter", "weight")


@dataclass(frozen=True)
class BatchFilter:
    """Which samples of a batch to train on, and with what weight.

    Attributes:
        mask: `(n,)` bool, True for kept samples.
        weights: `(n,)` float; 0 for dropped samples, mean 1 over kept ones.
        threshold: ``filter`` mode: the largest kept uncertainty (with
            ``keep``) or ``max_uncertainty``; ``weight`` mode: the scale
            ``s``. NaN for an empty batch.
    """

    mask: np.ndarray
    weights: np.ndarray
    threshold: float

    @property
    def n_kept(self) -> int:
        return int(self.mask.sum())

    @property
    def indices(self) -> np.ndarray:
        """Indices of the kept samples, ascending."""
        return np.flatnonzero(self.mask)


def _uncertainty(u: RewardEstimate | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(u, RewardEstimate):
        return np.sqrt(np.maximum(u.epistemic, 0.0))
    arr = np.asarray(u, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"uncertainty must have shape (n,), got {arr.shape}.")
    bad = np.flatnonzero(np.isnan(arr) | (arr < 0))
    if bad.size:
        raise ValueError(
            f"uncertainty[{bad[0]}] == {arr[bad[0]]!r}; uncertainties must be >= 0 (not NaN)."
        )
    return arr


def _n_keep(keep: float, n: int) -> int:
    """``ceil(keep·n)``, rounded first so 0.3·10 keeps 3, not 4."""
    return math.ceil(round(keep * n, 9))


def _check_number(name: str, value: Any, *, upper: float | None) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and not math.isnan(value)
    if ok and upper is not None:
        ok = 0 < value <= upper
    elif ok:
        ok = value >= 0
    if not ok:
        rule = "in (0, 1]" if upper is not None else ">= 0"
        raise ConfigError(f"{name} == {value!r}, must be a number {rule}.")
    return float(value)


def filter_by_uncertainty(
    uncertainty: RewardEstimate | np.ndarray | Sequence[float],
    *,
    keep: float | None = None,
    max_uncertainty: float | None = None,
    mode: str = "filter",
    groups: Sequence[Hashable] | None = None,
) -> BatchFilter:
    """Drop (or down-weight) the samples whose reward the model is least sure of.

    PF-PPO ("Policy Filtration in RLHF") trains only on samples whose reward
    is reliable, because gradients from mis-rewarded samples teach the policy
    the reward model's mistakes. Here reliability is the model's own
    uncertainty: the std of the ensemble (``uncertainty`` as an `(n,)` array of
    stds, or a :class:`RewardEstimate`, whose epistemic std is used).

    Modes:
        ``"filter"``: keep the ``ceil(keep·n)`` most certain samples
        (``0 < keep <= 1``; ``keep·n`` rounded to 9 decimals first, so 0.3 of
        10 keeps 3; at least one), or those with uncertainty
        ``<= max_uncertainty``; give exactly one of the two. Kept weights are 1.
        Ties go to the lower index. With ``groups`` (e.g. prompt ids, one GRPO
        group each) the rule applies within each group and every group keeps
        at least its most certain sample.
        ``"weight"``: keep all, with ``w_i = 1 / (1 + (u_i / s)²)`` for
        ``s`` = the median uncertainty (or ``max_uncertainty``), scaled to
        mean 1: a sample at ``s`` counts half as much as a certain one.
    """
    if mode not in FILTER_MODES:
        raise unknown_option("mode", mode, FILTER_MODES)
    u = _uncertainty(uncertainty)
    n = u.shape[0]
    if groups is not None and len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} samples; they must match.")
    if max_uncertainty is not None:
        max_uncertainty = _check_number("max_uncertainty", max_uncertainty, upper=None)
    if mode == "weight":
        if keep is not None or groups is not None:
            raise ConfigError("keep and groups are only used by mode='filter'; leave them None.")
        return _weights(u, max_uncertainty)
    if (keep is None) == (max_uncertainty is None):
        raise ConfigError(
            f"mode='filter' needs exactly one of keep (got {keep!r}) and "
            f"max_uncertainty (got {max_uncertainty!r})."
        )
    if keep is not None:
        keep = _check_number("keep", keep, upper=1.0)
    mask = np.zeros(n, dtype=bool)
    for idx in _group_indices(groups, n):
        order = idx[np.argsort(u[idx], kind="stable")]
        if keep is not None:
            mask[order[: _n_keep(keep, idx.size)]] = True
        else:
            ok = idx[u[idx] <= max_uncertainty]
            mask[ok if ok.size or groups is None else order[:1]] = True
    if keep is not None:
        threshold = float(u[mask].max()) if mask.any() else math.nan
    else:
        threshold = float(max_uncertainty)  # type: ignore[arg-type]
    return BatchFilter(mask, mask.astype(np.float64), threshold)


def _group_indices(groups: Sequence[Hashable] | None, n: int) -> list[np.ndarray]:
    if groups is None:
        return [np.arange(n)] if n else []
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    return [np.asarray(v, dtype=np.int64) for v in members.values()]


def _weights(u: np.ndarray, scale: float | None) -> BatchFilter:
    n = u.shape[0]
    if n == 0:
        return BatchFilter(np.zeros(0, dtype=bool), np.zeros(0), math.nan)
    s = float(np.median(u)) if scale is None else scale
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.where(u == 0, 0.0, u / s)  # s == 0: only certain samples get weight
        ratio = np.nan_to_num(ratio, nan=np.inf)  # inf / inf: s is inf, so is this sample
        w = 1.0 / (1.0 + ratio**2)
    total = w.sum()
    w = w * (n / total) if total > 0 else np.ones(n)  # all infinitely uncertain: uniform
    return BatchFilter(np.ones(n, dtype=bool), w, s)
