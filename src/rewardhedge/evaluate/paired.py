"""Paired bootstrap test: is model A better than model B on the same items?

Why: two reward models scored on the same evaluation pairs are not independent
samples. Most of the variance of each accuracy comes from which items happen
to be in the set, and that variance is shared. Resampling the *same* item
indices for both models (a paired bootstrap) cancels it, so a real difference
of a few points is detectable where two separate confidence intervals would
overlap.

The p-value follows Berg-Kirkpatrick et al., "An Empirical Investigation of
Statistical Significance in NLP" (2012): the bootstrap distribution of the
difference ``d*`` is shifted to be centred on the null (subtract the observed
``d``), and ``p`` is the share of replicates at least as far from the null as
the observation, ``(1 + #{|d* − d| >= |d|}) / (reps + 1)``. The ``+1`` counts
the observed sample itself, so ``p`` is never 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from rewardhedge.evaluate.pairwise import finite_1d

__all__ = ["PairedTest", "paired_bootstrap_test", "paired_grid_test"]

# Cap on resampled elements held at once (about 16 MB of int64 indices).
_BATCH_ELEMENTS = 2_000_000


class PairedTest(NamedTuple):
    """Result of :func:`paired_bootstrap_test`.

    A named tuple, hence immutable, so that this module needs nothing beyond
    numpy and ``typing`` (the evaluate package keeps its imports to those).
    """

    diff: float
    """``mean(a) - mean(b)``."""
    ci_low: float
    """Lower end of the percentile bootstrap interval of the difference."""
    ci_high: float
    """Upper end of the percentile bootstrap interval of the difference."""
    p_value: float
    """Two-sided p-value of "no difference", in ``(0, 1]``."""
    n: int
    """Number of items."""
    reps: int
    """Number of bootstrap replicates."""
    level: float
    """Confidence level of the interval."""

    def to_dict(self) -> dict[str, float | int]:
        """The fields as a plain dict (JSON-ready)."""
        return {
            "diff": self.diff,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "n": self.n,
            "reps": self.reps,
            "level": self.level,
        }


def _check_reps_level(reps: int, level: float) -> int:
    if isinstance(reps, bool) or not isinstance(reps, int | np.integer) or reps < 1:
        raise ValueError(f"reps == {reps!r}, must be an integer >= 1.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level == {level!r}, must be in (0, 1).")
    return int(reps)


def _from_replicates(boot: np.ndarray, diff: float, n: int, level: float) -> PairedTest:
    """Percentile interval and the shifted-null p-value of the replicates ``boot``."""
    extreme = int(np.count_nonzero(np.abs(boot - diff) >= abs(diff)))
    alpha = (1.0 - level) / 2.0
    low, high = np.percentile(boot, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return PairedTest(
        diff=diff,
        ci_low=float(low),
        ci_high=float(high),
        p_value=(1 + extreme) / (boot.shape[0] + 1),
        n=int(n),
        reps=int(boot.shape[0]),
        level=float(level),
    )


def paired_bootstrap_test(
    a: np.ndarray | Sequence[float],
    b: np.ndarray | Sequence[float],
    *,
    reps: int = 10000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedTest:
    """Paired bootstrap CI and two-sided p-value of ``mean(a) - mean(b)``.

    Every replicate draws ``n`` item indices with replacement and uses the
    same indices for both models: ``d* = mean(a*) - mean(b*)``.

    Args:
        a: `(n,)` per-item scores of model A, e.g. pairwise correctness
            (1 / 0.5 / 0 from :func:`~rewardhedge.evaluate.pairwise_correct`).
        b: `(n,)` per-item scores of model B on the same items, same order.
        reps: number of bootstrap replicates.
        level: confidence level of the interval, in (0, 1).
        seed: seed of the resampling generator; equal seeds give equal results.

    Returns:
        A :class:`PairedTest`. The interval is the ``(1 ± level)/2``
        percentiles of ``d*``; ``p = (1 + #{|d* − d| >= |d|}) / (reps + 1)``.
        If every per-item difference is 0 the answer is exact: ``diff = 0``,
        interval ``(0, 0)``, ``p = 1``.

    Raises:
        ValueError: if ``a`` and ``b`` are not 1-D, differ in length, are
            empty or hold NaN or infinity; if ``reps < 1`` or ``level`` is
            outside (0, 1).

    Example:
        >>> a = [1.0] * 40 + [0.0] * 10
        >>> b = [1.0] * 25 + [0.0] * 25
        >>> t = paired_bootstrap_test(a, b, reps=2000)
        >>> round(t.diff, 2), bool(t.ci_low > 0.0), bool(t.p_value < 0.01)
        (0.3, True, True)
        >>> paired_bootstrap_test([1.0, 0.5], [1.0, 0.5]).to_dict()["p_value"]
        1.0
    """
    x = finite_1d(a, "a")
    y = finite_1d(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b differ in length: {x.shape[0]} vs {y.shape[0]}.")
    n = x.shape[0]
    if n == 0:
        raise ValueError("a and b are empty; need at least one item.")
    reps = _check_reps_level(reps, level)
    delta = x - y
    if not delta.any():
        return PairedTest(0.0, 0.0, 0.0, 1.0, n, reps, float(level))
    # mean(a*) - mean(b*) == mean((a - b)*) for paired indices; the observed
    # difference is computed the same way as the replicates.
    diff = float(delta.mean())
    rng = np.random.default_rng(seed)
    chunk = max(1, _BATCH_ELEMENTS // n)
    boot = np.empty(reps, dtype=np.float64)
    for start in range(0, reps, chunk):
        k = min(chunk, reps - start)
        idx = rng.integers(0, n, size=(k, n))
        boot[start : start + k] = delta[idx].mean(axis=1)
    return _from_replicates(boot, diff, n, level)


def paired_grid_test(
    a: np.ndarray | Sequence[Sequence[float]],
    b: np.ndarray | Sequence[Sequence[float]],
    *,
    reps: int = 10000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedTest:
    """Paired bootstrap of ``mean(a) - mean(b)`` over a `(runs, items)` grid.

    Why: in the overoptimisation lab two curves share their seeds (labels and
    initialisation) and their prompts, and both sources of variance are shared
    by the two methods. Each replicate draws runs *and* items with replacement,
    the same ones for both, so the interval covers a new draw of either (a
    two-way bootstrap), while their shared variance cancels in the difference.

    Args:
        a: `(runs, items)` scores of method A, e.g. the gold of its best-of-n
            pick per seed and prompt.
        b: `(runs, items)` scores of method B on the same runs and items.
        reps, level, seed: as in :func:`paired_bootstrap_test`.

    Returns:
        A :class:`PairedTest` with ``n`` = runs · items; interval and p-value
        are computed as in :func:`paired_bootstrap_test`.

    Raises:
        ValueError: on shapes that are not equal 2-D grids, an empty grid,
            NaN or infinity, ``reps < 1`` or ``level`` outside (0, 1).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> base = rng.normal(size=(5, 80))  # shared seed and prompt effects
        >>> t = paired_grid_test(base + 0.3, base, reps=2000)
        >>> round(t.diff, 6), round(t.ci_low, 6), round(t.ci_high, 6)
        (0.3, 0.3, 0.3)
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"a and b must be 2-D grids of one shape, got {x.shape} and {y.shape}.")
    if x.size == 0:
        raise ValueError("a and b are empty; need at least one run and one item.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("a and b must hold finite values only.")
    reps = _check_reps_level(reps, level)
    delta = x - y
    runs, items = delta.shape
    if not delta.any():
        return PairedTest(0.0, 0.0, 0.0, 1.0, delta.size, reps, float(level))
    diff = float(delta.mean())
    rng = np.random.default_rng(seed)
    # A replicate's mean is w_runs · delta · w_items / (runs · items), with w the counts
    # of each run and item among the draws: no (reps, runs, items) array is built.
    w_runs = np.stack([np.bincount(r, minlength=runs) for r in rng.integers(0, runs, (reps, runs))])
    w_items = np.stack(
        [np.bincount(i, minlength=items) for i in rng.integers(0, items, (reps, items))]
    )
    boot = np.einsum("rs,sp,rp->r", w_runs, delta, w_items) / (runs * items)
    return _from_replicates(boot, diff, int(delta.size), level)
