"""DEUP error predictor: excess-loss target, feature density, error model."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import check_grad
from sklearn.metrics import roc_auc_score

import rewardhedge.uncertainty.deup as deup_mod
from rewardhedge.uncertainty.deup import ErrorPredictor, FeatureDensity, excess_loss


def _h(p: float) -> float:
    return -p * math.log(p) - (1 - p) * math.log(1 - p)


def _kl(q: float, p: float) -> float:
    return q * math.log(q / p) + (1 - q) * math.log((1 - q) / (1 - p))


def test_doctests():
    assert doctest.testmod(deup_mod).failed == 0


# --------------------------------------------------------------------- excess_loss


def test_excess_loss_hand_values():
    out = excess_loss(np.array([0.5, 0.9, 0.1]))
    assert out.dtype == np.float64
    assert out[0] == pytest.approx(0.0, abs=1e-15)
    h09 = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert out[1] == pytest.approx(-math.log(0.9) - h09, rel=1e-12)
    assert out[2] == pytest.approx(-math.log(0.1) - h09, rel=1e-12)
    assert out[1] < 0 < out[2]


@pytest.mark.parametrize(("q", "p"), [(0.9, 0.6), (0.5, 0.9), (0.2, 0.7), (0.7, 0.7), (0.99, 0.01)])
def test_excess_loss_expectation_is_kl_plus_entropy_gap(q, p):
    # Label y ~ Bernoulli(q): with prob q the model's chosen is right (loss at p),
    # otherwise the pair is flipped (loss at 1 − p).
    e_pos, e_neg = excess_loss(np.array([p, 1.0 - p]))
    expected = q * e_pos + (1 - q) * e_neg
    cross_entropy = q * -math.log(p) + (1 - q) * -math.log(1 - p)
    assert expected == pytest.approx(cross_entropy - _h(p), rel=1e-10, abs=1e-12)
    assert expected == pytest.approx(_kl(q, p) + _h(q) - _h(p), rel=1e-10, abs=1e-12)
    assert _kl(q, p) >= 0.0
    if q == p:
        assert expected == pytest.approx(0.0, abs=1e-12)


def test_excess_loss_stable_at_extremes():
    out = excess_loss(np.array([0.0, 1.0, 1e-300, 1 - 1e-17]))
    assert np.all(np.isfinite(out))
    assert out[0] == pytest.approx(math.log(1e12), rel=1e-6)
    assert abs(out[1]) < 1e-9


def test_excess_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="prob_chosen"):
        excess_loss(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="prob_chosen"):
        excess_loss(np.array([0.5, np.nan]))


# --------------------------------------------------------------------- FeatureDensity


def test_density_flags_shifted_points():
    rng = np.random.default_rng(0)
    d = 16
    a = rng.normal(size=(d, d)) / math.sqrt(d)
    train = rng.normal(size=(3000, d)) @ a
    dens = FeatureDensity.fit(train, n_components=8)
    assert dens.components.shape == (8, d)
    np.testing.assert_allclose(dens.components @ dens.components.T, np.eye(8), atol=1e-10)
    inside = rng.normal(size=(500, d)) @ a
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    std_along = float(np.std(train @ direction))
    outside = rng.normal(size=(500, d)) @ a + 5.0 * std_along * direction
    s_in, s_out = dens.score(inside), dens.score(outside)
    assert s_in.mean() < s_out.mean()
    labels = np.r_[np.zeros(500), np.ones(500)]
    assert roc_auc_score(labels, np.r_[s_in, s_out]) > 0.99


def test_density_full_rank_is_exact_mahalanobis():
    rng = np.random.default_rng(1)
    sd = np.array([1.0, 2.0, 3.0, 4.0])
    mu = np.array([1.0, -2.0, 0.5, 3.0])
    train = mu + rng.normal(size=(20_000, 4)) * sd
    dens = FeatureDensity.fit(train, n_components=4)
    assert dens.components.shape == (4, 4)
    new = mu + rng.normal(size=(200, 4)) * sd
    score = dens.score(new)
    # Against the true parameters: exact up to estimation noise in mean and variances
    # (which dominates the relative error of points near the centre, so compare on average).
    exact = np.sum(((new - mu) / sd) ** 2, axis=1) / 4
    assert np.mean(np.abs(score - exact)) / np.mean(exact) < 2e-2
    assert abs(score.mean() / exact.mean() - 1.0) < 1e-2
    # Against the fitted moments (sample mean, ddof=1 covariance): exact to rounding.
    m, cov = train.mean(axis=0), np.cov(train.T)
    c = new - m
    fitted = np.einsum("ij,jk,ik->i", c, np.linalg.inv(cov), c) / 4
    np.testing.assert_allclose(score, fitted, rtol=1e-10)


def test_density_residual_variance_and_small_n():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 10))
    dens = FeatureDensity.fit(x, n_components=32)
    assert dens.components.shape == (4, 10)  # k = n − 1
    assert dens.residual_variance >= 1e-12
    big = FeatureDensity.fit(rng.normal(size=(4000, 6)) * 2.0, n_components=2)
    assert big.residual_variance == pytest.approx(4.0, rel=0.1)


def test_density_round_trip():
    rng = np.random.default_rng(3)
    dens = FeatureDensity.fit(rng.normal(size=(300, 12)), n_components=5)
    arrs = dens.to_arrays()
    assert set(arrs) == {
        "density.mean",
        "density.components",
        "density.variances",
        "density.residual_variance",
    }
    back = FeatureDensity.from_arrays(arrs)
    x = rng.normal(size=(50, 12)) * 3
    np.testing.assert_array_equal(back.score(x), dens.score(x))
    other = FeatureDensity.from_arrays(dens.to_arrays(prefix="p/"), prefix="p/")
    np.testing.assert_array_equal(other.score(x), dens.score(x))
    with pytest.raises(ValueError, match=r"density\.variances"):
        FeatureDensity.from_arrays({k: v for k, v in arrs.items() if k != "density.variances"})


def test_density_bad_shapes_name_argument():
    dens = FeatureDensity.fit(np.random.default_rng(4).normal(size=(50, 3)))
    with pytest.raises(ValueError, match="x has 4 column"):
        dens.score(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="x must have shape"):
        FeatureDensity.fit(np.zeros(5))
    with pytest.raises(ValueError, match="x contains"):
        FeatureDensity.fit(np.array([[0.0, np.inf], [1.0, 2.0]]))


# --------------------------------------------------------------------- ErrorPredictor


def _softplus(x):
    return np.logaddexp(0.0, x)


def _planted(n: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    fc = rng.normal(size=(n, 2)) * [2.0, 0.5] + [1.0, -3.0]
    fr = rng.normal(size=(n, 2)) * [2.0, 0.5] + [1.0, -3.0]
    stacked = np.vstack([fc, fr])
    mean, scale = stacked.mean(axis=0), stacked.std(axis=0)

    def true_e(f):
        z = (f - mean) / scale
        return _softplus(1.5 * z[:, 0] - 0.5)

    truth = true_e(fc) + true_e(fr)
    target = truth + rng.normal(scale=0.01, size=n)
    return fc, fr, target, truth


def test_recovers_planted_model():
    fc, fr, target, truth = _planted()
    model = ErrorPredictor.fit(fc, fr, target, feature_names=["var", "density"])
    pred = model.predict_pairs(fc, fr)
    assert np.corrcoef(pred, truth)[0, 1] > 0.99
    w1, w2 = model.weight
    assert abs(w2) < 0.05 * abs(w1)
    assert w1 == pytest.approx(1.5, rel=0.05)
    assert model.bias == pytest.approx(-0.5, abs=0.05)
    np.testing.assert_allclose(
        model.predict_pairs(fc, fr), model.predict(fc) + model.predict(fr), rtol=1e-12
    )


def test_objective_gradient_matches_finite_differences():
    rng = np.random.default_rng(5)
    zc, zr = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    t = rng.normal(size=200)
    for _ in range(5):
        params = rng.normal(size=4)

        def f(p):
            return deup_mod._objective(p, zc, zr, t, 0.1)[0]

        def g(p):
            return deup_mod._objective(p, zc, zr, t, 0.1)[1]

        err = check_grad(f, g, params)
        assert err / np.linalg.norm(g(params)) < 1e-5


@settings(max_examples=60, deadline=None)
@given(
    feats=arrays(
        np.float64,
        st.tuples(st.integers(1, 20), st.just(3)),
        elements=st.floats(-1e8, 1e8, allow_nan=False),
    ),
    weight=arrays(np.float64, 3, elements=st.floats(-50, 50, allow_nan=False)),
    bias=st.floats(-50, 50, allow_nan=False),
)
def test_predict_is_nonnegative(feats, weight, bias):
    model = ErrorPredictor(("a", "b", "c"), np.zeros(3), np.ones(3), weight, bias)
    e = model.predict(feats)
    assert e.shape == (feats.shape[0],)
    assert np.all(e >= 0)
    assert not np.any(np.isnan(e))


def test_fitted_predict_nonnegative_on_extreme_inputs():
    fc, fr, target, _ = _planted(seed=6)
    model = ErrorPredictor.fit(fc, fr, target - 1.0, feature_names=["a", "b"])
    x = np.random.default_rng(7).normal(size=(1000, 2)) * 1e6
    assert np.all(model.predict(x) >= 0)


def test_round_trip():
    fc, fr, target, _ = _planted(n=300, seed=8)
    model = ErrorPredictor.fit(fc, fr, target, feature_names=["var", "density"])
    arrs = model.to_arrays()
    meta = json.loads(json.dumps(model.to_json()))
    assert meta["feature_names"] == ["var", "density"]
    back = ErrorPredictor.from_arrays(arrs, meta["feature_names"])
    assert back.feature_names == model.feature_names
    np.testing.assert_array_equal(back.predict(fc), model.predict(fc))
    np.testing.assert_array_equal(back.predict_pairs(fc, fr), model.predict_pairs(fc, fr))
    saved = ErrorPredictor.from_arrays(model.to_arrays(prefix="x."), ["var", "density"], "x.")
    np.testing.assert_array_equal(saved.predict(fr), model.predict(fr))
    with pytest.raises(ValueError, match=r"deup\.weight"):
        ErrorPredictor.from_arrays(
            {k: v for k, v in arrs.items() if k != "deup.weight"}, ["a", "b"]
        )
    with pytest.raises(ValueError, match=r"feature_mean must have shape \(3,\)"):
        ErrorPredictor.from_arrays(arrs, ["a", "b", "c"])


def test_bad_inputs_name_the_argument():
    fc, fr, target, _ = _planted(n=50, seed=9)
    names = ["a", "b"]
    with pytest.raises(ValueError, match="feat_chosen"):
        ErrorPredictor.fit(fc[:, :1], fr, target, feature_names=names)
    with pytest.raises(ValueError, match="feat_rejected"):
        ErrorPredictor.fit(fc, fr[:-1], target, feature_names=names)
    with pytest.raises(ValueError, match="target"):
        ErrorPredictor.fit(fc, fr, target[:-1], feature_names=names)
    with pytest.raises(ValueError, match="target"):
        ErrorPredictor.fit(fc, fr, target[:, None], feature_names=names)
    bad = fr.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="feat_rejected contains 1 non-finite"):
        ErrorPredictor.fit(fc, bad, target, feature_names=names)
    bad_t = target.copy()
    bad_t[0] = np.inf
    with pytest.raises(ValueError, match="target contains"):
        ErrorPredictor.fit(fc, fr, bad_t, feature_names=names)
    with pytest.raises(ValueError, match="empty"):
        ErrorPredictor.fit(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0), feature_names=names)
    model = ErrorPredictor.fit(fc, fr, target, feature_names=names)
    with pytest.raises(ValueError, match="features has 3 column"):
        model.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="feat_rejected"):
        model.predict_pairs(fc, fr[:, :1])
    with pytest.raises(ValueError, match="feat_rejected has 49 row"):
        model.predict_pairs(fc, fr[:-1])


def test_constant_feature_does_not_break_fit():
    fc, fr, target, truth = _planted(n=500, seed=10)
    fc = np.c_[fc, np.ones(500)]
    fr = np.c_[fr, np.ones(500)]
    model = ErrorPredictor.fit(fc, fr, target, feature_names=["a", "b", "const"])
    assert np.all(np.isfinite(model.weight))
    assert np.corrcoef(model.predict_pairs(fc, fr), truth)[0, 1] > 0.99
