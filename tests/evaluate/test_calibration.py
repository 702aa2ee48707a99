"""Reliability-diagram bins for preference probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from rewardhedge.evaluate.calibration import reliability_bins


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
