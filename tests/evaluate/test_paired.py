"""Paired bootstrap test: exact small cases, size under the null, power, coverage."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy import stats

import rewardhedge.evaluate.paired as paired_mod
from rewardhedge.evaluate.paired import PairedTest, paired_bootstrap_test

REPS = 2000  # enough for p around 0.05 (Monte Carlo sd ~0.005) and fast over 150 seeds

# --- exact answers --------------------------------------------------------------------


def test_identical_inputs_are_exactly_no_difference():
    a = np.array([1.0, 0.0, 0.5, 1.0])
    t = paired_bootstrap_test(a, a.copy(), reps=REPS)
    assert (t.diff, t.ci_low, t.ci_high, t.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert (t.n, t.reps, t.level) == (4, REPS, 0.95)


def test_constant_nonzero_difference():
    # Every item differs by 0.5: every replicate gives d* = d, none is as far
    # from the null as d, so p = 1 / (reps + 1) and the interval is (d, d).
    a = np.array([1.0, 0.5, 1.0, 0.5])
    t = paired_bootstrap_test(a, a - 0.5, reps=999)
    assert t.diff == 0.5
    assert (t.ci_low, t.ci_high) == (0.5, 0.5)
    assert t.p_value == 1 / 1000


def test_two_items_against_the_exact_bootstrap_distribution():
    # delta = (1, 0), d = 0.5. Resampling 2 items: d* = 0, 0.5, 1 with
    # probabilities 1/4, 1/2, 1/4; |d* - d| >= 0.5 iff d* in {0, 1}: p → 1/2.
    t = paired_bootstrap_test([1.0, 0.0], [0.0, 0.0], reps=20000, seed=1)
    assert t.diff == 0.5
    assert t.p_value == pytest.approx(0.5, abs=0.02)  # Monte Carlo sd 0.0035
    assert (t.ci_low, t.ci_high) == (0.0, 1.0)  # 2.5% and 97.5% percentiles


def test_sign_and_value_of_diff():
    a = np.array([1.0, 1.0, 0.0, 0.5, 1.0])
    b = np.array([0.0, 1.0, 0.0, 0.5, 0.0])
    t = paired_bootstrap_test(a, b, reps=500)
    assert t.diff == pytest.approx(a.mean() - b.mean(), abs=1e-15)
    assert t.diff == pytest.approx(0.4)
    r = paired_bootstrap_test(b, a, reps=500)
    assert r.diff == pytest.approx(-0.4)
    # Swapping the models (same seed, same indices) mirrors everything.
    assert (r.ci_low, r.ci_high) == pytest.approx((-t.ci_high, -t.ci_low), abs=1e-12)
    assert r.p_value == t.p_value
    assert r.ci_low <= r.diff <= r.ci_high and t.ci_low <= t.diff <= t.ci_high


def test_result_is_immutable_seeded_and_serialisable():
    rng = np.random.default_rng(0)
    a, b = rng.random(50), rng.random(50)
    t = paired_bootstrap_test(a, b, reps=300, seed=7)
    assert t == paired_bootstrap_test(a, b, reps=300, seed=7)
    assert t != paired_bootstrap_test(a, b, reps=300, seed=8)
    d = t.to_dict()
    assert list(d) == ["diff", "ci_low", "ci_high", "p_value", "n", "reps", "level"]
    assert type(d["n"]) is int and type(d["reps"]) is int
    assert all(type(d[k]) is float for k in ("diff", "ci_low", "ci_high", "p_value", "level"))
    assert 0.0 < d["p_value"] <= 1.0
    with pytest.raises(AttributeError):
        t.diff = 1.0  # type: ignore[misc]
    assert isinstance(t, PairedTest)


def test_chunking_fills_every_replicate(monkeypatch):
    # Tiny batches (7 replicates each, last one partial) must give the same
    # exact answer as one batch: a replicate left unfilled would show up here.
    monkeypatch.setattr(paired_mod, "_BATCH_ELEMENTS", 4 * 7)
    a = np.array([1.0, 0.5, 1.0, 0.5])
    t = paired_bootstrap_test(a, a - 0.25, reps=100)
    assert (t.ci_low, t.ci_high, t.p_value) == (0.25, 0.25, 1 / 101)
    rng = np.random.default_rng(2)
    x, y = rng.random(4), rng.random(4)
    small = paired_bootstrap_test(x, y, reps=3000)
    monkeypatch.setattr(paired_mod, "_BATCH_ELEMENTS", 2_000_000)
    big = paired_bootstrap_test(x, y, reps=3000)
    assert small.diff == big.diff
    assert small.p_value == pytest.approx(big.p_value, abs=0.05)


def test_level_orders_intervals():
    rng = np.random.default_rng(3)
    a, b = rng.random(80), rng.random(80)
    wide = paired_bootstrap_test(a, b, reps=REPS, level=0.99)
    narrow = paired_bootstrap_test(a, b, reps=REPS, level=0.5)
    assert wide.ci_low < narrow.ci_low < narrow.ci_high < wide.ci_high


def test_validation():
    with pytest.raises(ValueError, match="3 vs 2"):
        paired_bootstrap_test([1.0, 0.0, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="empty"):
        paired_bootstrap_test([], [])
    with pytest.raises(ValueError, match=r"a must have shape \(n,\)"):
        paired_bootstrap_test(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="b must be finite; 1 value"):
        paired_bootstrap_test([1.0, 0.0], [np.nan, 0.0])
    with pytest.raises(ValueError, match="a must be finite"):
        paired_bootstrap_test([np.inf, 0.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="reps"):
        paired_bootstrap_test([1.0], [0.0], reps=0)
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap_test([1.0], [0.0], level=0.0)


# --- behaviour over many seeds ----------------------------------------------------------


def test_null_rejection_rate_is_near_alpha():
    # a and b iid Bernoulli(0.7) per item: no true difference. A valid test at
    # alpha = 0.05 rejects in ~5 of 100 seeds. If the true rate were 0.05, the
    # count would exceed 12 with probability binom.sf(12, 100, 0.05) ≈ 0.0015
    # (checked below), so a rate above 0.12 means a broken test, not bad luck.
    assert stats.binom.sf(12, 100, 0.05) < 0.01
    rejections = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        a = (rng.random(300) < 0.7).astype(float)
        b = (rng.random(300) < 0.7).astype(float)
        t = paired_bootstrap_test(a, b, reps=REPS, seed=seed)
        assert 0.0 < t.p_value <= 1.0
        rejections += t.p_value < 0.05
    assert rejections / 100 <= 0.12


def test_planted_difference_is_detected_and_covered():
    # b = a with a random 12% of items (36 of 300) set to wrong. True difference
    # E[a - b] = 0.7 * 0.12 = 0.084, about 5 standard errors (sd of the mean
    # difference ≈ sqrt(0.084 * 0.916 / 300) ≈ 0.016): power is essentially 1.
    # Coverage: a 95% interval misses in ~5% of seeds; >= 40 of 50 covered
    # fails with probability binom.cdf(39, 50, 0.93) < 0.001 even at 93%.
    assert stats.binom.cdf(39, 50, 0.93) < 0.001
    true_diff = 0.7 * 36 / 300
    rejections = covered = 0
    for seed in range(50):
        rng = np.random.default_rng(1000 + seed)
        a = (rng.random(300) < 0.7).astype(float)
        b = a.copy()
        b[rng.choice(300, size=36, replace=False)] = 0.0
        t = paired_bootstrap_test(a, b, reps=REPS, seed=seed)
        assert t.diff >= 0.0  # b is never better than a on any item
        rejections += t.p_value < 0.05
        covered += t.ci_low <= true_diff <= t.ci_high
    assert rejections / 50 >= 0.9
    assert covered >= 40


def test_docstring_examples():
    result = doctest.testmod(paired_mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_grid_test_resamples_both_seeds_and_prompts():
    """A difference that varies only between seeds (or only between prompts) still gets a
    CI of non-zero width: both axes are resampled, not one."""
    from rewardhedge.evaluate.paired import paired_grid_test

    seeds_only = np.repeat(np.array([0.0, 1.0, 2.0, 3.0, 4.0])[:, None], 50, axis=1)
    prompts_only = np.repeat(np.linspace(-1.0, 3.0, 50)[None, :], 5, axis=0)
    zeros = np.zeros((5, 50))
    for diff in (seeds_only, prompts_only):
        t = paired_grid_test(diff, zeros, reps=2000)
        assert t.diff == pytest.approx(diff.mean())
        assert t.ci_low < diff.mean() - 0.1 and t.ci_high > diff.mean() + 0.1
        assert t.n == 250


def test_grid_test_cancels_what_the_two_methods_share():
    from rewardhedge.evaluate.paired import paired_grid_test

    rng = np.random.default_rng(3)
    shared = rng.normal(0.0, 5.0, size=(5, 100))  # seed and prompt effects both methods see
    noise = rng.normal(0.0, 0.1, size=(5, 100))
    t = paired_grid_test(shared + 0.2 + noise, shared, reps=2000)
    assert t.ci_low > 0.1 and t.ci_high < 0.3 and t.p_value < 0.01
    with pytest.raises(ValueError, match="2-D grids of one shape"):
        paired_grid_test(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        paired_grid_test(np.full((2, 2), np.nan), np.zeros((2, 2)))
