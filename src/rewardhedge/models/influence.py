"""Influence functions for Bradley-Terry reward heads that are linear in their features.

A linear head trained with the L2-penalised Bradley-Terry loss minimises, per member,

    J(θ) = Σ_i a_i ℓ_i(θ) + l2·‖θ‖²,   ℓ_i(θ) = softplus(−(Δφ_i·θ − m_i)),   a_i = w_i / Σ_j w_j

(``Δφ_i`` the standardised chosen-minus-rejected features of pair ``i``, ``m_i`` its
margin, ``w_i`` the member's example weight: a bootstrap count or 1). Removing pair
``i`` and renormalising the mean gives ``J_{−i} = J − a_i (ℓ_i − L̄) + O(a_i²)`` with
``L̄ = Σ_j a_j ℓ_j``; one Newton step from the trained ``θ̂`` (Koh & Liang 2017, with
their ``ε = −a_i``) predicts the change of any differentiable ``f(θ)``:

    f(θ̂_{−i}) − f(θ̂) ≈ a_i · ∇f(θ̂)ᵀ H⁻¹ (∇ℓ_i(θ̂) − ∇L̄(θ̂)),   H = ∇²J(θ̂).

The ``−∇L̄`` term is the renormalisation: the loss is a *mean*, so dropping a pair
also scales every other pair up (equivalently, strengthens the fixed L2 penalty by
``1/(1 − a_i)``); it equals ``+2·l2·θ̂`` at an exact minimiser. ``H`` is the Bradley-Terry
GGN, which for a linear head *is* the Hessian (:func:`bt_hessian`, the same matrix as
:func:`rewardhedge.models.laplace.bt_ggn`, with margins), plus ``2·l2·I``.

The features are standardised by the training items' per-feature scale ``s``; removing
a pair changes ``s`` too. Written in raw-feature weights ``u = θ/s``, only the penalty
``l2·Σ_j s_j² u_j²`` depends on ``s``, and the implicit function theorem gives

    f(θ̂_{−i}) − f(θ̂) += −4·l2 · ∇f(θ̂)ᵀ H⁻¹ (θ̂ ⊙ δ_i / s),   δ_i = s_{−i} − s,

(:func:`standardisation_effect`; ``δ_i`` is computed exactly, the response to it to
first order). The feature mean cancels in every pair difference and has no effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardhedge.models.heads import CONSTANT_SCALE
from rewardhedge.models.laplace import bt_ggn

__all__ = [
    "MemberInfluence",
    "bt_hessian",
    "linear_bt_influence",
    "standardisation_effect",
]

_DTYPE = torch.float64
SCALE_FLOOR = CONSTANT_SCALE
"""Floor on a feature's scale here, so that dividing by it stays finite. The trainer does
not clamp: a feature whose scale is at most this counts as constant and gets zero
weights (:meth:`rewardhedge.models.heads.HeadStack.set_standardisation`), so its
``coef`` is 0 and the floored value never reaches a result."""


def bt_hessian(
    delta_phi: torch.Tensor,
    theta: torch.Tensor,
    weights: torch.Tensor | None = None,
    offset: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hessian (= GGN) of ``Σ_i w_i softplus(−(Δφ_i·θ − m_i))`` in ``θ``: `(p, p)` float64.

    ``Σ_i w_i p_i (1 − p_i) Δφ_i Δφ_iᵀ`` with ``p_i = σ(Δφ_i·θ − m_i)``; without
    ``offset`` (the margins ``m``) it is :func:`rewardhedge.models.laplace.bt_ggn`.

    Args:
        delta_phi: `(n, p)` chosen-minus-rejected features.
        theta: `(p,)` weights.
        weights: `(n,)` nonnegative example weights, or ``None`` for 1.
        offset: `(n,)` margins, or ``None`` for 0.

    Example:
        >>> h = bt_hessian(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.zeros(2))
        >>> h.diagonal().tolist()  # p (1 − p) = 1/4 at θ = 0
        [0.25, 1.0]
    """
    minus = None if offset is None else -offset.to(_DTYPE)
    return bt_ggn(delta_phi, theta, weights, minus)  # bt_ggn adds its offset to the logit


@dataclass(frozen=True)
class MemberInfluence:
    """What :func:`linear_bt_influence` finds for one member and one test direction."""

    removal: torch.Tensor
    """`(n,)` predicted change of ``f`` when pair ``i`` is removed from the loss (the
    feature scale held fixed; :func:`standardisation_effect` adds its change)."""
    solve: torch.Tensor
    """`(p,)` ``H⁻¹ ∇f``, reused for the standardisation term."""
    unconverged: float
    """Change of ``f`` that one Newton step from ``θ̂`` to the minimiser of the full
    objective would make, ``−∇fᵀ H⁻¹ ∇J(θ̂)``: about 0 when training converged; compare
    it with the influences to judge how far early stopping left ``θ̂``."""


