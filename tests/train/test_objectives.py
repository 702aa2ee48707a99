"""Known answers for the rating objectives and the length head, on features whose true
reward is known: regression and HL-Gauss recover the ratings' scale (BT cannot), HL-Gauss
reads noisier ratings as more aleatoric, and a length head keeps the reward head off a
feature that only tracks length."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewardhedge.config import EnsembleConfig, HeadConfig, TrainConfig
from rewardhedge.models.losses import bradley_terry_loss, regression_loss
from rewardhedge.models.reward_heads import RewardHeads
from rewardhedge.train.head_training import _pair_loss, fit_head_stack
from rewardhedge.train.pair_targets import PairTargets

W = np.array([1.0, -0.5, 0.25, 0.0, 0.0, 0.0])


def rated_pairs(n: int, seed: int, noise_sd: float = 0.0):
    """``(xc, xr, ratings)``: random items rated ``3 + x·W`` (+ noise on items with
    x₃ > 0 when ``noise_sd``), paired and ordered by their true rating."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2 * n, len(W)))
    true = 3.0 + x @ W
    rating = true + noise_sd * rng.normal(size=2 * n) * (x[:, 3] > 0)
    a, b = np.arange(n), np.arange(n, 2 * n)
    swap = true[a] < true[b]
    c, r = np.where(swap, b, a), np.where(swap, a, b)
    return x[c], x[r], np.stack([rating[c], rating[r]], axis=1), x, true


def predict(heads, x) -> object:
    return RewardHeads(heads, EnsembleConfig().uncertainty).predict(torch.as_tensor(x).float())


def config(objective: str, **train) -> EnsembleConfig:
    return EnsembleConfig(
        n_members=2,
        head=HeadConfig(bins=41) if objective == "hl_gauss" else HeadConfig(),
        train=TrainConfig(objective=objective, epochs=200, lr=0.03, l2=1e-4, patience=200, **train),
    )


@pytest.mark.parametrize("objective", ["regression", "bt_regression", "hl_gauss"])
def test_rating_objectives_recover_the_ratings_scale_and_bt_does_not(objective):
    xc, xr, ratings, x, true = rated_pairs(400, seed=0)
    targets = PairTargets(ratings=ratings)
    heads = fit_head_stack(xc, xr, config(objective), targets=targets).heads
    rmse = float(np.sqrt(np.mean((predict(heads, x).mean - true) ** 2)))
    assert rmse < 0.25 * true.std(), rmse  # on the ratings' own scale, offset 3 included
    bt = fit_head_stack(xc, xr, config("bt"), targets=targets).heads
    bt_rmse = float(np.sqrt(np.mean((predict(bt, x).mean - true) ** 2)))
    assert bt_rmse > 2.0, bt_rmse  # BT's reward has no offset: about 3 away


def test_hl_gauss_aleatoric_is_larger_where_the_ratings_are_noisier():
    xc, xr, ratings, x, _ = rated_pairs(600, seed=1, noise_sd=1.0)
    mlp = EnsembleConfig(
        n_members=2,
        head=HeadConfig(kind="mlp", hidden=32, dropout=0.0, bins=41),
        train=TrainConfig(objective="hl_gauss", epochs=200, lr=0.03, l2=1e-4, patience=200),
    )
    # An MLP: a linear head's softmax needs very large weights for a narrow histogram.
    heads = fit_head_stack(xc, xr, mlp, targets=PairTargets(ratings=ratings)).heads
    aleatoric = predict(heads, x).aleatoric
    noisy = x[:, 3] > 0
    assert aleatoric[noisy].mean() > 2.0 * aleatoric[~noisy].mean()


def test_bt_regression_loss_is_bt_plus_weighted_squared_error():
    xc, xr, ratings, _, _ = rated_pairs(20, seed=2)
    ratings[3, 1] = np.nan  # one unrated side
    cfg = config("bt_regression", regression_weight=0.3)
    heads = fit_head_stack(
        xc, xr, replace_epochs(cfg, 1), targets=PairTargets(ratings=ratings)
    ).heads
    t = PairTargets(ratings=ratings).as_tensors()
    c, r = torch.as_tensor(xc).float(), torch.as_tensor(xr).float()
    got = _pair_loss(heads, c, r, t, cfg)
    with torch.no_grad():
        rc, rr = heads(c), heads(r)
    y = torch.cat([t.ratings[:, 0], t.ratings[:, 1]])
    want = bradley_terry_loss(rc, rr) + 0.3 * regression_loss(
        torch.cat([rc, rr], dim=1), torch.nan_to_num(y), torch.isfinite(y)
    )
    torch.testing.assert_close(got.detach(), want)


def replace_epochs(cfg: EnsembleConfig, epochs: int) -> EnsembleConfig:
    from dataclasses import replace

    return replace(cfg, train=replace(cfg.train, epochs=epochs))


def test_length_head_keeps_the_reward_head_off_a_length_only_feature():
    """Feature 0 is the response's log length (plus a little noise); chosen responses are
    longer in most pairs, and feature 1 is the real quality. A plain BT head leans on
    feature 0; with the length head, the reward head's correlation with length is small
    and it still orders pairs of equal length by quality."""
    rng = np.random.default_rng(3)
    n = 600
    quality = rng.normal(size=(2, n))
    log_len = rng.normal(size=(2, n))
    chosen_is_a = (quality[0] - quality[1]) + 1.5 * (log_len[0] - log_len[1]) > 0
    sides = []
    for a in (chosen_is_a, ~chosen_is_a):
        side = np.where(a, 0, 1)
        q, length = quality[side, np.arange(n)], log_len[side, np.arange(n)]
        feats = np.column_stack([length + 0.05 * rng.normal(size=n), q, rng.normal(size=(n, 3))])
        sides.append((feats, np.column_stack([length, length])))
    (xc, lc), (xr, lr) = sides
    targets = PairTargets(lengths=np.stack([lc, lr], axis=1))
    plain = fit_head_stack(xc, xr, config("bt"), targets=targets).heads
    decoupled_cfg = EnsembleConfig(
        n_members=2,
        head=HeadConfig(length_head=True),
        train=TrainConfig(epochs=200, lr=0.03, l2=1e-4, patience=200),
    )
    decoupled = fit_head_stack(xc, xr, decoupled_cfg, targets=targets).heads
    items = np.concatenate([xc, xr])
    lengths = items[:, 0]

    def corr(heads) -> float:
        return float(np.corrcoef(predict(heads, items).mean, lengths)[0, 1])

    assert corr(plain) > 0.5
    assert abs(corr(decoupled)) < 0.15
    # Equal lengths: both still order by quality.
    probe = np.zeros((2, 5))
    probe[0, 1] = 1.0
    for heads in (plain, decoupled):
        r = predict(heads, probe).mean
        assert r[0] > r[1]
    # The length head took the length: its weight on log length is positive.
    assert torch.all(decoupled.length_weight.sum(dim=1) > 0)


def test_regression_starts_at_the_mean_rating_so_small_data_lands_on_scale():
    """40 pairs, default settings (lr 1e-3, one step per epoch): from a zero bias the
    reward stayed near 0 while the ratings sit near 10."""
    xc, xr, ratings, x, true = rated_pairs(40, seed=5)
    cfg = EnsembleConfig(n_members=2, train=TrainConfig(objective="regression", epochs=50))
    heads = fit_head_stack(xc, xr, cfg, targets=PairTargets(ratings=ratings + 7.0)).heads
    assert abs(float(predict(heads, x).mean.mean()) - float((true + 7.0).mean())) < 0.5
