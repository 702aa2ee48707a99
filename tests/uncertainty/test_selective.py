"""Selective prediction: the finite-sample guarantee, edge cases and validation."""

from __future__ import annotations

import doctest
import itertools
import json
import math

import numpy as np
import pytest

import rewardhedge.uncertainty.selective as sel_mod
from rewardhedge.uncertainty.selective import AbstentionRule, fit_abstention, selective_report

# Synthetic task: U ~ Uniform(0, 1), P(misordered | U = u) = 0.02 + 0.5 u².
# Population selective risk R(λ) = P(L = 1 | U <= λ) = 0.02 + λ²/6 (λ in (0, 1]),
# nondecreasing, so the guarantee's assumptions hold and R is known exactly.


def _draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    u = rng.uniform(size=n)
    losses = (rng.uniform(size=n) < 0.02 + 0.5 * u**2).astype(np.float64)
    return u, losses


def _true_risk(threshold: float) -> float:
    lam = min(threshold, 1.0)
    return 0.02 + lam**2 / 6 if lam > 0 else 0.02


def _naive_threshold(u: np.ndarray, losses: np.ndarray, alpha: float) -> float:
    """Largest threshold whose empirical selective error is <= alpha: no guarantee."""
    order = np.argsort(u)
    err = np.cumsum(losses[order]) / np.arange(1, u.size + 1)
    ok = np.flatnonzero(err <= alpha)
    return float(u[order][ok[-1]]) if ok.size else -math.inf


def test_guarantee_holds_over_repeated_calibration_draws():
    alpha, delta, reps = 0.1, 0.1, 200
    rng = np.random.default_rng(20240601)
    fails = naive_fails = 0
    test_fails = 0
    coverage = []
    for _ in range(reps):
        u, losses = _draw(rng, 500)
        rule = fit_abstention(u, losses, alpha=alpha, delta=delta)
        naive = _naive_threshold(u, losses, alpha)
        if not rule.abstains_on_all:
            fails += _true_risk(rule.threshold) > alpha
        naive_fails += naive > -math.inf and _true_risk(naive) > alpha
        coverage.append(max(0.0, min(rule.threshold, 1.0)))
        # A fresh test split: its empirical error fluctuates around R(λ̂).
        u_t, l_t = _draw(rng, 2000)
        rep = selective_report(rule, u_t, l_t)
        test_fails += rep["n_kept"] > 0 and rep["error"] > alpha
    # Guarantee: P(R(λ̂) > α) <= δ; allow ~2.5 binomial standard errors of slack.
    assert fails / reps <= delta + 0.05
    # The naive empirical rule fails about half of the time: the check has teeth.
    assert naive_fails / reps >= 0.3
    assert naive_fails > 3 * fails
    # The finite test split adds its own noise, but stays far below the naive rule.
    assert test_fails / reps <= 0.2
    # And the rule is not trivially safe: it keeps a sizeable share (λ* ≈ 0.69).
    assert 0.3 < float(np.mean(coverage)) < 0.69


def test_coverage_grows_with_alpha():
    rng = np.random.default_rng(1)
    u, losses = _draw(rng, 3000)
    cov = [
        fit_abstention(u, losses, alpha=a, delta=0.1).calibration_coverage
        for a in (0.05, 0.1, 0.15, 0.2, 0.3)
    ]
    assert all(b >= a for a, b in itertools.pairwise(cov))
    assert cov[-1] > cov[0] + 0.3
    # alpha above the overall error rate (≈ 0.18) certifies keeping everything.
    assert cov[-1] == 1.0


def test_all_correct_keeps_everything():
    u = np.random.default_rng(2).normal(size=200)
    rule = fit_abstention(u, np.zeros(200))
    assert rule.threshold == u.max()
    assert rule.keep(u).all()
    assert rule.calibration_coverage == 1.0
    assert rule.calibration_error == 0.0
    assert not rule.abstains_on_all


