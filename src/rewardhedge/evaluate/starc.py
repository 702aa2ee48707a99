"""STARC distance between two reward functions, measured on a data set.

Why: two reward models can disagree on every raw number and still induce the
same behaviour. Skalse et al., "STARC: A General Framework for Quantifying
Differences Between Reward Functions", measure a distance that ignores exactly
the differences that cannot change the optimal policy, in three steps:

1. **canonicalise**: remove what never changes which response is best. For a
   reward on (prompt, response) pairs that is a per-prompt constant shift, so
   each reward has the mean reward of its prompt subtracted;
2. **normalise**: divide by the L2 norm, removing positive scaling;
3. **metric**: half the L2 distance of the two unit vectors, so the distance
   lies in [0, 1]: 0 when ``r2 = a·r1 + b(prompt)`` with ``a > 0`` (same
   ranking of responses within every prompt, same relative gaps), 1 when
   ``r2 = -r1`` (every preference reversed).

The distance is a pseudometric: symmetric, and it obeys the triangle
inequality. It is undefined (``nan``) when a reward is constant within every
prompt, e.g. when every prompt has a single response: such a reward carries no
preference information at all.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np

__all__ = [
    "canonicalise",
    "starc_bootstrap_ci",
    "starc_distance",
    "starc_pairwise",
    "starc_to_reference",
]

# A canonicalised reward whose norm is below this fraction of the raw reward's
# norm is treated as zero (only rounding of the per-prompt means is left).
_ZERO_RTOL = 1e-10

# Cap on resampled elements held at once (about 16 MB of float64).
_BATCH_ELEMENTS = 2_000_000


def _group_codes(groups: Sequence[Hashable] | np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Integer code of each item's group (first-seen order) and the number of groups."""
    if len(groups) != n:
        raise ValueError(f"rewards and groups differ in length: {n} vs {len(groups)}.")
    index: dict[Hashable, int] = {}
    try:
        codes = np.fromiter((index.setdefault(g, len(index)) for g in groups), np.int64, n)
    except TypeError as e:
        raise ValueError(f"groups must hold hashable labels (e.g. prompt strings): {e}") from None
    return codes, len(index)


def _as_rewards(x: np.ndarray | Sequence[float], name: str, ndim: int = 1) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        shape = "(n,)" if ndim == 1 else "(K, n)"
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}.")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} contains {int(bad.sum())} NaN or infinite value(s).")
    return arr


