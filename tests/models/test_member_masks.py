"""Member feature masks on the head stack, and the diversity options that set them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rewardhedge.config import (
    DiversityConfig,
    EncoderConfig,
    EnsembleConfig,
    HeadConfig,
    TrainConfig,
    UncertaintyConfig,
)
from rewardhedge.errors import ConfigError
from rewardhedge.models.diversity import member_masks
from rewardhedge.models.heads import HeadStack, build_heads
from rewardhedge.models.reward_heads import RewardHeads
from rewardhedge.train.fitting import cross_fit, fit_estimator


def random_stack(kind: str, k: int = 4, d: int = 6, **options) -> HeadStack:
    gen = torch.Generator().manual_seed(0)
    stack = HeadStack(d, k, HeadConfig(kind=kind, hidden=8), generator=gen, **options).eval()
    stack.set_standardisation(torch.randn(d, generator=gen), torch.rand(d, generator=gen) + 0.5)
    with torch.no_grad():  # nonzero biases and variance weights, so nothing hides
        for p in stack.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return stack


def pairs(n: int = 240, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    swap = (a @ w < b @ w)[:, None]
    return np.where(swap, b, a).astype(np.float32), np.where(swap, a, b).astype(np.float32)


@pytest.mark.parametrize("kind", ["linear", "mlp"])
@pytest.mark.parametrize("gaussian", [False, True])
def test_a_masked_feature_does_not_move_that_members_reward(kind, gaussian):
    stack = random_stack(kind, gaussian=gaussian)
    mask = torch.ones(4, 6)
    mask[1, [0, 3]] = 0.0
    stack.set_member_mask(mask)
    x = torch.randn(5, 6)
    moved = x.clone()
    moved[:, 0] += 7.0
    moved[:, 3] -= 3.0
    (r, v), (r2, v2) = stack.forward_full(x), stack.forward_full(moved)
    torch.testing.assert_close(r[1], r2[1], rtol=0, atol=0)
    assert (r[0] - r2[0]).abs().min() > 1e-4  # unmasked members do see it
    if gaussian:
        torch.testing.assert_close(v[1], v2[1], rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_batched_masked_members_equal_a_loop_over_members(kind):
    stack = random_stack(kind)
    mask = (torch.rand(4, 6, generator=torch.Generator().manual_seed(3)) > 0.5).float()
    stack.set_member_mask(mask)
    x = torch.randn(7, 6)
    z = (x - stack.feature_mean) / stack.feature_scale
    together = stack(x)
    for k in range(4):
        zk = z * mask[k]
        if kind == "linear":
            expected = zk @ stack.weight[k] + stack.bias[k]
        else:
            hidden = torch.nn.functional.gelu(zk @ stack.w1[k] + stack.b1[k])
            expected = hidden @ stack.w2[k] + stack.b2[k]
        torch.testing.assert_close(together[k], expected, rtol=1e-5, atol=1e-6)
    # MC dropout masks compose with member masks: (K·T, n) rows, member-major.
    drop = torch.bernoulli(torch.full((3, 6), 0.5), generator=torch.Generator().manual_seed(1))
    thinned, _ = stack.forward_full(x, masks=drop)
    for k in range(4):
        for t in range(3):
            zk = z * drop[t] / (1.0 - stack.input_dropout) * mask[k]
            if kind == "linear":
                expected = zk @ stack.weight[k] + stack.bias[k]
            else:
                expected = (
                    torch.nn.functional.gelu(zk @ stack.w1[k] + stack.b1[k]) @ stack.w2[k]
                    + stack.b2[k]
                )
            torch.testing.assert_close(thinned[k * 3 + t], expected, rtol=1e-5, atol=1e-6)


def test_linear_last_layer_features_are_masked_per_member():
    stack = random_stack("linear")
    mask = torch.ones(4, 6)
    mask[2, :3] = 0.0
    stack.set_member_mask(mask)
    z = torch.randn(5, 6)
    feats = stack.last_layer_features(z)
    assert feats.shape == (4, 5, 6)
    assert torch.all(feats[2, :, :3] == 0) and torch.equal(feats[2, :, 3:], z[:, 3:])
    assert torch.equal(feats[0], z)
    w, b = stack.last_layer_weights()
    x = z * stack.feature_scale + stack.feature_mean  # raw features whose standardisation is z
    expected = torch.einsum("knp,kp->kn", feats, w) + b[:, None]
    torch.testing.assert_close(expected, stack(x), rtol=1e-5, atol=1e-5)


def test_set_member_mask_checks_shape_and_values():
    stack = random_stack("linear")
    with pytest.raises(ValueError, match="shape"):
        stack.set_member_mask(torch.ones(3, 6))
    with pytest.raises(ValueError, match="only 0 and 1"):
        stack.set_member_mask(torch.full((4, 6), 0.5))


def test_a_state_dict_without_member_mask_loads_as_all_ones():
    stack = random_stack("mlp")
    state = {k: v for k, v in stack.state_dict().items() if k != "member_mask"}
    other = HeadStack(6, 4, HeadConfig(kind="mlp", hidden=8))
    other.set_member_mask(torch.zeros(4, 6))
    other.load_state_dict(state, strict=True)
    assert torch.equal(other.member_mask, torch.ones(4, 6))
    x = torch.randn(3, 6)
    torch.testing.assert_close(other.eval()(x), stack(x), rtol=0, atol=0)


def cfg(kind="subspace", *, k=4, head="linear", estimator="ensemble", seed=0, **diversity):
    return EnsembleConfig(
        n_members=k,
        head=HeadConfig(kind=head, hidden=8),
        train=TrainConfig(epochs=30, seed=seed, lr=1e-2),
        uncertainty=UncertaintyConfig(
            estimator=estimator, laplace_samples=4, mc_samples=4, calibration_folds=0
        ),
        encoder=EncoderConfig(kind="hashing", dim=8),
        diversity=DiversityConfig(kind=kind, **diversity),
    )


def test_subspace_masks_are_seeded_sized_and_differ_between_members():
    masks = member_masks(cfg(k=5, subspace_fraction=0.3), 50)
    assert masks.shape == (5, 50) and set(np.unique(masks)) == {0.0, 1.0}
    assert np.all(masks.sum(axis=1) == math.ceil(0.3 * 50))
    assert len({m.tobytes() for m in masks}) == 5
    np.testing.assert_array_equal(masks, member_masks(cfg(k=5, subspace_fraction=0.3), 50))
    assert not np.array_equal(masks, member_masks(cfg(k=5, subspace_fraction=0.3, seed=1), 50))
    assert member_masks(cfg("bootstrap"), 50) is None
    assert np.all(member_masks(cfg(k=2, subspace_fraction=1.0), 7) == 1.0)


def test_views_masks_select_exactly_the_view_slices():
    config = cfg("views", k=5)  # hashing views by default: hash, hash_bigram, hash_char
    assert config.encoder.views == ("hash", "hash_bigram", "hash_char")
    masks = member_masks(config, 24)
    for member, (start, stop) in enumerate([(0, 8), (8, 16), (16, 24), (0, 8), (8, 16)]):
        expected = np.zeros(24)
        expected[start:stop] = 1.0
        np.testing.assert_array_equal(masks[member], expected)
    # A transformer encoder config: ctx views share the width the hash views leave.
    tf = EnsembleConfig(
        n_members=3,
        encoder=EncoderConfig(views=("ctx_l4", "hash", "ctx_low"), dim=16),
        diversity=DiversityConfig(kind="views"),
    )
    masks = member_masks(tf, 2 * 384 + 16)
    assert [tuple(np.flatnonzero(m)[[0, -1]]) for m in masks] == [
        (0, 383),
        (384, 399),
        (400, 783),
    ]
    with pytest.raises(ConfigError, match=r"cannot hold encoder\.views"):
        member_masks(tf, 2 * 384 + 15)


@pytest.mark.parametrize(
    ("head", "estimator"),
    [("linear", "ensemble"), ("mlp", "ensemble"), ("linear", "laplace"), ("mlp", "gaussian")],
)
def test_masked_weights_stay_zero_through_training(head, estimator):
    xc, xr = pairs()
    config = cfg(k=3, head=head, estimator=estimator, subspace_fraction=0.5)
    config = EnsembleConfig.from_dict(
        {
            **config.to_dict(),
            "encoder": {"kind": "hashing", "dim": 12},
            "train": {"epochs": 30, "lr": 1e-2, "l2": 0.1, "weight_decay": 0.01},
        }
    )
    model, _ = fit_estimator(xc, xr, config)
    heads = model.heads
    off = heads.member_mask == 0
    assert off.any()
    if head == "linear":
        assert torch.all(heads.weight[off] == 0)
        assert bool((heads.weight[~off] != 0).all())
    else:
        assert torch.all(heads.w1.permute(0, 2, 1)[off.unsqueeze(1).expand(-1, 8, -1)] == 0)
    # Member 0's scores ignore a feature it does not see.
    i = int(torch.nonzero(off[0])[0])
    x = torch.from_numpy(xc[:6])
    moved = x.clone()
    moved[:, i] += 4.0
    s = model.n_outputs // 3
    np.testing.assert_array_equal(model.predict(x).members[:s], model.predict(moved).members[:s])
    again = RewardHeads.from_tensors(
        build_heads(12, config), config.uncertainty, model.state_tensors()
    )
    np.testing.assert_array_equal(again.predict(x).members, model.predict(x).members)


def test_bootstrap_kind_builds_the_same_heads_as_before():
    """The default kind leaves the heads (init, mask, training) exactly as they were."""
    xc, xr = pairs()
    plain = EnsembleConfig(
        n_members=3,
        train=TrainConfig(epochs=10),
        uncertainty=UncertaintyConfig(calibration_folds=0),
    )
    model, _ = fit_estimator(xc, xr, plain)
    assert torch.equal(model.heads.member_mask, torch.ones(3, 12))
    gen = torch.Generator().manual_seed(0)
    fresh = HeadStack(12, 3, plain.head, generator=gen)
    built = build_heads(12, plain, generator=torch.Generator().manual_seed(0))
    assert torch.equal(fresh.weight, built.weight)


def test_cross_fit_uses_the_same_masks():
    xc, xr = pairs(n=120)
    config = cfg(k=3, subspace_fraction=0.25)
    config = EnsembleConfig.from_dict(
        {**config.to_dict(), "encoder": {"kind": "hashing", "dim": 12}}
    )
    final, _ = fit_estimator(xc, xr, config)
    held = cross_fit(xc, xr, config, folds=3)
    for fold_model in held.models:
        assert torch.equal(fold_model.heads.member_mask, final.heads.member_mask)
