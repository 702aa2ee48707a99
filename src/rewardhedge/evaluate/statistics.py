"""Aggregate scores over seeds and tasks with honest uncertainty (rliable-equivalent).

Why: comparing aggregations (mean vs WCO vs UWO …) over a handful of seeds is
exactly the few-runs regime of Agarwal et al., "Deep RL at the Edge of the
Statistical Precipice". Their recommendations, implemented by the ``rliable``
package, are the interquartile mean (robust to an outlier seed, less noisy
than the median) and stratified bootstrap confidence intervals. ``rliable``
itself fails to import with current pandas/arch, so this module implements the
same two things on numpy/scipy:

- :func:`iqm` is ``rliable.metrics.aggregate_iqm``:
  ``scipy.stats.trim_mean(scores, 0.25, axis=None)``, the mean of the middle
  50% of *all* entries (runs × tasks pooled).
- :func:`stratified_bootstrap_ci` is ``rliable.library.StratifiedBootstrap``
  with ``conf_int(method="percentile")``: every replicate resamples the runs
  with replacement *independently within each task* (column), so each task
  keeps its number of runs and tasks are never mixed; the interval is the
  percentile interval of the replicate statistics. Numbers differ from
  rliable's only through the random generator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = [
    "IntervalEstimate",
    "interval_estimates",
    "iqm",
    "iqm_of_run_means",
    "stratified_bootstrap_ci",
]

# Cap on resampled elements held at once (about 16 MB of float64).
_BATCH_ELEMENTS = 2_000_000


def iqm(x: np.ndarray) -> float:
    """Interquartile mean of all entries: ``trim_mean(x.ravel(), 0.25)``.

    ``int(0.25·n)`` values are cut from each end of the sorted entries and the
    rest averaged (rliable's ``aggregate_iqm``).

    Example:
        >>> iqm(np.array([[1.0, 2.0], [3.0, 100.0]]))  # mean of 2 and 3
        2.5
    """
    arr = np.asarray(x, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError("iqm of an empty array is undefined.")
    return float(stats.trim_mean(arr, 0.25))


def iqm_of_run_means(x: np.ndarray) -> float:
    """IQM over runs of each run's mean over tasks.

    For a `(seeds, prompts)` array this is the interquartile mean over seeds
    of a policy's expected score: trimming happens between seeds, never
    between prompts, so a failure on a minority of prompts still counts.

    Example:
        >>> iqm_of_run_means(np.array([[1.0, 3.0], [2.0, 2.0], [0.0, 0.0], [9.0, 9.0]]))
        2.0
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    return float(stats.trim_mean(arr.mean(axis=1), 0.25))


def _batched_iqm_of_run_means(batch: np.ndarray) -> np.ndarray:
    return stats.trim_mean(batch.mean(axis=2), 0.25, axis=1)


def _batched_iqm(batch: np.ndarray) -> np.ndarray:
    return stats.trim_mean(batch.reshape(batch.shape[0], -1), 0.25, axis=1)


def _batched_mean(batch: np.ndarray) -> np.ndarray:
    return batch.reshape(batch.shape[0], -1).mean(axis=1)


def _batched_median(batch: np.ndarray) -> np.ndarray:
    return np.median(batch.reshape(batch.shape[0], -1), axis=1)


# Statistics of all entries that have a vectorised form over a `(b, runs, tasks)` batch.
_BATCHED: dict[Callable[..., object], Callable[[np.ndarray], np.ndarray]] = {
    iqm: _batched_iqm,
    np.mean: _batched_mean,
    np.median: _batched_median,
    iqm_of_run_means: _batched_iqm_of_run_means,
}


class IntervalEstimate(NamedTuple):
    """A point estimate with its confidence interval ``[low, high]``.

    A named tuple (``point, low, high = est`` works), so that this module
    needs nothing beyond numpy, scipy and ``typing``.
    """

    point: float
    low: float
    high: float

    def covers(self, value: float) -> bool:
        """Whether ``low <= value <= high``."""
        return self.low <= value <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low

    def to_dict(self) -> dict[str, float]:
        return {"point": self.point, "low": self.low, "high": self.high}


def _as_scores(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2:
        raise ValueError(f"scores must have shape (runs, tasks) or (runs,), got {s.shape}.")
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"scores is empty (shape {s.shape}).")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite (no NaN or inf).")
    return s


def stratified_bootstrap_ci(
    scores: np.ndarray,
    statistic: Callable[[np.ndarray], float] = iqm,
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> IntervalEstimate:
    """Point estimate and stratified-bootstrap percentile interval of ``statistic``.

    Args:
        scores: `(runs, tasks)` scores (e.g. one row per seed, one column per
            task or data set), or `(runs,)` for a single task.
        statistic: a function of the `(runs, tasks)` array returning a scalar.
            :func:`iqm`, ``np.mean`` and ``np.median`` (all of the entries)
            are vectorised over replicates; any other callable is called once
            per replicate.
        reps: number of bootstrap replicates.
        confidence: interval level in (0, 1).
        seed: seed (or generator) of the resampling; equal seeds give equal
            intervals.

    Returns:
        ``IntervalEstimate(point=statistic(scores), low, high)``, the
        percentiles ``(1 ± confidence)/2`` of the replicate statistics.
        All-equal scores give the degenerate interval at that value.

    Example:
        >>> est = stratified_bootstrap_ci(np.arange(10.0), np.mean, reps=500)
        >>> bool(est.low < est.point == 4.5 < est.high)
        True
    """
    s = _as_scores(scores)
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise ValueError(f"reps == {reps!r}, must be an integer >= 1.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence == {confidence!r}, must be in (0, 1).")
    batched = _BATCHED.get(statistic)
    point = float(batched(s[None])[0]) if batched is not None else float(statistic(s))
    if np.all(s == s.flat[0]):
        return IntervalEstimate(point, point, point)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    runs, tasks = s.shape
    cols = np.arange(tasks)
    chunk = max(1, _BATCH_ELEMENTS // (runs * tasks))
    out = np.empty(int(reps), dtype=np.float64)
    for start in range(0, int(reps), chunk):
        b = min(chunk, int(reps) - start)
        # Row indices drawn per (replicate, run, task): resampling within each column.
        idx = rng.integers(0, runs, size=(b, runs, tasks))
        sample = s[idx, cols]
        if batched is not None:
            out[start : start + b] = batched(sample)
        else:
            out[start : start + b] = [float(statistic(x)) for x in sample]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(out, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return IntervalEstimate(point, float(low), float(high))


def interval_estimates(
    scores: Mapping[str, np.ndarray],
    statistic: Callable[[np.ndarray], float] = iqm,
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, IntervalEstimate]:
    """:func:`stratified_bootstrap_ci` for each named score array.

    Every entry is bootstrapped with the same ``seed``, so arrays of equal
    shape are resampled with the same indices (common random numbers).

    Example:
        >>> out = interval_estimates({"mean": np.ones((3, 2)), "wco": np.zeros((3, 2))})
        >>> out["wco"].to_dict()
        {'point': 0.0, 'low': 0.0, 'high': 0.0}
    """
    return {
        name: stratified_bootstrap_ci(arr, statistic, reps=reps, confidence=confidence, seed=seed)
        for name, arr in scores.items()
    }
