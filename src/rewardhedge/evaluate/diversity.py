"""How different an ensemble's members are: measured, not assumed.

Why: members that share one frozen representation and differ only by seed
and bootstrap resample tend to make the same mistakes, and then their
disagreement cannot hedge. Two numbers tell whether an option for diverse
members (``EnsembleConfig.diversity``) buys anything:

- the members' mean pairwise STARC distance on in-distribution items: how
  differently they *rank* responses, ignoring per-prompt offsets and scale
  (0: every member induces the same preferences);
- their disagreement (the std over members of each item's reward, averaged
  over items) on in-distribution items and on shifted ones; useful
  disagreement grows under shift (``shift_ratio`` > 1).

A Bradley-Terry member's offset is arbitrary and its scale is set by the
regulariser, so by default each member is standardised with its own mean and
std on the in-distribution items (the same affine map is applied to its
shifted rewards) before the std over members is taken.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from rewardhedge.evaluate.starc import starc_pairwise

__all__ = ["member_diversity"]


def _members(x: np.ndarray | Sequence[Sequence[float]], name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have shape (K, n) with n >= 1, got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return arr


def _disagreement(members: np.ndarray) -> float:
    """Mean over items of the std over members; exactly 0 where all members agree
    (``np.std`` of equal values can be ~1e-17, which would make a ratio meaningless)."""
    spread = members.std(axis=0)
    spread[np.ptp(members, axis=0) == 0.0] = 0.0
    return float(spread.mean())


def member_diversity(
    members_in: np.ndarray | Sequence[Sequence[float]],
    groups_in: Sequence[Hashable] | np.ndarray,
    members_shift: np.ndarray | Sequence[Sequence[float]] | None = None,
    *,
    standardize: bool = True,
) -> dict[str, Any]:
    """Pairwise STARC distance and disagreement of K members, in and out of distribution.

    Args:
        members_in: `(K, n)` member rewards on in-distribution items
            (``RewardEstimate.members``).
        groups_in: `(n,)` prompt of each in-distribution item (the STARC groups).
        members_shift: `(K, m)` rewards of the same members on shifted items, or None.
        standardize: put each member on its in-distribution mean 0, std 1
            first (see the module docstring); False uses the raw rewards.

    Returns:
        ``{"n_members", "starc_pairwise_mean", "starc_pairwise_min",
        "starc_pairwise_max", "disagreement_in", "disagreement_shift",
        "shift_ratio"}``; the last two are None without ``members_shift``
        (the ratio also when the members agree exactly in distribution), and
        the STARC entries are None with a single member.

    Raises:
        ValueError: on bad shapes, NaN or infinite rewards, or members
            that differ in number between the two sets.

    Example:
        >>> r = np.array([[0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0]])  # 2nd = 2·1st + 1
        >>> d = member_diversity(r, ["p", "p", "q", "q"], [[0.0, 4.0], [1.0, 1.0]])
        >>> round(d["starc_pairwise_mean"], 12), round(d["disagreement_in"], 12)
        (0.0, 0.0)
        >>> # standardised shifted rewards: (-1.342, 2.236) and (-1.342, -1.342)
        >>> round(d["disagreement_shift"], 4)  # mean of the stds 0 and 1.789
        0.8944
    """
    inside = _members(members_in, "members_in")
    k = inside.shape[0]
    shifted = None if members_shift is None else _members(members_shift, "members_shift")
    if shifted is not None and shifted.shape[0] != k:
        raise ValueError(
            f"members_shift has {shifted.shape[0]} members, members_in has {k}; "
            "they must come from the same model."
        )
    if standardize:
        mean = inside.mean(axis=1, keepdims=True)
        std = inside.std(axis=1, keepdims=True)
        std = np.where(std > 0.0, std, 1.0)
        inside = (inside - mean) / std
        shifted = None if shifted is None else (shifted - mean) / std
    pairs = None
    if k > 1:
        dist = starc_pairwise(inside, groups_in)
        pairs = dist[np.triu_indices(k, 1)]
    dis_in = _disagreement(inside)
    dis_shift = None if shifted is None else _disagreement(shifted)
    return {
        "n_members": k,
        "starc_pairwise_mean": None if pairs is None else float(np.nanmean(pairs)),
        "starc_pairwise_min": None if pairs is None else float(np.nanmin(pairs)),
        "starc_pairwise_max": None if pairs is None else float(np.nanmax(pairs)),
        "disagreement_in": dis_in,
        "disagreement_shift": dis_shift,
        "shift_ratio": None if dis_shift is None or dis_in == 0.0 else dis_shift / dis_in,
    }
