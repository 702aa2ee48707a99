"""Last-layer Laplace approximation for Bradley-Terry reward models.

A reward that is linear in last-layer features, ``r(x) = φ(x)·θ (+ bias)``,
trained with the Bradley-Terry loss is logistic regression in ``θ`` on the
pair differences ``Δφ = φ(chosen) − φ(rejected)``. A Gaussian posterior
around the MAP weights then costs one ``p × p`` Hessian and one
eigendecomposition: cheap Bayesian epistemic uncertainty without retraining
or an ensemble (the "Bayesian reward models" approach; this matches
laplace-torch's ``reward_modeling`` likelihood with a full GGN Hessian on the
last layer). The bias cancels in pairs and is not part of ``θ``.

The GGN of the BT likelihood equals its exact Hessian,
``H = Σ_i w_i p_i (1 − p_i) Δφ_i Δφ_iᵀ`` with ``p_i = σ(Δφ_i·θ)``; the
posterior precision is ``H + α I``. The prior precision ``α`` can be given or
chosen by maximising the Laplace evidence (MacKay's fixed point).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch.nn import functional as F

__all__ = ["LastLayerLaplace", "bt_ggn"]

_ALPHA_MIN = 1e-8
_ALPHA_MAX = 1e8
_DTYPE = torch.float64


def _as_f64(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x.detach().to(dtype=_DTYPE)


def _check_inputs(
    delta_phi: torch.Tensor, theta: torch.Tensor, weights: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate shapes and return float64 ``(delta_phi, theta, weights)``."""
    delta_phi = _as_f64(delta_phi, "delta_phi")
    theta = _as_f64(theta, "theta")
    if delta_phi.ndim != 2:
        raise ValueError(f"delta_phi must have shape (n, p), got {tuple(delta_phi.shape)}")
    n, p = delta_phi.shape
    if theta.ndim != 1 or theta.shape[0] != p:
        raise ValueError(
            f"theta must have shape (p,) = ({p},) to match delta_phi {tuple(delta_phi.shape)}, "
            f"got {tuple(theta.shape)}"
        )
    if weights is None:
        w = torch.ones(n, dtype=_DTYPE, device=delta_phi.device)
    else:
        w = _as_f64(weights, "weights")
        if w.ndim != 1 or w.shape[0] != n:
            raise ValueError(
                f"weights must have shape (n,) = ({n},) to match delta_phi "
                f"{tuple(delta_phi.shape)}, got {tuple(w.shape)}"
            )
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError("weights must be finite and nonnegative")
    if not bool(torch.isfinite(delta_phi).all()):
        raise ValueError("delta_phi contains non-finite values")
    if not bool(torch.isfinite(theta).all()):
        raise ValueError("theta contains non-finite values")
    return delta_phi, theta, w


def bt_ggn(
    delta_phi: torch.Tensor,
    theta: torch.Tensor,
    weights: torch.Tensor | None = None,
    offset: torch.Tensor | None = None,
) -> torch.Tensor:
    """GGN (= exact Hessian) of the summed weighted BT loss in ``θ``, shape ``(p, p)``, float64.

    ``delta_phi`` is ``(n, p)`` chosen-minus-rejected features, ``theta`` is
    ``(p,)``, ``weights`` an optional ``(n,)`` nonnegative vector and ``offset`` an
    optional ``(n,)`` addition to each logit (``−margin`` for pairs with a margin).
    """
    delta_phi, theta, w = _check_inputs(delta_phi, theta, weights)
    logit = delta_phi @ theta
    if offset is not None:
        logit = logit + torch.as_tensor(offset, dtype=logit.dtype)
    prob = torch.sigmoid(logit)
    s = w * prob * (1.0 - prob)
    h = delta_phi.T @ (s.unsqueeze(1) * delta_phi)
    return 0.5 * (h + h.T)


def _evidence_alpha(eigvals: torch.Tensor, theta_sq: float, max_iter: int) -> float:
    """MacKay's fixed point ``α ← γ/‖θ‖²`` with ``γ = Σ λ/(λ+α)``, clamped."""
    if theta_sq <= 0.0:
        return _ALPHA_MAX
    alpha = 1.0
    for _ in range(max_iter):
        gamma = float((eigvals / (eigvals + alpha)).sum())
        new = min(max(gamma / theta_sq, _ALPHA_MIN), _ALPHA_MAX)
        converged = abs(new - alpha) <= 1e-8 * abs(alpha)
        alpha = new
        if converged:
            return alpha
    warnings.warn(
        f"evidence maximisation did not converge in {max_iter} iterations (alpha={alpha:.6g})",
        RuntimeWarning,
        stacklevel=3,
    )
    return alpha


