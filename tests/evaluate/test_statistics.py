"""rliable-equivalent IQM and stratified bootstrap: known answers, stratification, coverage."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

import rewardhedge.evaluate.statistics as stats_mod
from rewardhedge.evaluate.statistics import (
    IntervalEstimate,
    interval_estimates,
    iqm,
    stratified_bootstrap_ci,
)

# --- IQM ---------------------------------------------------------------------------------


def test_iqm_known_answers():
    # 10 entries: int(2.5) = 2 cut from each end of 1..10, mean of 3..8.
    assert iqm(np.array([10, 1, 9, 2, 8, 3, 7, 4, 6, 5], dtype=float)) == 5.5
    assert iqm(np.arange(1.0, 9.0)) == 4.5  # mean of 3, 4, 5, 6
    # Pooled over runs x tasks; the outlier 100 is cut.
    assert iqm(np.array([[1.0, 100.0], [2.0, 3.0]])) == 2.5
    # Fewer than 4 entries: nothing is cut.
    assert iqm(np.array([1.0, 2.0, 9.0])) == 4.0
    assert isinstance(iqm([1.0]), float)


@settings(max_examples=50, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 9), st.integers(1, 5)),
        elements=st.floats(-1e6, 1e6, allow_nan=False),
    )
)
def test_iqm_equals_trim_mean_of_all_entries(x):
    assert iqm(x) == pytest.approx(stats.trim_mean(x, 0.25, axis=None), rel=1e-12, abs=1e-9)
    s = np.sort(x.ravel())
    cut = int(0.25 * s.size)
    assert iqm(x) == pytest.approx(s[cut : s.size - cut].mean(), rel=1e-12, abs=1e-9)


def test_iqm_empty():
    with pytest.raises(ValueError, match="empty"):
        iqm(np.array([]))


# --- stratified bootstrap ----------------------------------------------------------------


def test_point_and_interval_basics():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(10, 4))
    est = stratified_bootstrap_ci(scores, reps=1000)
    assert isinstance(est, IntervalEstimate)
    assert est.point == iqm(scores)
    assert est.low < est.point < est.high
    assert est.covers(est.point)
    point, low, high = est
    assert est.width == high - low
    assert est.to_dict() == {"point": point, "low": low, "high": high}


def test_seed_reproducible():
    scores = np.random.default_rng(1).normal(size=(8, 3))
    a = stratified_bootstrap_ci(scores, reps=500, seed=3)
    assert stratified_bootstrap_ci(scores, reps=500, seed=3) == a
    assert stratified_bootstrap_ci(scores, reps=500, seed=4) != a
    gen = stratified_bootstrap_ci(scores, reps=500, seed=np.random.default_rng(3))
    assert gen == a


def test_interval_narrows_with_more_runs():
    rng = np.random.default_rng(2)
    small = stratified_bootstrap_ci(rng.normal(size=(8, 3)), np.mean, reps=1000)
    large = stratified_bootstrap_ci(rng.normal(size=(512, 3)), np.mean, reps=1000)
    # Width scales like 1/sqrt(runs): 8x narrower in theory.
    assert large.width < small.width / 4


def test_constant_scores_degenerate():
    est = stratified_bootstrap_ci(np.full((5, 3), 0.7), reps=100)
    assert est == IntervalEstimate(est.point, est.point, est.point)
    assert est.point == pytest.approx(0.7)
    # One run per task: every replicate is the data itself.
    one = stratified_bootstrap_ci(np.array([[1.0, 5.0, 9.0]]), np.mean, reps=100)
    assert one.low == one.high == one.point == 5.0


@pytest.mark.parametrize("statistic", [np.mean, iqm])
def test_stratification_never_mixes_tasks_vectorised(statistic):
    """Columns constant at 0 and 100: any stratified replicate has half of each,
    so its mean and IQM are exactly 50; mixing columns would spread them."""
    scores = np.column_stack([np.zeros(4), np.full(4, 100.0)])
    est = stratified_bootstrap_ci(scores, statistic, reps=500)
    assert est.point == est.low == est.high == 50.0


def test_stratification_never_mixes_tasks_generic():
    rng = np.random.default_rng(3)
    scores = np.column_stack(
        [rng.uniform(0, 1, 6), rng.uniform(100, 101, 6), rng.uniform(-50, -49, 6)]
    )
    seen: list[np.ndarray] = []

    def record(x: np.ndarray) -> float:
        seen.append(x.copy())
        return float(x.mean())

    stratified_bootstrap_ci(scores, record, reps=200)
    assert len(seen) == 201  # the point plus every replicate
    for rep in seen[1:]:
        assert rep.shape == scores.shape
        for j in range(3):
            assert set(rep[:, j]) <= set(scores[:, j])
        col_means = rep.mean(axis=0)
        assert 0 <= col_means[0] <= 1 and 100 <= col_means[1] <= 101
        assert -50 <= col_means[2] <= -49
    # Replicates really resample: some rows repeat.
    assert any(len(set(rep[:, 0])) < 6 for rep in seen[1:])


def test_vectorised_and_generic_paths_agree():
    scores = np.random.default_rng(4).normal(size=(7, 3))
    fast = stratified_bootstrap_ci(scores, iqm, reps=300, seed=9)
    slow = stratified_bootstrap_ci(scores, lambda x: iqm(x), reps=300, seed=9)
    assert fast.point == pytest.approx(slow.point, rel=1e-12)
    assert fast.low == pytest.approx(slow.low, rel=1e-12)
    assert fast.high == pytest.approx(slow.high, rel=1e-12)
    med_fast = stratified_bootstrap_ci(scores, np.median, reps=300, seed=9)
    med_slow = stratified_bootstrap_ci(scores, lambda x: np.median(x), reps=300, seed=9)
    assert med_fast == med_slow


def test_chunking_gives_the_same_interval(monkeypatch):
    scores = np.random.default_rng(5).normal(size=(6, 5))
    whole = stratified_bootstrap_ci(scores, np.mean, reps=257, seed=1)
    monkeypatch.setattr(stats_mod, "_BATCH_ELEMENTS", 70)  # 2 replicates per chunk
    chunked = stratified_bootstrap_ci(scores, np.mean, reps=257, seed=1)
    assert chunked == whole


def test_one_dimensional_scores_are_one_task():
    x = np.random.default_rng(6).normal(size=12)
    assert stratified_bootstrap_ci(x, reps=400) == stratified_bootstrap_ci(x[:, None], reps=400)


def _coverage(confidence: float, n_sets: int = 200) -> float:
    rng = np.random.default_rng(2024)
    col_means = np.array([0.0, 5.0, -3.0])
    truth = col_means.mean()
    hits = 0
    for _ in range(n_sets):
        scores = col_means + rng.normal(size=(10, 3))
        est = stratified_bootstrap_ci(scores, np.mean, reps=1000, confidence=confidence, seed=rng)
        hits += est.covers(truth)
    return hits / n_sets


def test_coverage_by_simulation():
    """Nominal 95% covers the true mean in about 93% (percentile bootstrap,
    30 values) of data sets; a bootstrap that pooled the very different task
    columns would cover ~100%, one that did not resample ~0%."""
    cov95 = _coverage(0.95)
    assert 0.85 <= cov95 <= 0.99
    cov50 = _coverage(0.5)
    assert 0.36 <= cov50 <= 0.64


@pytest.mark.parametrize(
    ("scores", "kwargs", "match"),
    [
        (np.zeros((2, 2, 2)), {}, "shape"),
        (np.zeros((0, 3)), {}, "empty"),
        (np.array([[1.0, np.nan]]), {}, "finite"),
        (np.ones((3, 2)), {"reps": 0}, "reps"),
        (np.ones((3, 2)), {"reps": 2.5}, "reps"),
        (np.ones((3, 2)), {"confidence": 1.0}, "confidence"),
        (np.ones((3, 2)), {"confidence": 0.0}, "confidence"),
    ],
)
def test_errors(scores, kwargs, match):
    with pytest.raises(ValueError, match=match):
        stratified_bootstrap_ci(scores, **kwargs)


def test_interval_estimates_dict():
    rng = np.random.default_rng(7)
    data = {"mean": rng.normal(size=(5, 2)), "wco": rng.normal(size=(5, 2)) - 1.0}
    out = interval_estimates(data, reps=300, seed=2)
    assert list(out) == ["mean", "wco"]
    for name, arr in data.items():
        assert out[name] == stratified_bootstrap_ci(arr, reps=300, seed=2)
    means = interval_estimates(data, np.mean, reps=300, confidence=0.9)
    assert means["wco"].point == pytest.approx(data["wco"].mean())


def test_docstring_examples():
    result = doctest.testmod(stats_mod)
    assert result.attempted > 0
    assert result.failed == 0


def test_iqm_of_run_means_trims_between_runs_not_tasks():
    from rewardhedge.evaluate.statistics import iqm_of_run_means

    # One task collapses in every run: a plain IQM over entries trims it away, ours keeps it.
    scores = np.tile(np.array([1.0, 1.0, 1.0, -9.0]), (4, 1))
    assert iqm(scores) == pytest.approx(1.0)
    assert iqm_of_run_means(scores) == pytest.approx(-1.5)
    # Between runs it trims: one wild run of 8 does not move the estimate.
    runs = np.array([[1.0], [1.0], [1.0], [1.0], [1.0], [1.0], [1.0], [50.0]])
    assert iqm_of_run_means(runs) == pytest.approx(1.0)
    est = stratified_bootstrap_ci(scores + np.arange(4)[:, None] * 0.1, iqm_of_run_means, reps=300)
    assert est.low <= est.point <= est.high
    assert -1.5 <= est.point <= -1.2
