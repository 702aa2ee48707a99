"""Combining the rewards of several reward models (components) into one, so that no
single component can be pumped up at the expense of the others.

Three combinations of the `(J, …, n)` component rewards ``r_j`` (any leading axes, e.g.
members, are combined element-wise), with weights ``w_j`` (default 1):

=============  =============================================  ==============================
kind           reward                                         why
=============  =============================================  ==============================
sum            ``Σ_j w_j r_j``                                the baseline: one component's
                                                              gain buys any other's loss
and            ``Σ_j w_j log σ(r_j − ref_j(x))``              Wang et al. 2024, "Transforming
                                                              and Combining Rewards": each
                                                              term saturates at 0 above its
                                                              reference, so the sum behaves
                                                              like a logical AND
constrained    ``Σ_j w_j min(r_j, θ_j)``                      Moskovitz et al. 2023,
                                                              "Confronting Reward Model
                                                              Overoptimization with
                                                              Constrained RLHF": a component
                                                              is useful up to its threshold
                                                              θ_j and adds nothing beyond it
=============  =============================================  ==============================

``ref_j(x)`` is the median (or mean) reward of component j over the candidates that
share ``x``'s group (usually the prompt), as the ``centered_logsigmoid`` transform
takes it; or ``zero`` (a fixed 0: with standardised members, the component's average
training response), which is the one to use when each prompt has a single response,
as in a reward server or an RL batch, where a per-prompt median is the response
itself; or given explicitly. A threshold of ``None`` leaves that component uncapped.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardhedge.config import Option
from rewardhedge.errors import ConfigError
from rewardhedge.uncertainty.transforms import centered_logsigmoid, reference_by_group

__all__ = ["Combination", "CombineKind"]


class CombineKind(Option):
    """How the components' rewards are combined (see the module docstring)."""

    SUM = "sum"
    AND = "and"
    CONSTRAINED = "constrained"


