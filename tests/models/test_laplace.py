"""Tests for the last-layer Laplace approximation of Bradley-Terry reward models."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from rewardhedge.models.laplace import LastLayerLaplace, bt_ggn

DT = torch.float64


def _data(n: int, p: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    delta_phi = torch.randn(n, p, generator=g, dtype=DT)
    theta = 0.5 * torch.randn(p, generator=g, dtype=DT)
    weights = torch.rand(n, generator=g, dtype=DT) * 2.0
    return delta_phi, theta, weights


def _loss(
    theta: torch.Tensor, delta_phi: torch.Tensor, weights: torch.Tensor, alpha: float
) -> torch.Tensor:
    return (weights * F.softplus(-(delta_phi @ theta))).sum() + 0.5 * alpha * theta @ theta


def _autograd_hessian(
    delta_phi: torch.Tensor, theta: torch.Tensor, weights: torch.Tensor, alpha: float
) -> torch.Tensor:
    return torch.autograd.functional.hessian(lambda t: _loss(t, delta_phi, weights, alpha), theta)


def _synthetic_map(
    n: int = 400, p: int = 5, alpha: float = 1.0, seed: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logistic preference data and its exact MAP (Newton's method)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, p, generator=g, dtype=DT)
    theta_true = torch.randn(p, generator=g, dtype=DT)
    y = torch.bernoulli(torch.sigmoid(x @ theta_true), generator=g)
    delta_phi = torch.where(y.bool().unsqueeze(1), x, -x)  # orient as chosen − rejected
    theta = torch.zeros(p, dtype=DT)
    eye = torch.eye(p, dtype=DT)
    for _ in range(50):
        prob = torch.sigmoid(delta_phi @ theta)
        grad = -delta_phi.T @ (1.0 - prob) + alpha * theta
        step = torch.linalg.solve(bt_ggn(delta_phi, theta) + alpha * eye, grad)
        theta = theta - step
        if float(step.abs().max()) < 1e-14:
            break
    grad = -delta_phi.T @ (1.0 - torch.sigmoid(delta_phi @ theta)) + alpha * theta
    assert float(grad.abs().max()) < 1e-9
    return delta_phi, theta


def test_bt_ggn_matches_autograd_hessian() -> None:
    delta_phi, theta, weights = _data(50, 6)
    alpha = 0.7
    expected = _autograd_hessian(delta_phi, theta, weights, alpha)
    got = bt_ggn(delta_phi, theta, weights) + alpha * torch.eye(6, dtype=DT)
    assert got.dtype == DT and got.shape == (6, 6)
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)


def test_bt_ggn_with_margins_matches_autograd_hessian_of_the_margin_loss() -> None:
    delta_phi, theta, weights = _data(50, 6)
    margin = torch.linspace(-1.0, 2.0, 50, dtype=DT)

    def loss(t: torch.Tensor) -> torch.Tensor:
        return (weights * torch.nn.functional.softplus(-(delta_phi @ t - margin))).sum()

    expected = torch.autograd.functional.hessian(loss, theta)
    torch.testing.assert_close(
        bt_ggn(delta_phi, theta, weights, -margin), expected, atol=1e-10, rtol=0
    )
    assert not torch.allclose(bt_ggn(delta_phi, theta, weights), expected)  # margins matter


def test_bt_ggn_accepts_float32() -> None:
    delta_phi, theta, weights = _data(20, 3)
    h32 = bt_ggn(delta_phi.float(), theta.float(), weights.float())
    assert h32.dtype == DT
    torch.testing.assert_close(h32, bt_ggn(delta_phi, theta, weights), atol=1e-5, rtol=1e-5)


def test_covariance_is_inverse_hessian_and_variance_matches() -> None:
    delta_phi, theta, weights = _data(50, 6)
    alpha = 0.7
    la = LastLayerLaplace.fit(delta_phi, theta, prior_precision=alpha, weights=weights)
    assert la.prior_precision == alpha
    cov_expected = torch.linalg.inv(_autograd_hessian(delta_phi, theta, weights, alpha))
    cov = la.scale_tril @ la.scale_tril.T
    torch.testing.assert_close(cov, cov_expected, atol=1e-12, rtol=1e-10)
    assert torch.equal(la.scale_tril, torch.tril(la.scale_tril))
    phi = torch.randn(7, 6, generator=torch.Generator().manual_seed(3), dtype=DT)
    torch.testing.assert_close(
        la.variance(phi), torch.diagonal(phi @ cov_expected @ phi.T), atol=1e-12, rtol=1e-10
    )
    torch.testing.assert_close(la.variance(phi[0]), la.variance(phi)[0])


def test_evidence_alpha_is_stationary_point_of_lml() -> None:
    delta_phi, theta = _synthetic_map()
    la = LastLayerLaplace.fit(delta_phi, theta, prior_precision="evidence")
    alpha = la.prior_precision
    assert 1e-6 < alpha < 1e6

    def lml(a: float) -> float:
        inst = LastLayerLaplace.fit(delta_phi, theta, prior_precision=a)
        return inst.log_marginal_likelihood(delta_phi)

    at = la.log_marginal_likelihood(delta_phi)
    assert at == pytest.approx(lml(alpha), abs=1e-9)
    assert at >= lml(alpha * 1.2) - 1e-10
    assert at >= lml(alpha / 1.2) - 1e-10
    # derivative in log α vanishes at the fixed point
    eps = 1e-4
    deriv = (lml(alpha * (1 + eps)) - lml(alpha * (1 - eps))) / (2 * eps)
    assert abs(deriv) < 1e-5
    # and a non-stationary α is clearly worse
    assert at > lml(alpha * 4.0) + 1e-3
    assert at > lml(alpha / 4.0) + 1e-3


def test_log_marginal_likelihood_formula() -> None:
    delta_phi, theta, weights = _data(30, 4)
    alpha = 2.5
    la = LastLayerLaplace.fit(delta_phi, theta, prior_precision=alpha, weights=weights)
    hess = _autograd_hessian(delta_phi, theta, weights, alpha)
    expected = (
        -float(_loss(theta, delta_phi, weights, alpha))
        + 0.5 * 4 * torch.log(torch.tensor(alpha, dtype=DT)).item()
        - 0.5 * float(torch.logdet(hess))
    )
    assert la.log_marginal_likelihood(delta_phi, weights) == pytest.approx(expected, abs=1e-10)


def test_sample_moments_and_reproducibility() -> None:
    delta_phi, theta, weights = _data(50, 5)
    la = LastLayerLaplace.fit(delta_phi, theta, prior_precision=0.5, weights=weights)
    n = 20000
    draws = la.sample(n, generator=torch.Generator().manual_seed(11))
    assert draws.shape == (n, 5) and draws.dtype == DT
    cov = la.scale_tril @ la.scale_tril.T
    se = torch.sqrt(torch.diagonal(cov) / n)
    assert bool(((draws.mean(0) - theta).abs() < 4 * se).all())
    rel = torch.linalg.norm(torch.cov(draws.T) - cov) / torch.linalg.norm(cov)
    assert float(rel) < 0.05
    again = la.sample(n, generator=torch.Generator().manual_seed(11))
    assert torch.equal(draws, again)
    other = la.sample(n, generator=torch.Generator().manual_seed(12))
    assert not torch.equal(draws, other)


def test_round_trip_tensors() -> None:
    delta_phi, theta, weights = _data(40, 4)
    la = LastLayerLaplace.fit(delta_phi, theta, weights=weights)
    tensors = la.to_tensors()
    assert set(tensors) == {"laplace.theta", "laplace.scale_tril", "laplace.prior_precision"}
    assert tensors["laplace.prior_precision"].numel() == 1
    back = LastLayerLaplace.from_tensors(tensors)
    assert back.prior_precision == la.prior_precision
    phi = torch.randn(9, 4, generator=torch.Generator().manual_seed(5), dtype=DT)
    assert torch.equal(back.variance(phi), la.variance(phi))
    assert torch.equal(
        back.sample(100, torch.Generator().manual_seed(2)),
        la.sample(100, torch.Generator().manual_seed(2)),
    )
    custom = LastLayerLaplace.from_tensors(la.to_tensors(prefix="head0."), prefix="head0.")
    assert torch.equal(custom.theta, la.theta)

    for key in tensors:
        partial = {k: v for k, v in tensors.items() if k != key}
        with pytest.raises(ValueError, match=key.replace(".", r"\.")):
            LastLayerLaplace.from_tensors(partial)


def test_from_tensors_shape_mismatch() -> None:
    delta_phi, theta, _ = _data(40, 4)
    tensors = LastLayerLaplace.fit(delta_phi, theta, prior_precision=1.0).to_tensors()
    bad = dict(tensors, **{"laplace.scale_tril": torch.eye(3, dtype=DT)})
    with pytest.raises(ValueError, match=r"laplace\.scale_tril"):
        LastLayerLaplace.from_tensors(bad)
    bad = dict(tensors, **{"laplace.theta": torch.zeros(4, 1, dtype=DT)})
    with pytest.raises(ValueError, match=r"laplace\.theta"):
        LastLayerLaplace.from_tensors(bad)
    bad = dict(tensors, **{"laplace.prior_precision": torch.ones(2, dtype=DT)})
    with pytest.raises(ValueError, match=r"laplace\.prior_precision"):
        LastLayerLaplace.from_tensors(bad)


def test_more_data_shrinks_variance() -> None:
    delta_phi, theta, _ = _data(60, 5)
    phi = torch.randn(3, 5, generator=torch.Generator().manual_seed(8), dtype=DT)
    once = LastLayerLaplace.fit(delta_phi, theta, prior_precision=1.0)
    doubled = LastLayerLaplace.fit(
        delta_phi, theta, prior_precision=1.0, weights=torch.full((60,), 2.0, dtype=DT)
    )
    duplicated = LastLayerLaplace.fit(torch.cat([delta_phi, delta_phi]), theta, prior_precision=1.0)
    assert bool((doubled.variance(phi) < once.variance(phi)).all())
    torch.testing.assert_close(duplicated.variance(phi), doubled.variance(phi))


def test_shape_and_argument_errors() -> None:
    delta_phi, theta, weights = _data(10, 3)
    with pytest.raises(ValueError, match="delta_phi"):
        bt_ggn(delta_phi[0], theta)
    with pytest.raises(ValueError, match="theta"):
        bt_ggn(delta_phi, torch.zeros(4, dtype=DT))
    with pytest.raises(ValueError, match="weights"):
        bt_ggn(delta_phi, theta, torch.ones(9, dtype=DT))
    with pytest.raises(ValueError, match="weights"):
        bt_ggn(delta_phi, theta, -weights)
    with pytest.raises(ValueError, match="theta"):
        LastLayerLaplace.fit(delta_phi, theta[:2], prior_precision=1.0)
    with pytest.raises(ValueError, match="prior_precision"):
        LastLayerLaplace.fit(delta_phi, theta, prior_precision=0.0)
    with pytest.raises(ValueError, match="prior_precision"):
        LastLayerLaplace.fit(delta_phi, theta, prior_precision="mackay")
    la = LastLayerLaplace.fit(delta_phi, theta, prior_precision=1.0)
    with pytest.raises(ValueError, match="phi"):
        la.variance(torch.zeros(5, 4, dtype=DT))
    with pytest.raises(ValueError, match="delta_phi"):
        la.log_marginal_likelihood(torch.zeros(5, 4, dtype=DT))
    with pytest.raises(ValueError, match="n_samples"):
        la.sample(-1)
    with pytest.raises(ValueError, match="scale_tril"):
        LastLayerLaplace(theta=theta, scale_tril=torch.eye(2, dtype=DT), prior_precision=1.0)