def _cholesky_with_jitter(cov: torch.Tensor) -> torch.Tensor:
    """Lower Cholesky factor, adding a small diagonal jitter only if needed."""
    chol, info = torch.linalg.cholesky_ex(cov)
    if int(info) == 0:
        return chol
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    scale = float(cov.diagonal().abs().mean()) or 1.0
    jitter = 1e-12 * scale
    for _ in range(10):
        chol, info = torch.linalg.cholesky_ex(cov + jitter * eye)
        if int(info) == 0:
            return chol
        jitter *= 10.0
    raise RuntimeError("posterior covariance is not positive definite even with jitter")


@dataclass
class LastLayerLaplace:
    """Gaussian posterior ``N(theta, L Lᵀ)`` over last-layer reward weights."""

    theta: torch.Tensor
    scale_tril: torch.Tensor
    prior_precision: float

    def __post_init__(self) -> None:
        # Fresh, contiguous storage keeps results bit-identical after a save/load round
        # trip: a tensor read from a safetensors buffer may start off a 64-byte boundary,
        # and BLAS sums a dot product in another order on unaligned data (1-ulp changes).
        self.theta = _as_f64(self.theta, "theta").clone(memory_format=torch.contiguous_format)
        self.scale_tril = _as_f64(self.scale_tril, "scale_tril").clone(
            memory_format=torch.contiguous_format
        )
        if self.theta.ndim != 1:
            raise ValueError(f"theta must have shape (p,), got {tuple(self.theta.shape)}")
        p = self.theta.shape[0]
        if self.scale_tril.shape != (p, p):
            raise ValueError(
                f"scale_tril must have shape (p, p) = ({p}, {p}) to match theta, "
                f"got {tuple(self.scale_tril.shape)}"
            )
        alpha = float(self.prior_precision)
        if not math.isfinite(alpha) or alpha <= 0.0:
            raise ValueError(f"prior_precision must be finite and > 0, got {alpha}")
        self.prior_precision = alpha

    @property
    def dim(self) -> int:
        """Number of last-layer weights ``p``."""
        return int(self.theta.shape[0])

    @property
    def covariance(self) -> torch.Tensor:
        """Posterior covariance ``Σ = L Lᵀ``, shape ``(p, p)``."""
        return self.scale_tril @ self.scale_tril.T

    @classmethod
    def fit(
        cls,
        delta_phi: torch.Tensor,
        theta: torch.Tensor,
        *,
        prior_precision: float | str = "evidence",
        weights: torch.Tensor | None = None,
        offset: torch.Tensor | None = None,
        max_iter: int = 100,
    ) -> LastLayerLaplace:
        """Laplace posterior at the MAP ``theta`` for pair differences ``delta_phi``
        (``offset``: per-pair additions to the logit, ``−margin``; see :func:`bt_ggn`).

        ``prior_precision`` is a float ``α > 0`` or ``"evidence"`` to choose ``α``
        by maximising the Laplace log marginal likelihood (MacKay fixed point).
        """
        if isinstance(prior_precision, str):
            if prior_precision != "evidence":
                raise ValueError(
                    f"prior_precision must be a float > 0 or 'evidence', got {prior_precision!r}"
                )
        elif isinstance(prior_precision, bool) or not isinstance(prior_precision, int | float):
            raise ValueError(
                f"prior_precision must be a float > 0 or 'evidence', got {prior_precision!r}"
            )
        elif not math.isfinite(float(prior_precision)) or float(prior_precision) <= 0.0:
            raise ValueError(f"prior_precision must be finite and > 0, got {prior_precision}")
        if max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter}")

        delta_phi, theta, w = _check_inputs(delta_phi, theta, weights)
        h = bt_ggn(delta_phi, theta, w, offset)
        eigvals, eigvecs = torch.linalg.eigh(h)
        eigvals = eigvals.clamp_min(0.0)
        if isinstance(prior_precision, str):
            alpha = _evidence_alpha(eigvals, float(theta @ theta), max_iter)
        else:
            alpha = float(prior_precision)
        cov = (eigvecs / (eigvals + alpha)) @ eigvecs.T
        cov = 0.5 * (cov + cov.T)
        return cls(
            theta=theta.clone(), scale_tril=_cholesky_with_jitter(cov), prior_precision=alpha
        )

    def log_marginal_likelihood(
        self, delta_phi: torch.Tensor, weights: torch.Tensor | None = None
    ) -> float:
        """Laplace evidence ``log p(D | α)`` up to constants in ``2π``.

        ``−Σ w softplus(−Δφθ) − α/2‖θ‖² + p/2 log α − 1/2 logdet(H + αI)``.
        """
        delta_phi, theta, w = _check_inputs(delta_phi, self.theta, weights)
        alpha = self.prior_precision
        log_lik = -float((w * F.softplus(-(delta_phi @ theta))).sum())
        h = bt_ggn(delta_phi, theta, w)
        eye = torch.eye(self.dim, dtype=_DTYPE, device=h.device)
        _, logdet = torch.linalg.slogdet(h + alpha * eye)
        return (
            log_lik
            - 0.5 * alpha * float(theta @ theta)
            + 0.5 * self.dim * math.log(alpha)
            - 0.5 * float(logdet)
        )

    def variance(self, phi: torch.Tensor) -> torch.Tensor:
        """Posterior reward variance ``φᵢᵀ Σ φᵢ`` for ``phi`` of shape ``(n, p)`` → ``(n,)``.

        A single ``(p,)`` feature vector gives a 0-d tensor.
        """
        phi = _as_f64(phi, "phi").to(self.scale_tril.device)
        if phi.ndim not in (1, 2) or phi.shape[-1] != self.dim:
            raise ValueError(
                f"phi must have shape (n, p) or (p,) with p = {self.dim}, got {tuple(phi.shape)}"
            )
        return (phi @ self.scale_tril).square().sum(dim=-1)

    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n_samples, p)`` draws ``θ + L ε`` with ``ε ~ N(0, I)`` from ``generator``."""
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 0:
            raise ValueError(f"n_samples must be a nonnegative int, got {n_samples!r}")
        eps = torch.randn(
            n_samples, self.dim, generator=generator, dtype=_DTYPE, device=self.theta.device
        )
        return self.theta + eps @ self.scale_tril.T

    def to_tensors(self, prefix: str = "laplace.") -> dict[str, torch.Tensor]:
        """Flat tensors for safetensors: ``theta``, ``scale_tril``, ``prior_precision`` (1 element)."""
        return {
            f"{prefix}theta": self.theta.contiguous().clone(),
            f"{prefix}scale_tril": self.scale_tril.contiguous().clone(),
            f"{prefix}prior_precision": torch.tensor([self.prior_precision], dtype=_DTYPE),
        }

    @classmethod
    def from_tensors(
        cls, tensors: dict[str, torch.Tensor], prefix: str = "laplace."
    ) -> LastLayerLaplace:
        """Inverse of :meth:`to_tensors`; raises ``ValueError`` on missing keys or bad shapes."""
        keys = {name: f"{prefix}{name}" for name in ("theta", "scale_tril", "prior_precision")}
        missing = [key for key in keys.values() if key not in tensors]
        if missing:
            raise ValueError(f"missing Laplace tensor(s): {', '.join(missing)}")
        theta = tensors[keys["theta"]]
        scale_tril = tensors[keys["scale_tril"]]
        alpha = tensors[keys["prior_precision"]]
        if theta.ndim != 1:
            raise ValueError(f"{keys['theta']} must have shape (p,), got {tuple(theta.shape)}")
        p = theta.shape[0]
        if tuple(scale_tril.shape) != (p, p):
            raise ValueError(
                f"{keys['scale_tril']} has shape {tuple(scale_tril.shape)}, expected ({p}, {p}) "
                f"to match {keys['theta']} of shape ({p},)"
            )
        if alpha.numel() != 1:
            raise ValueError(
                f"{keys['prior_precision']} must have one element, got shape {tuple(alpha.shape)}"
            )
        return cls(theta=theta, scale_tril=scale_tril, prior_precision=float(alpha.reshape(())))