def test_too_few_or_all_wrong_abstains_on_everything():
    # 21 perfect pairs cannot show an error rate below 0.1 at δ = 0.1: 0.9^21 > 0.1.
    small = fit_abstention(np.arange(21.0), np.zeros(21))
    assert small.abstains_on_all and small.threshold == -math.inf
    assert not small.keep([-1e9, 0.0]).any()
    assert small.calibration_coverage == 0.0 and math.isnan(small.calibration_error)
    # 22 are enough (0.9^22 <= 0.1).
    assert fit_abstention(np.arange(22.0), np.zeros(22)).threshold == 21.0
    wrong = fit_abstention(np.arange(500.0), np.ones(500))
    assert wrong.abstains_on_all
    assert fit_abstention([], []).abstains_on_all


def test_kept_calibration_error_within_alpha_and_ties_kept_together():
    u = np.repeat(np.arange(50.0), 4)  # ties in groups of four
    losses = (np.arange(200) % 10 == 0).astype(float)  # 10% errors
    losses[u >= 40] = 1.0
    rule = fit_abstention(u, losses, alpha=0.2, delta=0.1)
    kept = rule.keep(u)
    # A threshold keeps every item tied with it.
    assert set(np.unique(u[kept])).isdisjoint(np.unique(u[~kept]))
    assert rule.calibration_error == pytest.approx(losses[kept].mean())
    assert rule.calibration_error <= 0.2
    assert rule.calibration_coverage == kept.mean()


def test_keep_nan_is_false_and_report_values():
    rule = AbstentionRule(0.5, 0.1, 0.1, 10, 0.5, 0.0)
    assert rule.keep([np.nan, 0.5, 0.6]).tolist() == [False, True, False]
    rep = selective_report(rule, [0.1, 0.2, 0.9], [0.0, 0.5, 1.0])
    assert rep == {"coverage": 2 / 3, "error": 0.25, "n_kept": 2, "n": 3}
    empty = selective_report(rule, [0.9], [1.0])
    assert empty["n_kept"] == 0 and math.isnan(empty["error"])


def test_to_dict_round_trip_through_json():
    rng = np.random.default_rng(3)
    u, losses = _draw(rng, 400)
    for rule in (fit_abstention(u, losses), fit_abstention(u[:5], losses[:5])):
        text = json.dumps(rule.to_dict(), allow_nan=False)
        back = AbstentionRule.from_dict(json.loads(text))
        assert back.threshold == rule.threshold
        assert back.to_dict() == rule.to_dict()
    assert AbstentionRule.from_dict(fit_abstention(u[:5], losses[:5]).to_dict()).abstains_on_all


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, math.nan, True, "0.1"])
def test_invalid_alpha_delta(bad):
    u, losses = np.arange(30.0), np.zeros(30)
    with pytest.raises(ValueError, match="alpha"):
        fit_abstention(u, losses, alpha=bad)
    with pytest.raises(ValueError, match="delta"):
        fit_abstention(u, losses, delta=bad)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="30 vs 29"):
        fit_abstention(np.arange(30.0), np.zeros(29))
    with pytest.raises(ValueError, match="0 or 1"):
        fit_abstention([0.1, 0.2], [0.0, 0.5])
    with pytest.raises(ValueError, match="NaN"):
        fit_abstention([0.1, np.nan], [0.0, 1.0])
    with pytest.raises(ValueError, match=r"shape \(n,\)"):
        fit_abstention(np.zeros((2, 2)), np.zeros((2, 2)))
    rule = AbstentionRule(0.5, 0.1, 0.1, 10, 0.5, 0.0)
    with pytest.raises(ValueError, match="differ in length"):
        selective_report(rule, [0.1, 0.2], [0.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        selective_report(rule, [0.1], [2.0])


def test_doctests():
    result = doctest.testmod(sel_mod)
    assert result.attempted > 0
    assert result.failed == 0


def test_imports_no_torch(module_imports):
    allowed_roots = {"__future__", "numpy", "scipy", "math", "dataclasses", "typing", "collections"}
    allowed_own = {"rewardhedge.types", "rewardhedge.errors"}
    for name in module_imports(sel_mod.__file__):
        assert name.split(".")[0] in allowed_roots or name in allowed_own, name
