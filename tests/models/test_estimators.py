"""The uncertainty estimators on pair features: each behaves as its method says it should."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rewardhedge.config import (
    EncoderConfig,
    EnsembleConfig,
    HeadConfig,
    MemberNormKind,
    TrainConfig,
    UncertaintyConfig,
)
from rewardhedge.models.heads import build_heads
from rewardhedge.models.reward_heads import RewardHeads
from rewardhedge.train.fitting import cross_fit, fit_estimator
from rewardhedge.types import RewardEstimate, pairwise_from_estimates, sigmoid


def cfg(estimator="ensemble", k=1, kind="linear", **unc) -> EnsembleConfig:
    return EnsembleConfig(
        n_members=k,
        head=HeadConfig(kind=kind, hidden=16),
        train=TrainConfig(lr=1e-2, l2=1e-3, epochs=200),
        encoder=EncoderConfig(kind="hashing"),
        uncertainty=UncertaintyConfig(estimator=estimator, calibration_folds=0, **unc),
    )


def bt_pairs(n=800, d=6, seed=0, noisy_dim=None):
    """Bradley-Terry labels of a known linear reward; with ``noisy_dim``, pairs whose
    two items have that feature switched on get coin-flip labels instead."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d) * 2.0
    a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    p = sigmoid((a - b) @ w)
    if noisy_dim is not None:
        noisy = rng.random(n) < 0.5
        a[:, noisy_dim] = b[:, noisy_dim] = noisy.astype(float)
        p = np.where(noisy, 0.5, p)
    y = rng.random(n) < p
    chosen = np.where(y[:, None], a, b).astype(np.float32)
    rejected = np.where(y[:, None], b, a).astype(np.float32)
    return chosen, rejected


def test_gaussian_heads_put_aleatoric_variance_where_labels_are_coin_flips():
    xc, xr = bt_pairs(n=3000, noisy_dim=5)
    model, _ = fit_estimator(xc, xr, cfg("gaussian"))
    x = torch.from_numpy(np.concatenate([xc, xr]))
    est = model.predict(x)
    noisy = x[:, 5].numpy() > 0.5
    assert est.aleatoric[noisy].mean() > 2.0 * est.aleatoric[~noisy].mean()
    assert np.all(est.aleatoric > 0)


