"""Per-member normalisation of ensemble rewards before a conservative aggregation.

Why: a Bradley-Terry member is identified only up to an additive constant (the
loss sees reward *differences*), and its scale is set by how confident it
happened to become. Aggregations that compare members across each other (min,
variance, LCB, BRME, soft-min) then let an arbitrary offset decide which member
is "worst". Coste et al.'s ensemble code re-centres each member on its training
data for this reason. :class:`MemberNorm` is fitted on the training items (both
sides of every training pair) and maps member ``k`` to

    r'_k = mean(loc) + mean(scale) · (r_k − loc_k) / scale_k

so the members agree in mean and spread on the training items while the
ensemble stays on the raw reward scale (thresholds, temperatures and reward
rules keep their meaning). ``center`` fits ``scale = 1``. The ensemble's
``mean`` is not normalised: the ``mean`` aggregation is unchanged.

Rows of a members array are grouped by head, head-major: with K heads and
``m = K·T`` rows (MC-dropout masks, Laplace draws), rows ``k·T .. k·T+T−1``
are head ``k``'s and share its ``loc_k`` and ``scale_k``. The draws of one head
are its uncertainty, not separate members with offsets of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rewardhedge.config import MemberNormKind
from rewardhedge.types import RewardEstimate

__all__ = ["NORM_PREFIX", "MemberNorm", "normalised_estimate"]

NORM_PREFIX = "member_norm."
"""Name prefix of the normalisation's tensors in ``weights.safetensors``."""

_DEGENERATE = 1e-9
"""A member whose std on the training items is below this fraction of the
largest member std (or of 1) is treated as constant."""