def _centre(rows: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Subtract from each entry of each row the mean of its group within that row."""
    if rows.shape[1] == 0:
        return rows.copy()
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    sums = np.add.reduceat(rows[:, order], starts, axis=1)
    return rows - (sums / counts)[:, codes]


def _scale_rows(rows: np.ndarray) -> np.ndarray:
    """Rows divided by their largest absolute value (all-zero rows stay zero).

    The distance ignores positive scale, and working at scale ~1 keeps squares
    from underflowing (rewards ~1e-200) or overflowing (~1e200).
    """
    peak = np.max(np.abs(rows), axis=1, keepdims=True, initial=0.0)
    return rows / np.where(peak > 0.0, peak, 1.0)


def _unit_rows(rows: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Canonicalised and normalised rows; a row that canonicalises to zero becomes NaN."""
    rows = _scale_rows(rows)
    c = _centre(rows, codes, n_groups)
    norm = np.linalg.norm(c, axis=1)
    zero = (norm == 0.0) | (norm <= _ZERO_RTOL * np.linalg.norm(rows, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = c / norm[:, None]
    unit[zero] = np.nan
    return unit


def _distance_rows(unit: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """0.5·‖u − ref‖₂ per row, clipped to [0, 1] against rounding; NaN rows stay NaN."""
    d = 0.5 * np.linalg.norm(unit - ref, axis=-1)
    return np.minimum(d, 1.0)


def canonicalise(
    rewards: np.ndarray | Sequence[float], groups: Sequence[Hashable] | np.ndarray
) -> np.ndarray:
    """Remove the per-prompt constant from a reward: subtract each group's mean.

    Adding a constant to every response of one prompt never changes which
    response is preferred, so STARC compares rewards only after removing it.

    Args:
        rewards: `(n,)` rewards, one per (prompt, response) item.
        groups: `(n,)` hashable group labels, usually the prompt strings.

    Returns:
        `(n,)` float array: ``rewards[i]`` minus the mean reward of the items
        sharing ``groups[i]``. Every group sums to zero.

    Raises:
        ValueError: if ``rewards`` is not 1-D, holds NaN or infinity, or its
            length differs from ``groups``; or a label is not hashable.

    Example:
        >>> canonicalise([1.0, 3.0, 10.0], ["p", "p", "q"]).tolist()
        [-1.0, 1.0, 0.0]
    """
    r = _as_rewards(rewards, "rewards")
    codes, n_groups = _group_codes(groups, r.shape[0])
    return _centre(r[None, :], codes, n_groups)[0]


def starc_distance(
    r1: np.ndarray | Sequence[float],
    r2: np.ndarray | Sequence[float],
    groups: Sequence[Hashable] | np.ndarray,
) -> float:
    """STARC distance of two rewards on the same items: canonicalise, normalise, ½·L2.

    Args:
        r1: `(n,)` rewards of the first model.
        r2: `(n,)` rewards of the second model on the same items.
        groups: `(n,)` group (prompt) label of each item.

    Returns:
        A float in [0, 1]: 0 when ``r2 = a·r1 + b(prompt)`` with ``a > 0``, 1
        when ``r2 = -r1``. ``nan`` when either reward canonicalises to (numerically)
        zero, e.g. every prompt has a single response, or ``n == 0``.

    Raises:
        ValueError: if the shapes differ or are not 1-D, or a reward is NaN or
            infinite.

    Example:
        >>> groups = ["p", "p", "q", "q"]
        >>> round(starc_distance([0.0, 1.0, 5.0, 7.0], [10.0, 12.0, -1.0, 3.0], groups), 12)
        0.0
        >>> round(starc_distance([0.0, 1.0, 5.0, 7.0], [1.0, 0.0, 7.0, 5.0], groups), 12)
        1.0
        >>> starc_distance([1.0, 2.0], [2.0, 1.0], ["p", "q"])
        nan
    """
    a = _as_rewards(r1, "r1")
    b = _as_rewards(r2, "r2")
    if a.shape != b.shape:
        raise ValueError(f"r1 and r2 differ in length: {a.shape[0]} vs {b.shape[0]}.")
    codes, n_groups = _group_codes(groups, a.shape[0])
    if n_groups == 0:
        return math.nan
    unit = _unit_rows(np.stack([a, b]), codes, n_groups)
    return float(_distance_rows(unit[0], unit[1]))


def starc_to_reference(
    members: np.ndarray | Sequence[Sequence[float]],
    reference: np.ndarray | Sequence[float],
    groups: Sequence[Hashable] | np.ndarray,
) -> np.ndarray:
    """STARC distance of each of K rewards to one reference reward.

    Typical use: how far each ensemble member is from the ensemble mean, i.e.
    how much the members disagree about *preferences* rather than about
    offsets or scale.

    Args:
        members: `(K, n)` rewards, one row per member.
        reference: `(n,)` reference rewards on the same items (e.g. the mean
            of the members).
        groups: `(n,)` group (prompt) label of each item.

    Returns:
        `(K,)` float array of distances in [0, 1]; ``nan`` for a member that
        canonicalises to zero, and everywhere if the reference does.

    Raises:
        ValueError: if ``members`` is not 2-D, the lengths differ, or a value
            is NaN or infinite.

    Example:
        >>> members = [[0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]]  # orthogonal; same
        >>> d = starc_to_reference(members, [1.0, 2.0, 5.0, 6.0], ["p", "p", "q", "q"])
        >>> np.round(d, 4).tolist()  # sqrt(2) / 2 and 0
        [0.7071, 0.0]
    """
    m = _as_rewards(members, "members", ndim=2)
    ref = _as_rewards(reference, "reference")
    if m.shape[1] != ref.shape[0]:
        raise ValueError(f"members and reference differ in length: {m.shape[1]} vs {ref.shape[0]}.")
    codes, n_groups = _group_codes(groups, ref.shape[0])
    if n_groups == 0:
        return np.full(m.shape[0], np.nan)
    # One pass over members and reference together: a member equal to the
    # reference gets bit-identical unit vectors, hence distance exactly 0.
    unit = _unit_rows(np.vstack([m, ref[None, :]]), codes, n_groups)
    return _distance_rows(unit[:-1], unit[-1])


def starc_pairwise(
    members: np.ndarray | Sequence[Sequence[float]], groups: Sequence[Hashable] | np.ndarray
) -> np.ndarray:
    """STARC distance between every two of K rewards: a `(K, K)` symmetric matrix.

    Typical use: how differently ensemble members rank responses (members that
    herd have distances near 0 whatever their offsets and scales).

    Args:
        members: `(K, n)` rewards, one row per member.
        groups: `(n,)` group (prompt) label of each item.

    Returns:
        `(K, K)` float array in [0, 1] with a zero diagonal; ``nan`` in the
        rows and columns of members that canonicalise to zero.

    Raises:
        ValueError: if ``members`` is not 2-D, the lengths differ, or a value
            is NaN or infinite.

    Example:
        >>> d = starc_pairwise([[0.0, 1.0], [5.0, 7.0], [1.0, 0.0]], ["p", "p"])
        >>> np.round(d, 12).tolist()
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    """
    m = _as_rewards(members, "members", ndim=2)
    codes, n_groups = _group_codes(groups, m.shape[1])
    if n_groups == 0:
        return np.full((m.shape[0], m.shape[0]), np.nan)
    unit = _unit_rows(m, codes, n_groups)
    out = _distance_rows(unit[:, None, :], unit[None, :, :])
    ok = ~np.isnan(unit[:, 0])
    np.fill_diagonal(out, np.where(ok, 0.0, np.nan))
    return out


def starc_bootstrap_ci(
    r1: np.ndarray | Sequence[float],
    r2: np.ndarray | Sequence[float],
    groups: Sequence[Hashable] | np.ndarray,
    *,
    reps: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`starc_distance`, resampling whole prompts.

    Items of one prompt are not independent (they share the prompt's offset),
    so the resampling unit is the group: each replicate draws as many groups
    as there are, with replacement. A group drawn twice counts twice and each
    copy is centred on its own, as if it were a separate prompt. Because
    centring acts within a group, each group's contribution to the norms and
    the inner product of the canonicalised rewards is precomputed once, and a
    replicate is a weighted sum of those: no item-level resampling is needed.

    Args:
        r1: `(n,)` rewards of the first model.
        r2: `(n,)` rewards of the second model on the same items.
        groups: `(n,)` group (prompt) label of each item.
        reps: number of bootstrap replicates.
        level: confidence level in (0, 1).
        seed: seed of the resampling generator; equal seeds give equal intervals.

    Returns:
        ``(low, high)``: the ``(1 ± level)/2`` percentiles of the replicate
        distances. Replicates whose distance is undefined (a reward constant
        within every drawn group) are dropped; ``(nan, nan)`` if all are.
        Replicate distances near 0 carry an absolute rounding error of about
        1e-8 (they are computed from a cosine).

    Raises:
        ValueError: on bad shapes, NaN or infinite rewards, ``reps < 1`` or
            ``level`` outside (0, 1).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> groups = np.repeat(np.arange(30), 4)
        >>> r1 = rng.normal(size=120)
        >>> low, high = starc_bootstrap_ci(r1, r1 + 0.5 * rng.normal(size=120), groups)
        >>> bool(0.0 < low < high < 1.0)
        True
    """
    a = _as_rewards(r1, "r1")
    b = _as_rewards(r2, "r2")
    if a.shape != b.shape:
        raise ValueError(f"r1 and r2 differ in length: {a.shape[0]} vs {b.shape[0]}.")
    if isinstance(reps, bool) or not isinstance(reps, int | np.integer) or reps < 1:
        raise ValueError(f"reps == {reps!r}, must be an integer >= 1.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level == {level!r}, must be in (0, 1).")
    codes, n_groups = _group_codes(groups, a.shape[0])
    if n_groups == 0:
        return (math.nan, math.nan)
    rows = _scale_rows(np.stack([a, b]))
    c = _centre(rows, codes, n_groups)
    # Per group: ‖c1‖², ‖c2‖², <c1, c2>, ‖r1‖², ‖r2‖² (the last two for the zero test).
    per_item = np.stack([c[0] ** 2, c[1] ** 2, c[0] * c[1], rows[0] ** 2, rows[1] ** 2], axis=1)
    per_group = np.stack(
        [np.bincount(codes, weights=col, minlength=n_groups) for col in per_item.T], axis=1
    )

    rng = np.random.default_rng(seed)
    chunk = max(1, _BATCH_ELEMENTS // (5 * n_groups))
    out = np.empty(int(reps), dtype=np.float64)
    tol = _ZERO_RTOL**2
    for start in range(0, int(reps), chunk):
        k = min(chunk, int(reps) - start)
        drawn = rng.integers(0, n_groups, size=(k, n_groups))
        s11, s22, s12, q1, q2 = per_group[drawn].sum(axis=1).T
        zero = (s11 == 0.0) | (s22 == 0.0) | (s11 <= tol * q1) | (s22 <= tol * q2)
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = np.clip(s12 / np.sqrt(s11 * s22), -1.0, 1.0)
        # ½·‖u1 − u2‖ = ½·sqrt(2 − 2·cos) = sqrt((1 − cos) / 2).
        out[start : start + k] = np.where(zero, np.nan, np.sqrt((1.0 - cos) / 2.0))
    kept = out[~np.isnan(out)]
    if kept.size == 0:
        return (math.nan, math.nan)
    alpha = (1.0 - level) / 2.0
    low, high = np.percentile(kept, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return (float(low), float(high))
