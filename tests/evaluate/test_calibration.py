"""Reliability-diagram bins for preference probabilities."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import rewardhedge.evaluate.calibration as calibration_mod
from rewardhedge.evaluate.calibration import calibration_metrics, reliability_bins
from rewardhedge.evaluate.pairwise import brier, log_loss


def test_known_bins_and_ece():
    r = reliability_bins([0.9, 0.9, 0.1, 0.1], [1, 0, 0, 0], n_bins=2, symmetrise=False)
    assert r["count"] == [2, 2]
    assert r["mean_pred"] == pytest.approx([0.1, 0.9])
    assert r["frac_pos"] == pytest.approx([0.0, 0.5])
    assert r["ece"] == pytest.approx((2 * 0.1 + 2 * 0.4) / 4)


def test_symmetrising_mirrors_every_pair():
    r = reliability_bins([0.83, 0.72], [1, 1], n_bins=10)
    assert sum(r["count"]) == 4
    assert r["bin_mid"] == pytest.approx([0.15, 0.25, 0.75, 0.85])
    assert r["mean_pred"] == pytest.approx([0.17, 0.28, 0.72, 0.83])
    assert r["frac_pos"] == pytest.approx([0.0, 0.0, 1.0, 1.0])


def test_calibrated_draws_have_small_ece_and_overconfident_ones_do_not():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20_000)
    y = rng.uniform(0, 1, p.size) < p
    assert reliability_bins(p, y)["ece"] < 0.02
    sharp = np.clip(0.5 + 2 * (p - 0.5), 0, 1)  # same outcomes, overconfident predictions
    assert reliability_bins(sharp, y)["ece"] > 0.1


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="equal-length"):
        reliability_bins([0.5], [1, 0])


# --- equal-mass bins and calibration_metrics ---------------------------------


def test_default_strategy_is_unchanged():
    rng = np.random.default_rng(5)
    p, y = rng.uniform(size=200), rng.integers(0, 2, 200)
    assert reliability_bins(p, y) == reliability_bins(p, y, strategy="uniform")
    assert set(reliability_bins(p, y, strategy="quantile")) == set(reliability_bins(p, y))


def test_quantile_bins_hold_equal_counts():
    p = [0.05, 0.12, 0.31, 0.44, 0.58, 0.61, 0.77, 0.86, 0.93, 0.99]
    y = [0, 0, 1, 0, 1, 1, 0, 1, 1, 1]
    r = reliability_bins(p, y, n_bins=5, strategy="quantile", symmetrise=False)
    assert r["count"] == [2, 2, 2, 2, 2]
    assert r["mean_pred"] == pytest.approx([0.085, 0.375, 0.595, 0.815, 0.96])
    assert r["frac_pos"] == pytest.approx([0.0, 0.5, 1.0, 0.5, 1.0])
    gaps = [0.085, 0.125, 0.405, 0.315, 0.04]
    assert r["ece"] == pytest.approx(sum(gaps) / 5)
    # Symmetrised: 20 values, still 4 per bin, mirrored around 0.5.
    s = reliability_bins(p, y, n_bins=5, strategy="quantile")
    assert s["count"] == [4, 4, 4, 4, 4]
    assert s["mean_pred"] == pytest.approx([1 - m for m in reversed(s["mean_pred"])])


def test_quantile_bins_equal_mass_on_skewed_predictions():
    rng = np.random.default_rng(6)
    p = rng.beta(0.3, 0.3, 5_001)  # piled up near 0 and 1
    y = rng.integers(0, 2, p.size)
    q = reliability_bins(p, y, n_bins=10, strategy="quantile")
    assert len(q["count"]) == 10
    assert max(q["count"]) - min(q["count"]) <= 1
    u = reliability_bins(p, y, n_bins=10)
    assert max(u["count"]) > 3 * min(u["count"])


def test_quantile_bins_keep_ties_together():
    # A constant 0.5 predictor is calibrated whatever the outcomes.
    r = reliability_bins([0.5] * 6, [1, 1, 1, 1, 1, 0], n_bins=4, strategy="quantile")
    assert r["count"] == [12]
    assert r["ece"] == pytest.approx(0.0)


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="quantile"):
        reliability_bins([0.5], [1], strategy="quantiles")


def test_metrics_on_hand_computed_case():
    p, y = [0.9, 0.9, 0.1, 0.1], [1, 0, 0, 0]
    m = calibration_metrics(p, y, n_bins=2)
    # Symmetrised: bin [0, .5) holds 0.1 ×4 with outcomes 0,0,1,0 → |0.1 − 0.25| = 0.15,
    # and the upper bin mirrors it.
    assert m["n"] == 4
    assert m["ece_equal_width"] == pytest.approx(0.15)
    assert m["ece_equal_mass"] == pytest.approx(0.15)
    assert m["brier"] == pytest.approx((0.01 + 0.81 + 0.01 + 0.01) / 4)
    assert m["nll"] == pytest.approx(-(3 * np.log(0.9) + np.log(0.1)) / 4)
    assert m["reliability_equal_width"]["count"] == [4, 4]
    assert m["reliability_equal_mass"]["ece"] == m["ece_equal_mass"]


def test_calibrated_data_small_ece_both_ways_overconfident_large():
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 1, 20_000)
    y = (rng.uniform(0, 1, p.size) < p).astype(float)
    m = calibration_metrics(p, y)
    assert m["ece_equal_width"] < 0.02
    assert m["ece_equal_mass"] < 0.02
    sharp = np.clip(0.5 + 2 * (p - 0.5), 0, 1)
    bad = calibration_metrics(sharp, y)
    assert bad["ece_equal_width"] > 0.1
    assert bad["ece_equal_mass"] > 0.1
    assert bad["brier"] > m["brier"]
    assert bad["nll"] > m["nll"]


def test_symmetrised_brier_and_nll_equal_plain_ones():
    rng = np.random.default_rng(8)
    p = rng.uniform(0.01, 0.99, 500)
    y = rng.integers(0, 2, p.size).astype(float)
    p_obs = np.where(y == 1, p, 1 - p)  # probability given to what happened
    m = calibration_metrics(p, y)
    assert m["brier"] == pytest.approx(brier(p_obs))
    assert m["nll"] == pytest.approx(log_loss(p_obs))
    # Already symmetric input: the mirrored copy adds nothing new.
    sym = calibration_metrics(np.concatenate([p, 1 - p]), np.concatenate([y, 1 - y]))
    assert sym["brier"] == pytest.approx(m["brier"])
    assert sym["nll"] == pytest.approx(m["nll"])
    # Chosen-first pairs: same as the pairwise module.
    ones = calibration_metrics(p, np.ones_like(p))
    assert ones["brier"] == pytest.approx(brier(p))
    assert ones["nll"] == pytest.approx(log_loss(p))


@pytest.mark.parametrize(
    ("prob", "outcome", "match"),
    [
        ([0.5], [1, 0], "equal-length"),
        ([], [], "non-empty"),
        ([1.2], [1], "prob must lie in"),
        ([np.nan], [1], "prob must lie in"),
        ([0.5], [2], "outcome must lie in"),
    ],
)
def test_metrics_refuse_bad_input(prob, outcome, match):
    with pytest.raises(ValueError, match=match):
        calibration_metrics(prob, outcome)


def test_calibration_docstring_examples():
    result = doctest.testmod(calibration_mod)
    assert result.attempted > 0
    assert result.failed == 0


def test_ece_noise_floor_shrinks_with_more_pairs_and_bounds_a_calibrated_model():
    from rewardhedge.evaluate.calibration import ece_noise_floor

    rng = np.random.default_rng(1)
    small = ece_noise_floor(rng.uniform(0.5, 0.9, 200), reps=100)
    big = ece_noise_floor(rng.uniform(0.5, 0.9, 20_000), reps=20)
    assert big["ece_equal_mass"] < small["ece_equal_mass"] / 5  # ~ 1/sqrt(n)
    assert small["p95_equal_mass"] >= small["ece_equal_mass"]
    # A calibrated model's observed ECE falls under the 95th percentile about 95% of the time.
    below = 0
    for seed in range(40):
        p = np.random.default_rng(seed).uniform(0.5, 0.9, 300)
        y = (np.random.default_rng(seed + 100).random(300) < p).astype(float)
        observed = calibration_metrics(p, y)["ece_equal_mass"]
        below += observed <= ece_noise_floor(p, reps=100, seed=seed)["p95_equal_mass"]
    assert below >= 33  # P(X < 33) < 1e-3 for X ~ Binomial(40, 0.95)