@dataclass(frozen=True)
class Combination:
    """A validated combination of ``n_components`` rewards; JSON via ``to_dict``."""

    kind: CombineKind = CombineKind.SUM
    weights: tuple[float, ...] | None = None
    """One weight per component (``None``: all 1)."""
    thresholds: tuple[float | None, ...] | None = None
    """``constrained``: one cap per component (``None`` entries: uncapped); required."""
    reference: str = "median"
    """``and``: each component's reference, the group's ``median`` or ``mean``, or
    ``zero``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", CombineKind.parse(self.kind, "combination.kind"))
        if self.weights is not None:
            weights = tuple(_number(w, "combination.weights") for w in self.weights)
            if any(w < 0 for w in weights):
                raise ConfigError(f"combination.weights == {self.weights!r}, must be >= 0.")
            object.__setattr__(self, "weights", weights)
        if self.thresholds is not None:
            thresholds = tuple(
                None if t is None else _number(t, "combination.thresholds") for t in self.thresholds
            )
            object.__setattr__(self, "thresholds", thresholds)
        if self.kind is CombineKind.CONSTRAINED and self.thresholds is None:
            raise ConfigError(
                "combination.kind 'constrained' needs combination.thresholds, one per "
                "component (null for an uncapped one)."
            )
        if self.kind is not CombineKind.CONSTRAINED and self.thresholds is not None:
            raise ConfigError(
                f"combination.thresholds are only read by kind 'constrained', not "
                f"{self.kind.value!r}; drop them or use 'constrained'."
            )
        if self.reference not in ("median", "mean", "zero"):
            raise ConfigError(
                f"combination.reference == {self.reference!r}, must be 'median', 'mean' or 'zero'."
            )
        if (
            self.weights is not None
            and self.thresholds is not None
            and len(self.weights) != len(self.thresholds)
        ):
            raise ConfigError(
                f"combination has {len(self.weights)} weights but {len(self.thresholds)} "
                "thresholds; give one of each per component."
            )

    @property
    def batch_independent(self) -> bool:
        """Whether an item's combined reward depends on that item alone, not on which
        other items share its batch: False for ``and`` with a per-prompt reference
        (``median`` or ``mean`` over the candidates of the batch that share the prompt)."""
        return self.kind is not CombineKind.AND or self.reference == "zero"

    def check_components(self, n_components: int) -> None:
        """Refuse weights or thresholds that do not give one value per component."""
        for name in ("weights", "thresholds"):
            values = getattr(self, name)
            if values is not None and len(values) != n_components:
                raise ConfigError(
                    f"combination.{name} has {len(values)} values for {n_components} "
                    "components; give one per component."
                )

    def apply(
        self,
        rewards: np.ndarray,
        *,
        groups: Sequence[Hashable] | None = None,
        references: np.ndarray | None = None,
    ) -> np.ndarray:
        """Combine `(J, …, n)` component rewards into `(…, n)`.

        Args:
            rewards: component j's rewards at ``rewards[j]``; the last axis is the items.
            groups: `(n,)` group of each item (``and``, when ``references`` is not given).
            references: `(J, …, n)` or `(J, n)` reference rewards for ``and``.

        Example:
            >>> r = np.array([[2.0, 0.0], [-1.0, 1.0]])  # 2 components, 2 items
            >>> Combination("sum").apply(r).tolist()
            [1.0, 1.0]
            >>> Combination("constrained", thresholds=(0.5, None)).apply(r).tolist()
            [-0.5, 1.0]
        """
        r = np.asarray(rewards, dtype=np.float64)
        if r.ndim < 2:
            raise ValueError(f"rewards must have shape (J, ..., n), got {r.shape}.")
        self.check_components(r.shape[0])
        shape = (r.shape[0],) + (1,) * (r.ndim - 1)
        w = np.ones(shape) if self.weights is None else np.reshape(self.weights, shape)
        if self.kind is CombineKind.SUM:
            return (w * r).sum(axis=0)
        if self.kind is CombineKind.CONSTRAINED:
            caps = np.array([np.inf if t is None else t for t in self.thresholds or ()])
            return (w * np.minimum(r, caps.reshape(shape))).sum(axis=0)
        ref = self._references(r, groups, references)
        return (w * centered_logsigmoid(r, ref)).sum(axis=0)

    def _references(
        self, r: np.ndarray, groups: Sequence[Hashable] | None, references: np.ndarray | None
    ) -> np.ndarray:
        if references is not None:
            ref = np.asarray(references, dtype=np.float64)
            if ref.shape[0] != r.shape[0] or ref.shape[-1] != r.shape[-1]:
                raise ValueError(f"references have shape {ref.shape} for rewards {r.shape}.")
            return ref.reshape(ref.shape[:1] + (1,) * (r.ndim - ref.ndim) + ref.shape[1:])
        if self.reference == "zero":
            return np.zeros_like(r)
        if groups is None:
            raise ValueError("kind 'and' needs groups (e.g. the prompts) or references.")
        flat = r.reshape(-1, r.shape[-1])
        out = np.stack([reference_by_group(row, groups, how=self.reference) for row in flat])
        return out.reshape(r.shape)

    def label(self) -> str:
        """A short name for tables: ``and``, ``constrained(θ=0.5, –)``, …"""
        if self.kind is CombineKind.CONSTRAINED:
            caps = ", ".join("–" if t is None else f"{t:g}" for t in self.thresholds or ())
            return f"constrained(θ={caps})"
        return self.kind.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "weights": None if self.weights is None else list(self.weights),
            "thresholds": None if self.thresholds is None else list(self.thresholds),
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Combination:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        if not isinstance(d, dict):
            raise ConfigError(f"combination must be a mapping, got {type(d).__name__}.")
        unknown = sorted(set(d) - {"kind", "weights", "thresholds", "reference"})
        if unknown:
            raise ConfigError(f"Unknown combination key {unknown[0]!r}.")
        seq = {k: tuple(d[k]) if d.get(k) is not None else None for k in ("weights", "thresholds")}
        return cls(kind=d.get("kind", "sum"), reference=d.get("reference", "median"), **seq)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(f"{name} holds {value!r}, must hold numbers.")
    v = float(value)
    if not math.isfinite(v):
        raise ConfigError(f"{name} holds {value!r}, must hold finite numbers.")
    return v
