"""The batched ensemble trainer: known answers, determinism, diversity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewardhedge.config import EncoderConfig, EnsembleConfig, HeadConfig, TrainConfig
from rewardhedge.train.head_training import fit_head_stack


def synthetic_bt(n=1500, d=8, seed=0):
    """Pairs whose labels are Bradley-Terry samples of a known linear reward."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    p = 1 / (1 + np.exp(-(a - b) @ w))
    y = rng.random(n) < p
    chosen = np.where(y[:, None], a, b)
    rejected = np.where(y[:, None], b, a)
    return chosen, rejected, w


def cfg(k=1, kind="linear", **train):
    """Mechanism tests pin a fast, unregularised optimiser (defaults are tuned for HH)."""
    train = {"lr": 1e-2, "l2": 0.0, **train}
    return EnsembleConfig(
        n_members=k,
        head=HeadConfig(kind=kind, hidden=16),
        train=TrainConfig(**train),
        encoder=EncoderConfig(kind="hashing"),
    )


def effective_weight(result) -> np.ndarray:
    heads = result.heads
    return (heads.weight.detach() / heads.feature_scale).numpy()  # (K, d) in raw feature units


def test_known_answer_linear_bt_recovers_the_reward():
    chosen, rejected, w = synthetic_bt()
    result = fit_head_stack(chosen, rejected, cfg(l2=0.0, lr=1e-2, val_fraction=0.0, epochs=300))
    w_hat = effective_weight(result)[0]
    cos = w_hat @ w / (np.linalg.norm(w_hat) * np.linalg.norm(w))
    assert cos > 0.98
    # the BT maximum-likelihood scale is recovered too (within sampling error)
    assert np.linalg.norm(w_hat) / np.linalg.norm(w) == pytest.approx(1.0, abs=0.2)


def test_training_lowers_loss_and_changes_parameters():
    chosen, rejected, _ = synthetic_bt(n=300)
    config = cfg(k=3, kind="mlp", epochs=100, val_fraction=0.0)
    gen = torch.Generator().manual_seed(config.train.seed)
    from rewardhedge.models.heads import HeadStack

    before = HeadStack(chosen.shape[1], 3, config.head, generator=gen).w1.detach().clone()
    result = fit_head_stack(chosen, rejected, config)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] * 0.9
    assert not torch.allclose(before, result.heads.w1.detach())


def test_same_seed_same_weights_other_seed_other_weights():
    chosen, rejected, _ = synthetic_bt(n=300)
    a = fit_head_stack(chosen, rejected, cfg(k=3, epochs=30))
    b = fit_head_stack(chosen, rejected, cfg(k=3, epochs=30))
    c = fit_head_stack(chosen, rejected, cfg(k=3, epochs=30, seed=1))
    assert torch.equal(a.heads.weight, b.heads.weight)
    assert not torch.equal(a.heads.weight, c.heads.weight)


def test_bootstrap_makes_linear_members_differ_and_without_it_they_agree():
    chosen, rejected, _ = synthetic_bt(n=400)
    boot = effective_weight(
        fit_head_stack(chosen, rejected, cfg(k=4, epochs=200, val_fraction=0.0))
    )
    same = effective_weight(
        fit_head_stack(chosen, rejected, cfg(k=4, epochs=400, val_fraction=0.0, bootstrap=False))
    )
    spread_boot = np.linalg.norm(boot - boot.mean(0), axis=1).mean()
    spread_same = np.linalg.norm(same - same.mean(0), axis=1).mean()
    # a convex loss without resampling drives every member to the same optimum
    assert spread_same < 0.25 * spread_boot


def test_early_stopping_keeps_each_members_best_epoch():
    chosen, rejected, _ = synthetic_bt(n=200, d=8)
    result = fit_head_stack(chosen, rejected, cfg(k=2, kind="mlp", epochs=200, patience=5))
    assert len(result.history) < 200
    for member, best in enumerate(result.best_epoch):
        val = [h["val_loss"][member] for h in result.history]
        assert best == int(np.argmin(val)) + 1