def linear_bt_influence(
    delta_phi: torch.Tensor,
    theta: torch.Tensor,
    weights: torch.Tensor,
    l2: float,
    test_direction: torch.Tensor,
    *,
    offset: torch.Tensor | None = None,
    damping: float = 0.0,
) -> MemberInfluence:
    """First-order effect of removing each training pair on ``f(θ) = test_direction·θ``.

    Args:
        delta_phi: `(n, p)` standardised chosen-minus-rejected features of the pairs the
            member was trained on.
        theta: `(p,)` the trained weights ``θ̂``.
        weights: `(n,)` the member's example weights (normalised here to sum to 1, as
            the trainer's weighted mean does). A pair of weight 0 has no effect.
        l2: the penalty ``l2·‖θ‖²`` added to the mean loss.
        test_direction: `(p,)` ``∇f``; for a test pair's margin, its ``Δφ``.
        offset: `(n,)` the pairs' margins ``m_i``, or ``None``.
        damping: ``λ`` added to the Hessian's diagonal (Koh & Liang's damping), for a
            singular Hessian (``l2 == 0`` with fewer pairs than features).

    Returns:
        :class:`MemberInfluence`; ``removal[i] = a_i ∇fᵀ H⁻¹ (∇ℓ_i − ∇L̄)``.

    Raises:
        ValueError: mismatched shapes, no positive weight, or a Hessian that is not
            positive definite (pass ``damping > 0``).

    Example:
        >>> dphi = torch.tensor([[1.0], [1.0], [-1.0]])
        >>> theta = torch.tensor([0.4])
        >>> out = linear_bt_influence(dphi, theta, torch.ones(3), 0.1, torch.tensor([1.0]))
        >>> bool(out.removal[2] > 0 > out.removal[0])  # the contrary pair holds θ down
        True
    """
    dphi = delta_phi.to(_DTYPE)
    th = theta.to(_DTYPE)
    w = weights.to(_DTYPE)
    g = test_direction.to(_DTYPE)
    n, p = dphi.shape
    if th.shape != (p,) or g.shape != (p,) or w.shape != (n,):
        raise ValueError(
            f"shapes do not match: delta_phi {tuple(dphi.shape)}, theta {tuple(th.shape)}, "
            f"weights {tuple(w.shape)}, test_direction {tuple(g.shape)}."
        )
    total = float(w.sum())
    if not total > 0.0:
        raise ValueError("weights must have a positive sum (the member saw no pair).")
    a = w / total  # (n,)
    logit = dphi @ th
    if offset is not None:
        logit = logit - offset.to(_DTYPE)
    # ℓ_i = softplus(−logit_i): ∇ℓ_i = −σ(−logit_i) Δφ_i
    resid = torch.sigmoid(-logit)  # (n,)
    grad_mean = -(a * resid) @ dphi  # (p,) ∇L̄
    hess = bt_hessian(dphi, th, a, offset)
    hess.diagonal().add_(2.0 * l2 + damping)
    chol, info = torch.linalg.cholesky_ex(hess)
    if int(info) != 0:
        raise ValueError(
            "the Hessian is not positive definite (train.l2 == 0 and the pairs do not "
            "determine every weight); pass damping > 0 (explain --damping)."
        )
    v = torch.cholesky_solve(g[:, None], chol)[:, 0]  # (p,) H⁻¹ ∇f
    # a_i vᵀ(∇ℓ_i − ∇L̄) = a_i (−σ(−logit_i) Δφ_i·v − ∇L̄·v)
    removal = a * (-resid * (dphi @ v) - grad_mean @ v)  # (n,)
    grad_full = grad_mean + 2.0 * l2 * th
    return MemberInfluence(removal=removal, solve=v, unconverged=-float(grad_full @ v))


def standardisation_effect(
    x_chosen: torch.Tensor, x_rejected: torch.Tensor, coef: torch.Tensor, chunk: int = 4096
) -> torch.Tensor:
    """Change of ``f`` caused by the feature scale's change when each pair is removed.

    The scale is the standard deviation (``n − 1``, floored at :data:`SCALE_FLOOR`) of
    each feature over the ``2n`` training items; ``δ_i`` is its exact change when pair
    ``i``'s two items are dropped.

    Args:
        x_chosen, x_rejected: `(n, d)` raw features of the training pairs (those the
            scale was computed on).
        coef: `(d, K)` one column per member: ``−4·l2 · (H⁻¹∇f) ⊙ θ̂`` (zero on features
            a member does not see).
        chunk: pairs per block (bounds memory at ``chunk × d`` floats).

    Returns:
        `(n, K)`: ``Σ_j coef[j, k] · δ_ij / s_j``.
    """
    xc = x_chosen.to(_DTYPE)
    xr = x_rejected.to(_DTYPE)
    n = xc.shape[0]
    items = 2 * n
    mean = (xc.sum(0) + xr.sum(0)) / items  # (d,)
    sq = ((xc - mean) ** 2).sum(0) + ((xr - mean) ** 2).sum(0)  # (d,) Σ (x − μ)²
    scale = (sq / max(items - 1, 1)).sqrt().clamp_min(SCALE_FLOOR)
    c = coef.to(_DTYPE)
    out = torch.zeros(n, c.shape[1], dtype=_DTYPE)
    if items - 2 < 2:  # one pair: nothing is left to take a scale from
        return out
    left = items - 2
    for start in range(0, n, chunk):
        yc = xc[start : start + chunk] - mean  # (b, d)
        yr = xr[start : start + chunk] - mean
        s1 = -(yc + yr)  # Σ over the items left, of (x − μ)
        s2 = sq - yc**2 - yr**2
        var = (s2 - s1**2 / left) / (left - 1)
        new = var.clamp_min(0.0).sqrt().clamp_min(SCALE_FLOOR)  # (b, d)
        out[start : start + chunk] = ((new - scale) / scale) @ c  # (b, d) @ (d, K)
    return out
