"""Does a proxy beat length, or only ride it? Length controls for best-of-n picks.

On real pools a length-biased gold (an LLM judge, a reward model) makes "take
the longest candidate" a strong picker, and a proxy that learned length looks
good for the wrong reason. For a set of picks (one candidate per pool) this
reports, beside the pick's mean gold:

- the gold of the longest and of the shortest candidate of each pool;
- the share of picks that are their pool's longest candidate;
- a length-matched comparison: the pick's gold minus the mean gold of the other
  candidates of its pool within ±``tolerance`` of its length (characters), over
  the pools that have one. Above 0: at equal length, the proxy still picks better
  than chance; near 0: it only rides length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardhedge.evaluate.pairwise import bootstrap_ci

MATCH_TOLERANCE = 0.10
"""Relative length difference (characters) within which two candidates count as equally long."""


def _extreme_gold(lengths: np.ndarray, gold: np.ndarray, longest: bool) -> float:
    """Mean gold of the pool's longest (shortest) candidates (ties averaged)."""
    target = lengths.max() if longest else lengths.min()
    return float(gold[lengths == target].mean())


def length_baselines(lengths: Sequence[np.ndarray], gold: Sequence[np.ndarray]) -> dict[str, float]:
    """Mean over pools of the longest, shortest and a random candidate's gold."""
    return {
        "longest": float(
            np.mean([_extreme_gold(n, g, True) for n, g in zip(lengths, gold, strict=True)])
        ),
        "shortest": float(
            np.mean([_extreme_gold(n, g, False) for n, g in zip(lengths, gold, strict=True)])
        ),
        "random": float(np.mean([g.mean() for g in gold])),
    }


def length_controls(
    picks: Sequence[int] | np.ndarray,
    lengths: Sequence[np.ndarray],
    gold: Sequence[np.ndarray],
    tolerance: float = MATCH_TOLERANCE,
    seed: int = 0,
) -> dict[str, Any]:
    """Length controls for one pick per pool, or one per seed and pool.

    Args:
        picks: `(P,)` or `(seeds, P)` indices into each pool's candidates; with seeds,
            each pool's numbers are averaged over seeds first, so the CI resamples pools.
        lengths, gold: per pool, the candidates' lengths (characters) and gold.
        tolerance: relative length difference that counts as "similar length".

    Returns:
        ``{"gold", "longest_fraction", "matched_diff", "matched_ci_low",
        "matched_ci_high", "n_matched", "n_pools"}``; the matched numbers are ``None``
        when no pick has a candidate of similar length in its pool.
    """
    grid = np.atleast_2d(np.asarray(picks, dtype=np.int64))
    picked_gold, is_longest, diffs = [], [], []
    for p, (n, g) in enumerate(zip(lengths, gold, strict=True)):
        n, g = np.asarray(n, dtype=np.float64), np.asarray(g, dtype=np.float64)
        seeds_gold, seeds_longest, seeds_diff = [], [], []
        for i in grid[:, p]:
            seeds_gold.append(g[i])
            seeds_longest.append(n[i] == n.max())
            others = np.arange(len(n)) != i
            similar = others & (np.abs(n - n[i]) <= tolerance * max(n[i], 1.0))
            if similar.any():
                seeds_diff.append(g[i] - g[similar].mean())
        picked_gold.append(np.mean(seeds_gold))
        is_longest.append(np.mean(seeds_longest))
        if seeds_diff:
            diffs.append(np.mean(seeds_diff))
    out: dict[str, Any] = {
        "gold": float(np.mean(picked_gold)),
        "longest_fraction": float(np.mean(is_longest)),
        "n_pools": len(picked_gold),
        "n_matched": len(diffs),
        "matched_diff": None,
        "matched_ci_low": None,
        "matched_ci_high": None,
    }
    if diffs:
        low, high = bootstrap_ci(np.asarray(diffs), seed=seed)
        out |= {
            "matched_diff": float(np.mean(diffs)),
            "matched_ci_low": low,
            "matched_ci_high": high,
        }
    return out
