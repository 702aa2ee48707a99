"""Uncertainty-quality metrics against hand-computed values and sklearn."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

import rewardhedge.evaluate.uncertainty_quality as uq_mod
from rewardhedge.evaluate.pairwise import pairwise_correct
from rewardhedge.evaluate.uncertainty_quality import (
    aurc,
    misorder_auroc,
    ood_auroc,
    pair_uncertainties,
    selective_curve,
)
from rewardhedge.types import RewardEstimate, pairwise_from_estimates


def _oracle_aurc(n: int, e: int) -> float:
    harmonic = [0.0, *np.cumsum(1.0 / np.arange(1, n + 1)).tolist()]
    return (e - (n - e) * (harmonic[n] - harmonic[n - e])) / n


# --- AUROC ----------------------------------------------------------------------------


def test_misorder_auroc_perfect_reversed_and_ties():
    correct = [1, 1, 0, 0]
    assert misorder_auroc([0.1, 0.2, 0.8, 0.9], correct) == 1.0
    assert misorder_auroc([0.9, 0.8, 0.2, 0.1], correct) == 0.0
    assert misorder_auroc([0.5, 0.5, 0.5, 0.5], correct) == 0.5
    # Hand count: wrong {0.3, 0.6} vs right {0.1, 0.4, 0.6}: (1+0+0) + (1+1+0.5) = 3.5 of 6.
    assert misorder_auroc([0.1, 0.4, 0.6, 0.3, 0.6], [1, 1, 1, 0, 0]) == pytest.approx(3.5 / 6)
    # A tied pair (correct == 0.5) counts as misordered.
    assert misorder_auroc([0.1, 0.9], [1.0, 0.5]) == 1.0


def test_misorder_auroc_one_class_is_nan():
    assert math.isnan(misorder_auroc([0.1, 0.2], [1, 1]))
    assert math.isnan(misorder_auroc([0.1, 0.2], [0, 0.5]))
    assert math.isnan(misorder_auroc([], []))


def test_auroc_matches_mann_whitney():
    rng = np.random.default_rng(0)
    u = rng.integers(0, 5, size=300).astype(float)  # many ties
    correct = rng.choice([0.0, 0.5, 1.0], size=300, p=[0.3, 0.1, 0.6])
    wrong = correct < 1
    mw = stats.mannwhitneyu(u[wrong], u[~wrong]).statistic / (wrong.sum() * (~wrong).sum())
    assert misorder_auroc(u, correct) == pytest.approx(mw, abs=1e-12)
    assert misorder_auroc(u, correct) == pytest.approx(roc_auc_score(wrong, u), abs=1e-12)


def test_ood_auroc():
    assert ood_auroc([0.1, 0.2], [0.8, 0.9]) == 1.0
    assert ood_auroc([0.8, 0.9], [0.1, 0.2]) == 0.0
    assert ood_auroc([0.1, 0.3], [0.2, 0.9]) == 0.75
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=200), rng.normal(0.5, size=150)
    ref = roc_auc_score(np.r_[np.zeros(200), np.ones(150)], np.r_[a, b])
    assert ood_auroc(a, b) == pytest.approx(ref, abs=1e-12)
    with pytest.raises(ValueError, match="non-empty"):
        ood_auroc([], [0.1])


# --- selective curve and AURC ---------------------------------------------------------


def test_selective_curve_endpoints_and_stable_ties():
    rng = np.random.default_rng(2)
    correct = pairwise_correct(rng.normal(size=50), rng.normal(size=50))
    u = rng.uniform(size=50)
    cov, acc = selective_curve(u, correct)
    assert cov.shape == acc.shape == (50,)
    assert cov[0] == 1 / 50 and cov[-1] == 1.0
    assert acc[-1] == pytest.approx(correct.mean())
    assert acc[0] == correct[np.argmin(u)]
    # Equal uncertainty: earlier item kept first.
    assert selective_curve([0.5, 0.5], [0.0, 1.0]).accuracy.tolist() == [0.0, 0.5]
    assert selective_curve([0.5, 0.5], [1.0, 0.0]).accuracy.tolist() == [1.0, 0.5]
    empty = selective_curve([], [])
    assert empty.coverage.size == 0 and empty.accuracy.size == 0


@pytest.mark.parametrize(("n", "e"), [(4, 1), (10, 3), (37, 20), (5, 0), (5, 5)])
def test_aurc_oracle_equals_analytic_minimum(n, e):
    correct = np.r_[np.ones(n - e), np.zeros(e)]
    rng = np.random.default_rng(n + e)
    perm = rng.permutation(n)
    oracle_u = np.r_[np.arange(n - e), 100 + np.arange(e)].astype(float)
    assert aurc(oracle_u[perm], correct[perm]) == pytest.approx(_oracle_aurc(n, e), abs=1e-12)
    # Any other ordering is no better.
    assert aurc(rng.uniform(size=n), correct) >= _oracle_aurc(n, e) - 1e-12


def test_aurc_hand_computed_and_worst_case():
    assert aurc([0.1, 0.2, 0.3, 0.4], [1, 1, 1, 0]) == pytest.approx(1 / 16)
    # Wrong pair first: risks 1, 1/2, 1/3, 1/4.
    assert aurc([0.4, 0.1, 0.2, 0.3], [1, 0, 1, 1]) == pytest.approx(
        (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4
    )
    assert math.isnan(aurc([], []))


def test_aurc_random_uncertainty_is_error_rate():
    rng = np.random.default_rng(3)
    correct = (rng.uniform(size=200) > 0.3).astype(float)
    vals = [aurc(rng.uniform(size=200), correct) for _ in range(400)]
    assert np.mean(vals) == pytest.approx(1 - correct.mean(), abs=0.01)


def test_input_validation():
    with pytest.raises(ValueError, match="3 vs 2"):
        aurc([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        misorder_auroc([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        selective_curve([0.1, np.nan], [1, 0])


# --- pair_uncertainties ---------------------------------------------------------------


def test_pair_uncertainties_hand_computed():
    chosen = RewardEstimate.from_members(np.array([[1.0, 0.0, 3.0], [1.0, 2.0, -3.0]]))
    rejected = RewardEstimate.from_members(np.zeros((2, 3)))
    out = pair_uncertainties(pairwise_from_estimates(chosen, rejected))
    assert set(out) == {
        "prob_entropy",
        "member_std",
        "mutual_information",
        "margin_abs_inverse",
        "epistemic_sum",
    }
    # chosen member variances: [0, 1, 9]; rejected: 0.
    np.testing.assert_allclose(out["epistemic_sum"], [0.0, 1.0, 9.0])
    s = 1 / (1 + math.exp(-1))
    s2, s3 = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-3))
    p = np.array([s, (0.5 + s2) / 2, 0.5])

    def h(q):
        return -(q * np.log(q) + (1 - q) * np.log(1 - q))

    np.testing.assert_allclose(out["prob_entropy"], h(p), rtol=1e-12)
    np.testing.assert_allclose(out["member_std"], [0.0, (s2 - 0.5) / 2, s3 - 0.5], rtol=1e-12)
    np.testing.assert_allclose(
        out["mutual_information"],
        [0.0, h(p[1]) - (math.log(2) + h(s2)) / 2, math.log(2) - h(s3)],
        atol=1e-12,
    )
    np.testing.assert_allclose(out["margin_abs_inverse"], [-1.0, -1.0, 0.0])
    # Pair 3: members disagree completely (σ(3) vs σ(-3)); entropy is maximal.
    assert out["prob_entropy"][2] == pytest.approx(math.log(2))


def test_pair_uncertainties_aleatoric_only_when_present():
    chosen = RewardEstimate.from_members(np.ones((1, 2)), aleatoric=np.array([[0.5, 2.0]]))
    rejected = RewardEstimate.from_members(np.zeros((1, 2)), aleatoric=np.array([[1.0, 0.0]]))
    out = pair_uncertainties(pairwise_from_estimates(chosen, rejected))
    np.testing.assert_allclose(out["aleatoric_sum"], [1.5, 2.0])
    plain = pair_uncertainties(
        pairwise_from_estimates(RewardEstimate.from_members(np.ones((1, 2))), chosen.take([0, 1]))
    )
    assert "aleatoric_sum" not in pair_uncertainties(
        pairwise_from_estimates(
            RewardEstimate.from_members(np.ones((1, 2))),
            RewardEstimate.from_members(np.zeros((1, 2))),
        )
    )
    assert "aleatoric_sum" in plain


def test_pair_uncertainties_single_member_and_extremes():
    chosen = RewardEstimate.from_members(np.array([[50.0, 0.0]]))
    rejected = RewardEstimate.from_members(np.array([[-50.0, 0.0]]))
    out = pair_uncertainties(pairwise_from_estimates(chosen, rejected))
    assert np.all(out["member_std"] == 0.0)
    assert np.all(out["mutual_information"] == 0.0)
    assert np.all(np.isfinite(out["prob_entropy"]))
    assert out["prob_entropy"][0] < 1e-30 and out["prob_entropy"][1] == pytest.approx(math.log(2))


def test_doctests():
    result = doctest.testmod(uq_mod)
    assert result.attempted > 0
    assert result.failed == 0