@dataclass(frozen=True)
class MemberNorm:
    """Per-head location and scale, fitted on the training items.

    Attributes:
        loc: `(K,)` each head's mean reward on the training items.
        scale: `(K,)` each head's reward std there (all ones for ``center``).

    Saved as two float64 tensors with the heads (exact round trip); a model
    folder without them scores with raw members, as it did before.

    Example:
        >>> norm = MemberNorm.fit(np.array([[0.0, 2.0], [10.0, 14.0]]), "standardize")
        >>> norm.apply(np.array([[0.0, 2.0], [10.0, 14.0]])).tolist()
        [[5.0, 8.0], [5.0, 8.0]]
    """

    loc: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        loc = np.asarray(self.loc, dtype=np.float64)
        scale = np.asarray(self.scale, dtype=np.float64)
        if loc.ndim != 1 or loc.shape[0] < 1 or scale.shape != loc.shape:
            raise ValueError(
                f"member_norm loc and scale must both have shape (K,) with K >= 1, "
                f"got {loc.shape} and {scale.shape}."
            )
        if not (np.all(np.isfinite(loc)) and np.all(np.isfinite(scale))):
            raise ValueError("member_norm loc and scale must be finite.")
        if np.any(scale <= 0):
            raise ValueError(f"member_norm scale must be > 0, got {scale.tolist()}.")
        object.__setattr__(self, "loc", loc)
        object.__setattr__(self, "scale", scale)

    @property
    def n_heads(self) -> int:
        return int(self.loc.shape[0])

    @classmethod
    def fit(
        cls, members: np.ndarray, kind: MemberNormKind | str, *, n_heads: int | None = None
    ) -> MemberNorm | None:
        """Fit on `(m, n)` raw member rewards of the training items (``None`` for ``none``).

        With ``n_heads`` K < m, each head's rows are first averaged (the Laplace
        MAP reward, the mean over dropout masks) and the norm is per head.
        A head that is constant on the training items has no spread to
        standardise; it gets the mean of the other heads' scales, i.e. it is
        only centred (dividing by ~0 would blow up its rewards on new items).
        """
        kind = MemberNormKind.parse(kind, "member_norm")
        if kind is MemberNormKind.NONE:
            return None
        head = _per_head(np.asarray(members, dtype=np.float64), n_heads)
        if head.shape[1] == 0:
            raise ValueError("member_norm: cannot fit on zero training items.")
        if not np.all(np.isfinite(head)):
            raise ValueError(
                "member_norm: the member rewards on the training items are not finite."
            )
        loc = head.mean(axis=1)
        if kind is MemberNormKind.CENTER:
            return cls(loc, np.ones_like(loc))
        scale = head.std(axis=1)
        flat = scale <= _DEGENERATE * max(1.0, float(scale.max()))
        if flat.all():
            scale = np.ones_like(scale)
        elif flat.any():
            scale[flat] = scale[~flat].mean()
        return cls(loc, scale)

    def apply(self, members: np.ndarray) -> np.ndarray:
        """`(m, n)` raw member rewards -> normalised ones (m a multiple of K)."""
        r = np.asarray(members, dtype=np.float64)
        loc, factor = self._rows(r)
        if self.n_heads == 1:  # the identity, without rounding
            return r.copy()
        return self.loc.mean() + (r - loc) * factor

    def invert(self, members: np.ndarray) -> np.ndarray:
        """Normalised members -> raw ones (the inverse of :meth:`apply`)."""
        r = np.asarray(members, dtype=np.float64)
        loc, factor = self._rows(r)
        if self.n_heads == 1:
            return r.copy()
        return loc + (r - self.loc.mean()) / factor

    def apply_variance(self, variances: np.ndarray) -> np.ndarray:
        """`(m, n)` per-member noise variances, rescaled as their members are."""
        v = np.asarray(variances, dtype=np.float64)
        _, factor = self._rows(v)
        return v * factor**2

    def factors(self) -> np.ndarray:
        """`(K,)` the multiplier ``mean(scale) / scale_k`` of each head."""
        return self.scale.mean() / self.scale

    def _rows(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = self.n_heads
        if r.ndim != 2 or r.shape[0] % k:
            raise ValueError(
                f"member_norm: members of shape {r.shape} do not split into {k} heads "
                "(expected (m, n) with m a multiple of K)."
            )
        t = r.shape[0] // k
        return np.repeat(self.loc, t)[:, None], np.repeat(self.factors(), t)[:, None]

    def to_tensors(self, prefix: str = NORM_PREFIX) -> dict[str, torch.Tensor]:
        """``{prefix}loc`` and ``{prefix}scale`` as float64 tensors, for safetensors."""
        return {
            f"{prefix}loc": torch.from_numpy(self.loc.copy()),
            f"{prefix}scale": torch.from_numpy(self.scale.copy()),
        }

    @classmethod
    def from_tensors(
        cls, tensors: dict[str, torch.Tensor], prefix: str = NORM_PREFIX
    ) -> MemberNorm | None:
        """Inverse of :meth:`to_tensors`; ``None`` (identity) when neither tensor is there."""
        keys = {f"{prefix}loc", f"{prefix}scale"}
        present = keys & set(tensors)
        if not present:
            return None
        if present != keys:
            raise ValueError(
                f"member_norm: {sorted(present)} saved without {sorted(keys - present)}."
            )
        return cls(
            tensors[f"{prefix}loc"].double().numpy(), tensors[f"{prefix}scale"].double().numpy()
        )


def normalised_estimate(
    members: np.ndarray, norm: MemberNorm | None, aleatoric: np.ndarray | None = None
) -> RewardEstimate:
    """The estimate an aggregation sees: normalised members and their variance, raw mean.

    ``norm=None`` is exactly :meth:`RewardEstimate.from_members`.
    """
    members = np.asarray(members, dtype=np.float64)
    if norm is None:
        return RewardEstimate.from_members(members, aleatoric)
    est = RewardEstimate.from_members(
        norm.apply(members), None if aleatoric is None else norm.apply_variance(aleatoric)
    )
    return RewardEstimate(members.mean(axis=0), est.epistemic, est.aleatoric, est.members)


def _per_head(members: np.ndarray, n_heads: int | None) -> np.ndarray:
    if members.ndim != 2:
        raise ValueError(f"member_norm: members must have shape (m, n), got {members.shape}.")
    k = members.shape[0] if n_heads is None else n_heads
    if k < 1 or members.shape[0] % k:
        raise ValueError(
            f"member_norm: {members.shape[0]} member rows do not split into {k} heads."
        )
    return members.reshape(k, members.shape[0] // k, members.shape[1]).mean(axis=1)
