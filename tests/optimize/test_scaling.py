"""Gao et al. best-of-n functional form: fit, peak, and the KL ↔ n inverse."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rewardhedge.optimize.scaling as scaling_mod
from rewardhedge.optimize import GaoFit, fit_gao, kl_best_of_n, n_at_kl

NS = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256])
KL = kl_best_of_n(NS)


def curve(kl: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    d = np.sqrt(kl)
    return d * (alpha - beta * d)


@pytest.mark.parametrize(
    ("alpha", "beta"), [(1.0, 0.5), (0.3, 0.02), (2.5, 1.7), (1.0, -0.2), (0.7, 0.0)]
)
def test_recovers_exact_curves(alpha, beta):
    fit = fit_gao(KL, curve(KL, alpha, beta))
    assert fit.alpha == pytest.approx(alpha, abs=1e-10)
    assert fit.beta == pytest.approx(beta, abs=1e-10)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    assert fit.n_points == len(NS)


@settings(max_examples=40, deadline=None)
@given(
    alpha=st.floats(0.01, 10.0),
    beta=st.floats(0.01, 5.0),
)
def test_recovers_exact_curves_property(alpha, beta):
    fit = fit_gao(KL, curve(KL, alpha, beta))
    assert fit.alpha == pytest.approx(alpha, rel=1e-8)
    assert fit.beta == pytest.approx(beta, rel=1e-8)
    assert fit.peak_d == pytest.approx(alpha / (2 * beta), rel=1e-8)
    assert fit.peak_gold == pytest.approx(alpha**2 / (4 * beta), rel=1e-8)


def test_peak_hand_computed_and_is_the_grid_maximum():
    fit = fit_gao(KL, curve(KL, 1.0, 0.25))
    assert fit.peak_d == pytest.approx(2.0)
    assert fit.peak_kl == pytest.approx(4.0)
    assert fit.peak_gold == pytest.approx(1.0)
    grid = np.linspace(0.0, 20.0, 200_001)
    vals = fit.predict(grid)
    assert grid[vals.argmax()] == pytest.approx(fit.peak_kl, abs=1e-3)
    assert vals.max() == pytest.approx(fit.peak_gold, abs=1e-9)
    # The peak stated as an n: KL(n*) = 4.
    assert kl_best_of_n(fit.peak_n) == pytest.approx(4.0, abs=1e-10)


def test_no_peak_when_beta_not_positive():
    for beta in (0.0, -0.3):
        fit = fit_gao(KL, curve(KL, 1.0, beta))
        assert fit.peak_kl is None and fit.peak_d is None and fit.peak_gold is None
        assert fit.peak_n is None
        assert fit.to_dict()["peak_kl"] is None
    # Exactly linear gains: the fitted β is round-off and must not make a peak.
    assert fit_gao(KL, 0.37 * np.sqrt(KL)).beta == 0.0


def test_falling_from_the_start_peaks_at_zero():
    fit = fit_gao(KL, curve(KL, -0.5, 0.2), baseline=3.0)
    assert fit.alpha == pytest.approx(-0.5)
    assert fit.peak_d == 0.0 and fit.peak_kl == 0.0
    assert fit.peak_gold == 3.0
    assert fit.peak_n == 1.0


def test_matches_normal_equations_on_noisy_data():
    rng = np.random.default_rng(0)
    gains = curve(KL, 0.8, 0.1) + rng.normal(scale=0.05, size=KL.shape)
    fit = fit_gao(KL, gains)
    d = np.sqrt(KL)
    X = np.column_stack([d, -(d**2)])
    want = np.linalg.solve(X.T @ X, X.T @ gains)
    assert [fit.alpha, fit.beta] == pytest.approx(want.tolist(), rel=1e-9)
    resid = gains - X @ want
    r2 = 1 - resid @ resid / ((gains - gains.mean()) ** 2).sum()
    assert fit.r2 == pytest.approx(r2, rel=1e-9)
    assert 0.5 < fit.r2 < 1.0
    # No intercept: shifting every gain changes the fit (it is not absorbed).
    shifted = fit_gao(KL, gains + 1.0)
    assert shifted.alpha != pytest.approx(fit.alpha)


def test_baseline_only_shifts_peak_gold():
    g = curve(KL, 1.0, 0.5)
    a, b = fit_gao(KL, g), fit_gao(KL, g, baseline=2.0)
    assert b.peak_gold == pytest.approx(a.peak_gold + 2.0)
    assert (b.alpha, b.beta, b.peak_kl) == (a.alpha, a.beta, a.peak_kl)


def test_constant_zero_gains():
    fit = fit_gao(KL, np.zeros_like(KL))
    assert fit.alpha == pytest.approx(0.0, abs=1e-15)
    assert fit.r2 == 1.0


def test_to_dict_is_json():
    fit = fit_gao(KL, curve(KL, 1.0, 0.5))
    d = json.loads(json.dumps(fit.to_dict()))
    assert set(d) == {
        "alpha",
        "beta",
        "r2",
        "peak_kl",
        "peak_d",
        "peak_gold",
        "peak_n",
        "n_points",
        "kl_max",
    }
    assert d["kl_max"] == pytest.approx(KL.max())
    assert d["peak_kl"] == pytest.approx(1.0)
    assert d["peak_n"] == pytest.approx(n_at_kl(1.0))
    assert isinstance(fit, GaoFit)


@pytest.mark.parametrize(
    ("kl", "gains", "match"),
    [
        ([0.1, 0.2], [0.1], "equal length"),
        ([0.0, 0.5, 0.5], [0.0, 0.1, 0.1], "two distinct nonzero"),
        ([-0.1, 0.5, 1.0], [0.0, 0.1, 0.1], ">= 0"),
        ([0.1, np.nan, 1.0], [0.0, 0.1, 0.1], "finite"),
        ([0.1, 0.5, 1.0], [0.0, np.inf, 0.1], "finite"),
    ],
)
def test_fit_errors(kl, gains, match):
    with pytest.raises(ValueError, match=match):
        fit_gao(kl, gains)


# --- n_at_kl ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 1.5, 2, 3, 10, 64, 1000, 10**6])
def test_n_at_kl_inverts_kl(n):
    assert n_at_kl(kl_best_of_n(n)) == pytest.approx(n, rel=1e-9)


@settings(max_examples=50, deadline=None)
@given(kl=st.floats(0.0, 50.0))
def test_kl_of_n_at_kl_roundtrip(kl):
    n = n_at_kl(kl)
    assert n >= 1.0
    assert kl_best_of_n(n) == pytest.approx(kl, abs=1e-9)


def test_n_at_kl_vectorised_and_exact_at_zero():
    assert n_at_kl(0.0) == 1.0
    out = n_at_kl(kl_best_of_n(np.array([1, 2, 4, 8])))
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [1, 2, 4, 8], rtol=1e-9)
    assert isinstance(n_at_kl(1.0), float)
    # A known value: KL(2) = log 2 - 1/2.
    assert n_at_kl(math.log(2) - 0.5) == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), 1e4])
def test_n_at_kl_errors(bad):
    with pytest.raises(ValueError, match="kl =="):
        n_at_kl(bad)


def test_docstring_examples():
    result = doctest.testmod(scaling_mod)
    assert result.attempted > 0
    assert result.failed == 0
