"""Heads and the Bradley-Terry loss: hand-computed values and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rewardhedge.config import HeadConfig
from rewardhedge.models.heads import HeadStack
from rewardhedge.models.losses import bradley_terry_loss


def test_bt_loss_hand_computed():
    r_c = torch.tensor([[2.0, 0.0]])
    r_r = torch.tensor([[1.0, 0.0]])
    # -log σ(1) = log(1 + e^-1); -log σ(0) = log 2
    expected = (math.log1p(math.exp(-1.0)) + math.log(2.0)) / 2
    assert float(bradley_terry_loss(r_c, r_r)[0]) == pytest.approx(expected, rel=1e-6)


def test_bt_loss_margin_weights_and_centering():
    r_c = torch.tensor([[2.0, 0.0]])
    r_r = torch.tensor([[1.0, 0.0]])
    margin = torch.tensor([1.0, 0.0])  # first pair's gap becomes 0
    assert float(bradley_terry_loss(r_c, r_r, margin)[0]) == pytest.approx(math.log(2.0), rel=1e-6)
    weights = torch.tensor([[3.0, 0.0]])  # only the first pair counts
    got = float(bradley_terry_loss(r_c, r_r, None, weights)[0])
    assert got == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-6)
    # centering adds coef * mean((r_c + r_r)^2) = 0.5 * (9 + 0) / 2
    got = float(bradley_terry_loss(r_c, r_r, center_coef=0.5)[0])
    assert got == pytest.approx((math.log1p(math.exp(-1.0)) + math.log(2.0)) / 2 + 2.25, rel=1e-6)


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_batched_members_equal_separate_heads(kind):
    """Member k of a K-stack scores exactly like a 1-stack holding member k's parameters."""
    gen = torch.Generator().manual_seed(0)
    cfg = HeadConfig(kind=kind, hidden=8)
    stack = HeadStack(6, 4, cfg, generator=gen).eval()
    stack.set_standardisation(torch.randn(6, generator=gen), torch.rand(6, generator=gen) + 0.5)
    x = torch.randn(10, 6, generator=gen)
    together = stack(x)  # (4, 10)
    assert together.shape == (4, 10)
    for k in range(4):
        single = HeadStack(6, 1, cfg).eval()
        state = {
            n: (t[k : k + 1] if n not in ("feature_mean", "feature_scale") else t)
            for n, t in stack.state_dict().items()
        }
        single.load_state_dict(state)
        np.testing.assert_allclose(
            single(x)[0].detach().numpy(), together[k].detach().numpy(), rtol=1e-5, atol=1e-6
        )


def test_members_start_different():
    stack = HeadStack(5, 3, HeadConfig(kind="linear"), generator=torch.Generator().manual_seed(1))
    w = stack.weight.detach()
    assert not torch.allclose(w[0], w[1])
