"""The influence-function algebra for linear Bradley-Terry heads, checked against exact
float64 minimisers: each term equals the derivative it claims to be (with the trainer's
normalisation: a weighted *mean* loss plus l2·‖θ‖²)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewardhedge.models.influence import (
    SCALE_FLOOR,
    bt_hessian,
    linear_bt_influence,
    standardisation_effect,
)
from rewardhedge.models.laplace import bt_ggn


def minimise(dphi, w, l2, offset=None):
    """The exact minimiser of ``mean_w softplus(−(Δφθ − m)) + l2‖θ‖²`` by Newton's method."""
    a = w / w.sum()
    m = torch.zeros(len(dphi), dtype=torch.float64) if offset is None else offset
    theta = torch.zeros(dphi.shape[1], dtype=torch.float64)
    for _ in range(60):
        p = torch.sigmoid(dphi @ theta - m)
        grad = -(a * (1 - p)) @ dphi + 2 * l2 * theta
        hess = dphi.T @ ((a * p * (1 - p))[:, None] * dphi) + 2 * l2 * torch.eye(len(theta))
        theta = theta - torch.linalg.solve(hess, grad)
    return theta


@pytest.fixture
def problem():
    gen = torch.Generator().manual_seed(0)
    n, p = 15, 4
    dphi = torch.randn(n, p, generator=gen, dtype=torch.float64) + 0.3
    w = torch.randint(0, 3, (n,), generator=gen).double()  # bootstrap-like counts, some 0
    w[0] = 2.0
    offset = torch.rand(n, generator=gen, dtype=torch.float64) * 0.5
    test = torch.randn(p, generator=gen, dtype=torch.float64)
    return dphi, w, offset, test


def test_bt_hessian_is_the_laplace_ggn_and_the_autograd_hessian(problem) -> None:
    dphi, w, offset, _ = problem
    theta = torch.tensor([0.3, -0.2, 0.5, 0.1], dtype=torch.float64)
    np.testing.assert_allclose(bt_hessian(dphi, theta, w), bt_ggn(dphi, theta, w), rtol=1e-12)

    def loss(t):
        return (w * torch.nn.functional.softplus(-(dphi @ t - offset))).sum()

    exact = torch.autograd.functional.hessian(loss, theta)
    np.testing.assert_allclose(bt_hessian(dphi, theta, w, offset), exact, rtol=1e-10)


@pytest.mark.parametrize("with_offset", [False, True])
def test_removal_is_the_derivative_of_the_exact_minimiser(problem, with_offset: bool) -> None:
    """``removal[i]`` = d/dε of f(θ̂) when pair i's weight becomes w_i(1 − ε), the mean
    renormalised: the first-order effect of dropping it (ε = 1)."""
    dphi, w, offset, test = problem
    off = offset if with_offset else None
    l2, eps = 0.3, 1e-6
    theta = minimise(dphi, w, l2, off)
    got = linear_bt_influence(dphi, theta, w, l2, test, offset=off)
    assert abs(got.unconverged) < 1e-12
    for i in range(len(w)):
        wi = w.clone()
        wi[i] *= 1 - eps
        moved = minimise(dphi, wi, l2, off)
        expected = float(test @ (moved - theta)) / eps
        assert float(got.removal[i]) == pytest.approx(expected, rel=1e-4, abs=1e-9), i
    assert float(got.removal[w == 0].abs().max()) == 0.0  # a pair never drawn: no loss term


def test_unconverged_is_the_newton_step_to_the_minimiser(problem) -> None:
    dphi, w, offset, test = problem
    theta = minimise(dphi, w, 0.3, offset)
    early = theta * 0.999  # "early stopped" just short of the minimiser
    got = linear_bt_influence(dphi, early, w, 0.3, test, offset=offset)
    assert got.unconverged == pytest.approx(float(test @ (theta - early)), rel=1e-3)


def test_scale_term_is_the_derivative_through_the_penalty(problem) -> None:
    """With raw features x = Δφ·s, changing the scale s → s + tδ changes the standardised
    features and so the minimiser; the term is the derivative in t."""
    dphi, w, offset, test_raw = problem
    l2, t = 0.3, 1e-6
    s = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=torch.float64)
    delta = torch.tensor([0.1, -0.2, 0.05, 0.3], dtype=torch.float64)
    raw = dphi * s

    def margin(scale):
        theta = minimise(raw / scale, w, l2, offset)
        return float((test_raw / scale) @ theta)

    theta = minimise(raw / s, w, l2, offset)
    got = linear_bt_influence(raw / s, theta, w, l2, test_raw / s, offset=offset)
    coef = -4 * l2 * got.solve * theta
    predicted = float(coef @ (delta / s))
    expected = (margin(s + t * delta) - margin(s)) / t
    assert predicted == pytest.approx(expected, rel=1e-4)


def test_standardisation_effect_uses_the_exact_scale_without_each_pair() -> None:
    gen = torch.Generator().manual_seed(1)
    xc = torch.randn(9, 5, generator=gen, dtype=torch.float64)
    xr = torch.randn(9, 5, generator=gen, dtype=torch.float64)
    xc[:, 4] = xr[:, 4] = 2.0  # a constant feature sits at the floor and stays there
    coef = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    scale = torch.cat([xc, xr]).std(0).clamp_min(SCALE_FLOOR)
    expected = torch.stack(
        [
            (torch.cat([xc, xr])[[j for j in range(18) if j not in (i, i + 9)]].std(0))
            .clamp_min(SCALE_FLOOR)
            .sub(scale)
            .div(scale)
            @ coef
            for i in range(9)
        ]
    )
    np.testing.assert_allclose(standardisation_effect(xc, xr, coef, chunk=4), expected, atol=1e-12)


def test_a_one_feature_case_with_a_known_answer() -> None:
    """Two pairs favour feature +1, one favours −1: θ̂ > 0, the agreeing pairs hold the
    test margin up (removing one lowers it), the contrary pair holds it down."""
    dphi = torch.tensor([[1.0], [1.0], [-1.0]], dtype=torch.float64)
    w = torch.ones(3, dtype=torch.float64)
    theta = minimise(dphi, w, 0.1)
    assert float(theta) > 0
    got = linear_bt_influence(dphi, theta, w, 0.1, torch.tensor([1.0]))
    assert float(got.removal[0]) < 0 and float(got.removal[1]) < 0 < float(got.removal[2])
    for i in range(3):  # and retraining agrees in sign
        keep = [j for j in range(3) if j != i]
        actual = float(minimise(dphi[keep], w[keep], 0.1) - theta)
        assert np.sign(actual) == np.sign(float(got.removal[i]))


def test_a_singular_hessian_asks_for_damping() -> None:
    dphi = torch.tensor([[1.0, 0.0]], dtype=torch.float64)  # the 2nd weight is undetermined
    args = (dphi, torch.zeros(2), torch.ones(1), 0.0, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="pass damping > 0"):
        linear_bt_influence(*args)
    assert linear_bt_influence(*args, damping=1e-3).removal.shape == (1,)