def test_mc_dropout_members_are_fixed_thinned_networks():
    xc, xr = bt_pairs()
    model, _ = fit_estimator(xc, xr, cfg("mc_dropout", k=2, mc_samples=8))
    x = torch.from_numpy(xc[:50])
    whole = model.predict(x)
    parts = [model.predict(x[:17]), model.predict(x[17:])]
    assert whole.members.shape == (16, 50)
    np.testing.assert_array_equal(whole.members, np.concatenate([p.members for p in parts], axis=1))
    np.testing.assert_array_equal(whole.members, model.predict(x).members)
    assert np.all(whole.epistemic > 0)
    # Sample t of head k is head k with mask t: recompute one by hand.
    heads = model.heads
    mask = model.dropout_masks()[3]
    z = (x - heads.feature_mean) / heads.feature_scale * mask / (1 - 0.1)
    by_hand = (z @ heads.weight[1] + heads.bias[1]).detach().double().numpy()
    raw = model.norm.invert(whole.members)  # members are normalised per head (the default)
    np.testing.assert_allclose(raw[8 + 3], by_hand, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_laplace_mean_is_the_trained_reward_and_variance_the_posterior(kind):
    xc, xr = bt_pairs()
    model, result = fit_estimator(xc, xr, cfg("laplace", kind=kind, laplace_samples=200))
    x = torch.from_numpy(xc[:40])
    est = model.predict(x)
    with torch.no_grad():
        plain = result.heads(x)[0].double().numpy()
        z = (x - result.heads.feature_mean) / result.heads.feature_scale
        phi = result.heads.last_layer_features(z)[0].double()
    np.testing.assert_allclose(est.mean, plain, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(est.epistemic, model.laplace[0].variance(phi).numpy(), rtol=1e-10)
    assert est.members.shape == (200, 40)
    # The members are rewards under posterior draws: their spread tracks the variance.
    assert np.corrcoef(est.members.var(axis=0), est.epistemic)[0, 1] > 0.8


def test_laplace_variance_is_larger_off_the_training_data():
    xc, xr = bt_pairs()
    xc[:, 4] *= 0.01  # a direction the training data barely spans
    xr[:, 4] *= 0.01
    model, _ = fit_estimator(xc, xr, cfg("laplace"))
    inside = torch.from_numpy(xc[:200])
    outside = inside.clone()
    outside[:, 4] = 3.0
    assert model.predict(outside).epistemic.mean() > 10 * model.predict(inside).epistemic.mean()


def test_laplace_train_prior_matches_the_l2_penalty():
    xc, xr = bt_pairs(n=300)
    config = cfg("laplace")
    model, result = fit_estimator(xc, xr, config)
    # mean loss + l2·‖θ‖² over n_train pairs == (summed loss + α/2‖θ‖²) / n_train
    assert model.laplace[0].prior_precision == pytest.approx(2 * 1e-3 * result.n_train)
    evidence, _ = fit_estimator(xc, xr, cfg("laplace", laplace_prior="evidence"))
    assert evidence.laplace[0].prior_precision != pytest.approx(2 * 1e-3 * result.n_train)


def test_identical_members_give_zero_epistemic():
    xc, xr = bt_pairs(n=300)
    model, _ = fit_estimator(xc, xr, cfg("ensemble", k=3))
    snapshot = model.heads.member_slices()
    for k in (1, 2):
        model.heads.load_member(snapshot, 0)
        for name, p in model.heads.named_parameters():
            with torch.no_grad():
                p[k].copy_(snapshot[name][0])
    model.fit_norm(torch.from_numpy(np.concatenate([xc, xr])), MemberNormKind.STANDARDIZE)
    est = model.predict(torch.from_numpy(xc[:30]))
    assert np.all(est.epistemic == 0.0)
    pw = pairwise_from_estimates(est, model.predict(torch.from_numpy(xr[:30])))
    assert np.all(pw.prob_std < 1e-15)  # float rounding of a mean of equal numbers


@pytest.mark.parametrize(
    ("estimator", "kind", "k"),
    [
        ("ensemble", "linear", 3),
        ("mc_dropout", "mlp", 2),
        ("gaussian", "linear", 2),
        ("gaussian", "mlp", 1),
        ("laplace", "linear", 2),
        ("laplace", "mlp", 1),
    ],
)
def test_state_tensors_round_trip_gives_identical_estimates(estimator, kind, k):
    xc, xr = bt_pairs(n=300)
    config = cfg(estimator, k=k, kind=kind, mc_samples=4, laplace_samples=4)
    model, _ = fit_estimator(xc, xr, config)
    tensors = {name: t.clone() for name, t in model.state_tensors().items()}
    again = RewardHeads.from_tensors(build_heads(6, config), config.uncertainty, tensors)
    x = torch.from_numpy(xr[:25])
    a, b = model.predict(x), again.predict(x)
    for field in ("mean", "epistemic", "aleatoric", "members"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_from_tensors_refuses_missing_laplace_state():
    xc, xr = bt_pairs(n=200)
    config = cfg("laplace")
    model, _ = fit_estimator(xc, xr, config)
    tensors = {k: v for k, v in model.state_tensors().items() if not k.startswith("laplace.")}
    with pytest.raises(ValueError, match=r"laplace\.0\.theta"):
        RewardHeads.from_tensors(build_heads(6, config), config.uncertainty, tensors)


def test_cross_fit_predicts_every_pair_with_a_model_that_did_not_see_it():
    xc, xr = bt_pairs(n=120)
    held = cross_fit(xc, xr, cfg("ensemble", k=2), folds=3)
    assert held.chosen.members.shape == (2, 120) and sorted(set(held.fold)) == [0, 1, 2]
    for f in (0, 2):
        rows = np.flatnonzero(held.fold == f)
        again = held.models[f].predict(torch.from_numpy(xc[rows]))
        np.testing.assert_allclose(held.chosen.mean[rows], again.mean, rtol=1e-12)


def test_pairwise_probability_uses_the_noise_and_the_temperature():
    chosen = RewardEstimate.from_members(np.array([[2.0, 1.0]]), aleatoric=np.array([[1.0, 0.0]]))
    rejected = RewardEstimate.from_members(np.array([[0.0, 0.0]]), aleatoric=np.array([[3.0, 0.0]]))
    pw = pairwise_from_estimates(chosen, rejected)
    by_hand = [sigmoid(np.array(2.0 / math.sqrt(1 + math.pi / 8 * 4.0))), sigmoid(np.array(1.0))]
    np.testing.assert_allclose(pw.prob, np.array(by_hand, dtype=float), rtol=1e-12)
    hot = pairwise_from_estimates(chosen, rejected, temperature=2.0)
    np.testing.assert_allclose(hot.raw_prob, pw.prob, rtol=1e-12)
    np.testing.assert_allclose(hot.prob[1], sigmoid(np.array(0.5)), rtol=1e-12)
    with pytest.raises(ValueError, match="temperature"):
        pairwise_from_estimates(chosen, rejected, temperature=0.0)


def test_laplace_members_average_exactly_to_the_map_reward():
    xc, xr = bt_pairs(n=300)
    model, _ = fit_estimator(xc, xr, cfg("laplace", k=2, laplace_samples=6))
    est = model.predict(torch.from_numpy(xc[:20]))
    raw = model.norm.invert(est.members)  # members are normalised per head (the default)
    np.testing.assert_allclose(raw.mean(axis=0), est.mean, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="even"):
        UncertaintyConfig(estimator="laplace", laplace_samples=5)
