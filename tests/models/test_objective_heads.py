"""The pieces behind the rating objectives, the length head and Lipschitz heads:
HL-Gauss targets and loss, the decorrelation penalty, spectral clipping, and the head
shapes the options build."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rewardhedge.config import EnsembleConfig, HeadConfig, TrainConfig, UncertaintyConfig
from rewardhedge.errors import ConfigError
from rewardhedge.models.heads import build_heads
from rewardhedge.models.losses import decorrelation_penalty, hl_gauss_loss, hl_gauss_targets


@settings(max_examples=50, deadline=None)
@given(y=st.floats(-0.8, 0.8), sigma=st.floats(0.01, 0.3))
def test_hl_gauss_targets_are_a_distribution_centred_on_the_rating(y, sigma):
    centers = torch.linspace(-1.0, 1.0, 41, dtype=torch.float64)
    assume(abs(y) + 4 * sigma < 1.0)  # the Gaussian is not cut by the range's ends
    t = hl_gauss_targets(torch.tensor([y], dtype=torch.float64), centers, sigma)[0]
    assert torch.all(t >= 0)
    assert float(t.sum()) == pytest.approx(1.0, abs=1e-9)
    # Inside the range the histogram's mean is the rating (up to half a bin).
    assert float(t @ centers) == pytest.approx(y, abs=0.05 * 0.5 + 1e-6)


def test_hl_gauss_loss_is_smallest_at_the_target_and_skips_unrated_items():
    centers = torch.linspace(0.0, 4.0, 5)
    y = torch.tensor([1.0, float("nan")])
    target = hl_gauss_targets(torch.tensor([1.0]), centers, 0.75)
    best = torch.log(target).reshape(1, 1, 5).expand(1, 2, 5)
    other = torch.zeros(1, 2, 5)
    mask = torch.isfinite(y)
    assert float(hl_gauss_loss(best, y, centers, 0.75, mask)[0]) < float(
        hl_gauss_loss(other, y, centers, 0.75, mask)[0]
    )
    # The unrated second item does not count: changing its logits changes nothing.
    moved = best.clone()
    moved[0, 1] = torch.tensor([9.0, -9.0, 0.0, 1.0, 2.0])
    assert torch.equal(
        hl_gauss_loss(best, y, centers, 0.75, mask), hl_gauss_loss(moved, y, centers, 0.75, mask)
    )


def test_decorrelation_penalty_is_the_squared_pearson_correlation():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(3, 50))
    c = rng.normal(size=50)
    want = [np.corrcoef(r[k], c)[0, 1] ** 2 for k in range(3)]
    got = decorrelation_penalty(torch.from_numpy(r), torch.from_numpy(c)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(bound=st.floats(0.05, 3.0), seed=st.integers(0, 1000))
def test_settled_power_iteration_bounds_each_member_exactly(bound, seed):
    """After ``settle_spectral`` the hidden layer a member scores with has spectral norm
    min(σ_max, bound), to 1e-4, whatever the weights."""
    head = HeadConfig(kind="mlp", hidden=7, spectral_norm=bound)
    heads = build_heads(
        12, EnsembleConfig(n_members=3, head=head), torch.Generator().manual_seed(seed)
    )
    with torch.no_grad():
        heads.w1.mul_(torch.tensor([0.1, 1.0, 10.0])[:, None, None])  # below, near, above
    heads.settle_spectral()
    heads.eval()
    sigma = torch.linalg.matrix_norm(heads.w1.detach(), ord=2)
    got = torch.linalg.matrix_norm(heads._bounded(heads.w1.detach()), ord=2)
    torch.testing.assert_close(got, torch.clamp(sigma, max=bound), rtol=1e-4, atol=1e-6)


def test_trained_spectral_norm_heads_stay_within_the_bound():
    from rewardhedge.train.head_training import fit_head_stack

    rng = np.random.default_rng(0)
    xc, xr = rng.normal(size=(80, 10)) + 1.0, rng.normal(size=(80, 10))
    head = HeadConfig(kind="mlp", hidden=16, spectral_norm=0.5)
    config = EnsembleConfig(n_members=2, head=head, train=TrainConfig(epochs=30, lr=0.05))
    heads = fit_head_stack(xc, xr, config).heads
    # The first layer the features meet has norm <= 0.5 per member, while the raw
    # weights grew past it (so the bound was binding).
    eff = heads._bounded(heads.w1.detach() * heads.member_mask[:, :, None])
    assert torch.all(torch.linalg.matrix_norm(eff, ord=2) <= 0.5 * (1 + 1e-4))
    assert torch.all(torch.linalg.matrix_norm(heads.w1.detach(), ord=2) > 0.5)


def test_option_shapes():
    hl = build_heads(6, EnsembleConfig(n_members=2, train=TrainConfig(objective="hl_gauss")))
    assert hl.bins == 51 and tuple(hl.weight.shape) == (2, 6, 51)
    assert tuple(hl.bin_logits(torch.zeros(4, 6)).shape) == (2, 4, 51)
    reward, var = hl.forward_full(torch.zeros(4, 6))
    assert tuple(reward.shape) == tuple(var.shape) == (2, 4)
    length = build_heads(6, EnsembleConfig(n_members=2, head=HeadConfig(length_head=True)))
    assert tuple(length.length_weight.shape) == (2, 2)
    assert "length_weight" in length.state_dict()
    plain = build_heads(6, EnsembleConfig(n_members=2))
    assert plain.bins == 0 and plain.n_length == 0 and "length_weight" not in plain.state_dict()


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"head": HeadConfig(kind="linear")}, None),
        (
            {
                "train": TrainConfig(objective="regression"),
                "uncertainty": UncertaintyConfig(estimator="laplace"),
            },
            "takes its Hessian from the BT loss",
        ),
        (
            {
                "head": HeadConfig(length_head=True),
                "uncertainty": UncertaintyConfig(estimator="laplace"),
            },
            "would ignore the length head",
        ),
        (
            {
                "train": TrainConfig(objective="hl_gauss"),
                "uncertainty": UncertaintyConfig(estimator="gaussian"),
            },
            "learns its noise from the BT loss",
        ),
        (
            {"train": TrainConfig(objective="hl_gauss"), "head": HeadConfig(length_head=True)},
            "cannot be added",
        ),
    ],
)
def test_combinations_the_formulas_do_not_cover_are_refused(kwargs, needle):
    if needle is None:
        EnsembleConfig(**kwargs)
        return
    with pytest.raises(ConfigError, match=needle):
        EnsembleConfig(**kwargs)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: HeadConfig(spectral_norm=1.0), "a linear head has none"),
        (lambda: HeadConfig(kind="mlp", spectral_norm=0.0), "head.spectral_norm == 0.0"),
        (lambda: HeadConfig(bins=1), "head.bins == 1"),
        (lambda: HeadConfig(hl_sigma=0.0), "head.hl_sigma"),
        (lambda: TrainConfig(objective="l1"), "train.objective == 'l1'"),
        (lambda: TrainConfig(regression_weight=-1.0), "train.regression_weight"),
        (lambda: TrainConfig(length_decorrelation=-0.5), "train.length_decorrelation"),
    ],
)
def test_bad_values_name_the_field(make, needle):
    with pytest.raises(ConfigError, match=needle):
        make()


def test_finetuning_refuses_hl_gauss_naming_the_frozen_head_command():
    from rewardhedge.config_finetune import FinetuneConfig

    with pytest.raises(ConfigError, match="rewardhedge train --objective hl_gauss"):
        FinetuneConfig(objective="hl_gauss")


def test_ratings_past_the_range_count_as_the_end_bin():
    centers = torch.linspace(0.0, 1.0, 5)
    t = hl_gauss_targets(torch.tensor([50.0, -50.0]), centers, 0.1)
    torch.testing.assert_close(t.sum(dim=1), torch.ones(2))
    assert t[0].argmax() == 4 and t[1].argmax() == 0


def test_histogram_output_weights_are_penalised_by_their_mean_over_bins():
    config = EnsembleConfig(
        n_members=2, head=HeadConfig(bins=8), train=TrainConfig(objective="hl_gauss")
    )
    heads = build_heads(3, config)
    with torch.no_grad():
        heads.weight.fill_(1.0)
    # 3 features × 8 bins of 1.0 each: a scalar head's 3, not 24.
    torch.testing.assert_close(heads.l2_penalty(), torch.full((2,), 3.0))


def test_a_bound_that_never_binds_changes_nothing():
    from rewardhedge.train.head_training import fit_head_stack

    rng = np.random.default_rng(1)
    xc, xr = rng.normal(size=(60, 8)) + 0.5, rng.normal(size=(60, 8))
    plain = EnsembleConfig(
        n_members=2, head=HeadConfig(kind="mlp", hidden=8), train=TrainConfig(epochs=10)
    )
    loose = EnsembleConfig(
        n_members=2,
        head=HeadConfig(kind="mlp", hidden=8, spectral_norm=1e6),
        train=TrainConfig(epochs=10),
    )
    a, b = fit_head_stack(xc, xr, plain).heads, fit_head_stack(xc, xr, loose).heads
    x = torch.as_tensor(xc).float()
    torch.testing.assert_close(a(x), b(x))


def test_features_constant_in_training_read_zero_not_a_million():
    """A feature with no spread in training (a hashing bucket no training text hit) is
    ignored when it shows up later, instead of being divided by 1e-6."""
    from rewardhedge.train.head_training import fit_head_stack

    rng = np.random.default_rng(2)
    xc, xr = rng.normal(size=(50, 6)) + 0.3, rng.normal(size=(50, 6))
    xc[:, 5] = xr[:, 5] = 0.0  # never varies in training
    heads = fit_head_stack(xc, xr, EnsembleConfig(n_members=2, train=TrainConfig(epochs=20))).heads
    probe = torch.zeros(2, 6)
    probe[1, 5] = 3.0  # only the unseen feature differs
    r = heads(probe)
    torch.testing.assert_close(r[:, 0], r[:, 1])
