"""How a model turns its :class:`RewardEstimate` into the one reward an optimiser sees.

A :class:`RewardRule` is an ensemble :class:`Aggregation` (mean, WCO, UWO,
LCB, BRME, soft-min; see :mod:`rewardhedge.uncertainty.aggregation`)
followed by a :class:`Transform` (none, centred log-sigmoid, PAR, running-mean
centering; see :mod:`rewardhedge.uncertainty.transforms`). It is a frozen,
validated value that serialises to a small JSON object::

    {"aggregation": {"name": "uwo", "lam": 0.5},
     "transform": {"name": "centered_logsigmoid", "reference": "median"}}

so the same rule can be stored in a model folder's config, given on the
command line (``rewardhedge score --aggregate uwo --lam 0.5 --transform
centered_logsigmoid``), and used by the reward server and by best-of-n.

Transforms and the inputs they need (``r`` is the aggregated reward):

====================  ===========================================  ==========================
transform             reward                                       needs
====================  ===========================================  ==========================
none                  ``r``                                        —
centered_logsigmoid   ``log σ(r − r_ref)`` (≤ 0)                   ``references`` or ``groups``
par                   ``mean_j σ(r − ref_j)`` (in (0, 1))          ``references`` or ``groups``
running_mean          ``r − mean of the rewards seen before``      ``state`` kept by the caller
====================  ===========================================  ==========================
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardhedge.errors import ConfigError, unknown_option
from rewardhedge.types import RewardEstimate
from rewardhedge.uncertainty.aggregation import Aggregation
from rewardhedge.uncertainty.transforms import (
    RunningMeanCenter,
    centered_logsigmoid,
    par,
    reference_by_group,
)

__all__ = ["REFERENCES", "TRANSFORMS", "RewardRule", "Transform"]

TRANSFORMS: tuple[str, ...] = ("none", "centered_logsigmoid", "par", "running_mean")
"""Transform names, in documentation order."""

REFERENCES: tuple[str, ...] = ("median", "mean")
"""How :class:`Transform` ``centered_logsigmoid`` takes a group's reference reward."""

# The parameters each transform uses (beyond its name).
_USES: dict[str, tuple[str, ...]] = {
    "none": (),
    "centered_logsigmoid": ("reference",),
    "par": (),
    "running_mean": ("momentum",),
}

_DEFAULTS: dict[str, Any] = {"reference": "median", "momentum": None}

_NEEDS_REFERENCE = ("centered_logsigmoid", "par")


def _check_momentum(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(
            f"transform 'running_mean': momentum == {value!r}, must be a number in (0, 1] "
            "or None (exact running mean)."
        )
    v = float(value)
    if not math.isfinite(v) or not 0.0 < v <= 1.0:
        raise ConfigError(
            f"transform 'running_mean': momentum == {value!r}, must be in (0, 1] "
            "(the weight of each new batch's mean) or None (exact running mean)."
        )
    return v


@dataclass(frozen=True)
class Transform:
    """A named, validated reward transform applied after the aggregation.

    Attributes:
        name: one of :data:`TRANSFORMS`.
        reference: ``"median"`` or ``"mean"``: how ``centered_logsigmoid``
            takes a prompt's reference reward from its group when no explicit
            references are given. Only ``centered_logsigmoid`` uses it.
        momentum: ``running_mean`` only: ``None`` for the exact running mean,
            else the weight in (0, 1] of each new batch's mean (an EMA).

    Giving a parameter to a transform that does not use it (for example
    ``Transform("par", reference="mean")``) is a :class:`ConfigError`, so a
    typo cannot silently run with something else.

    Example:
        >>> Transform("centered_logsigmoid", reference="mean").label()
        'centered log-sigmoid (ref=mean)'
        >>> Transform("running_mean", momentum=0.1).to_dict()
        {'name': 'running_mean', 'momentum': 0.1}
    """

    name: str = "none"
    reference: str = "median"
    momentum: float | None = None

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or name not in TRANSFORMS:
            raise unknown_option("transform", name, TRANSFORMS)
        uses = _USES[name]
        for key in ("reference", "momentum"):
            value = getattr(self, key)
            if key not in uses and value != _DEFAULTS[key]:
                only = [t for t, u in _USES.items() if key in u]
                raise ConfigError(
                    f"transform {name!r} does not use {key!r} (got {key}={value!r}); "
                    f"only {', '.join(map(repr, only))} does."
                )
        if not isinstance(self.reference, str) or self.reference not in REFERENCES:
            raise unknown_option("transform reference", self.reference, REFERENCES)
        object.__setattr__(self, "momentum", _check_momentum(self.momentum))

    @classmethod
    def parse(
        cls, name: str = "none", *, reference: str = "median", momentum: float | None = None
    ) -> Transform:
        """Validate a user-given name and reference (both case-insensitive)."""
        if not isinstance(name, str):
            raise unknown_option("transform", name, TRANSFORMS)
        if isinstance(reference, str):
            reference = reference.strip().lower()
        return cls(name.strip().lower(), reference=reference, momentum=momentum)

    def params(self) -> dict[str, Any]:
        """The parameters this transform uses, e.g. ``{"reference": "median"}``."""
        return {key: getattr(self, key) for key in _USES[self.name]}

    def label(self) -> str:
        """A short human label, e.g. ``"PAR"`` or ``"running mean (EMA 0.1)"``."""
        if self.name == "none":
            return "none"
        if self.name == "centered_logsigmoid":
            return f"centered log-sigmoid (ref={self.reference})"
        if self.name == "par":
            return "PAR"
        if self.momentum is None:
            return "running mean"
        return f"running mean (EMA {self.momentum:g})"

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., <params it uses>}``, for JSON (``momentum`` may be ``None``)."""
        return {"name": self.name, **self.params()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Transform:
        """Inverse of :meth:`to_dict`; unknown keys, and keys the transform does not use, are errors."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"transform must be a dict, got {type(d).__name__}: {d!r}.")
        if "name" not in d:
            raise ConfigError(f"transform dict has no 'name' (keys present: {', '.join(d)}).")
        allowed = {"name", *_DEFAULTS}
        extra = sorted(set(d) - allowed, key=str)
        if extra:
            raise ConfigError(
                f"transform dict has unknown key(s) {', '.join(map(repr, extra))}; "
                "allowed: name, reference, momentum."
            )
        t = cls.parse(
            d["name"],
            reference=d.get("reference", _DEFAULTS["reference"]),
            momentum=d.get("momentum", _DEFAULTS["momentum"]),
        )
        unused = sorted(set(d) - {"name", *_USES[t.name]})
        if unused:
            raise ConfigError(
                f"transform {t.name!r} does not use key(s) {', '.join(map(repr, unused))}."
            )
        return t


def _default_aggregation() -> Aggregation:
    return Aggregation.parse("mean")


@dataclass(frozen=True)
class RewardRule:
    """An aggregation followed by a transform: the single reward an optimiser sees.

    The aggregation's parameter is stored with its default filled in, so two
    rules compare equal exactly when they compute the same thing and
    ``RewardRule.from_dict(rule.to_dict()) == rule``.

    Example:
        >>> rule = RewardRule.parse("uwo", lam=0.5, transform="centered_logsigmoid")
        >>> rule.label()
        'UWO λ=0.5 → centered log-sigmoid (ref=median)'
        >>> members = np.array([[1.0, 3.0], [3.0, 5.0]])  # item rewards 1.5 and 3.5
        >>> np.round(rule.apply(members, groups=["p", "p"]), 4).tolist()
        [-1.3133, -0.3133]
    """

    aggregation: Aggregation = field(default_factory=_default_aggregation)
    transform: Transform = field(default_factory=Transform)

    def __post_init__(self) -> None:
        if not isinstance(self.aggregation, Aggregation):
            raise ConfigError(
                f"RewardRule.aggregation must be an Aggregation, got {self.aggregation!r}."
            )
        if not isinstance(self.transform, Transform):
            raise ConfigError(f"RewardRule.transform must be a Transform, got {self.transform!r}.")
        # Fill in the aggregation's default parameter (Aggregation("uwo") -> lam=0.5).
        object.__setattr__(self, "aggregation", Aggregation.from_dict(self.aggregation.to_dict()))

    @classmethod
    def parse(
        cls,
        aggregate: str = "mean",
        *,
        lam: float | None = None,
        beta: float | None = None,
        transform: str = "none",
        reference: str = "median",
        momentum: float | None = None,
    ) -> RewardRule:
        """Build from command-line style options (names are case-insensitive)."""
        return cls(
            Aggregation.parse(aggregate, lam=lam, beta=beta),
            Transform.parse(transform, reference=reference, momentum=momentum),
        )

    @property
    def needs_groups(self) -> bool:
        """Whether :meth:`apply` needs ``groups`` (or ``references``): centered_logsigmoid, par."""
        return self.transform.name in _NEEDS_REFERENCE

    @property
    def needs_state(self) -> bool:
        """Whether the caller should keep a :class:`RunningMeanCenter` across calls."""
        return self.transform.name == "running_mean"

    def new_state(self) -> RunningMeanCenter:
        """A fresh running-mean state with this rule's momentum."""
        return RunningMeanCenter(momentum=self.transform.momentum)

    def apply(
        self,
        estimate: RewardEstimate | np.ndarray,
        *,
        groups: Sequence[Hashable] | None = None,
        references: np.ndarray | None = None,
        state: RunningMeanCenter | None = None,
    ) -> np.ndarray:
        """The `(n,)` rewards an optimiser sees for ``estimate``'s ``n`` items.

        Args:
            estimate: a :class:`RewardEstimate`, or a `(K, n)` array of member
                rewards (K members, n items).
            groups: `n` hashable labels, usually the prompts: the items sharing
                a label are candidates for the same prompt.
            references: reference rewards on the scale of the aggregated reward
                (e.g. this same rule's aggregation applied to a reference
                response of each item's prompt): `(n,)` for
                centered_logsigmoid; `(n,)` (one reference per item) or
                `(n, m)` for par.
            state: running_mean only: the :class:`RunningMeanCenter` the
                caller keeps across calls (a server, an RL loop); updated in
                place. ``None`` uses a fresh one, which is then discarded.

        Semantics, with ``r = aggregation.apply(estimate)``:

        - ``none``: ``r``.
        - ``centered_logsigmoid``: ``log σ(r − r_ref)``, always ≤ 0. ``r_ref``
          is ``references`` when given (they take precedence over
          ``groups``), else :func:`reference_by_group` of ``r`` by ``groups``
          with ``how=transform.reference`` (the median or mean aggregated
          reward of the item's group; an item alone in its group gets
          ``log σ(0) = −log 2``).
        - ``par``: ``mean_j σ(r_i − ref_ij)``, in (0, 1). ``references`` may
          be `(n, m)` or `(n,)`, which is read as `(n, 1)` (one reference per
          item, *not* m shared references). Without references, each item's
          references are the aggregated rewards of the *other* items of its
          group; an item alone in its group gets 0.5.
        - ``running_mean``: ``r − (running mean of every reward seen before
          this call)``, then the state is updated as
          :class:`RunningMeanCenter` does (exact mean, or EMA with
          ``momentum``). Warm-up: while the state has seen nothing
          (``state.count == 0``) there is no history, so the first batch is
          centred on its own mean (not on 0); that mean then becomes the
          state's mean.

        Inputs a transform does not use are ignored (so a server may pass
        everything it has), but ``groups`` and ``references`` must still
        match ``n``.

        Raises:
            ValueError: ``estimate`` is not a RewardEstimate or a 2-D array;
                ``groups``/``references`` do not match ``n``; centered_logsigmoid
                or par got neither ``references`` nor ``groups``; ``state``'s
                momentum differs from the rule's.
        """
        if not isinstance(estimate, RewardEstimate):
            arr = np.asarray(estimate, dtype=np.float64)
            if arr.ndim != 2:
                raise ValueError(
                    f"estimate must be a RewardEstimate or a (K, n) array of member rewards, "
                    f"got an array of shape {arr.shape}."
                )
            estimate = arr
        r = np.asarray(self.aggregation.apply(estimate), dtype=np.float64)
        n = r.shape[0]

        if groups is not None and len(groups) != n:
            raise ValueError(f"groups has {len(groups)} entries for {n} rewards; they must match.")
        refs = None
        if references is not None:
            refs = np.asarray(references, dtype=np.float64)
            if refs.ndim not in (1, 2) or refs.shape[0] != n:
                raise ValueError(
                    f"references has shape {refs.shape} for {n} rewards; it must be "
                    f"({n},) or ({n}, m): one row per item."
                )

        name = self.transform.name
        if name == "none":
            return r
        if name == "running_mean":
            return self._running_mean(r, state)
        if refs is None and groups is None:
            raise ValueError(
                f"transform {name!r} needs a reference per prompt: pass references= "
                "(reference rewards, one row per item) or groups= (e.g. the prompts, so "
                "each item is compared with its own prompt's candidates)."
            )
        if name == "centered_logsigmoid":
            if refs is not None:
                if refs.ndim != 1:
                    raise ValueError(
                        f"centered_logsigmoid takes one reference per item, shape ({n},); "
                        f"got references of shape {refs.shape}."
                    )
                ref = refs
            else:
                assert groups is not None
                ref = reference_by_group(r, groups, how=self.transform.reference)
            return centered_logsigmoid(r, ref)
        # par
        if refs is not None:
            if refs.ndim == 1:
                refs = refs[:, None]
            if refs.shape[1] == 0:
                raise ValueError(
                    f"par needs at least one reference per item, got shape {refs.shape}."
                )
            return par(r, refs)
        assert groups is not None
        return _par_by_group(r, groups)

    def _running_mean(self, r: np.ndarray, state: RunningMeanCenter | None) -> np.ndarray:
        if state is None:
            state = self.new_state()
        elif not isinstance(state, RunningMeanCenter):
            raise TypeError(f"state must be a RunningMeanCenter, got {type(state).__name__}.")
        elif state.momentum != self.transform.momentum:
            raise ValueError(
                f"state has momentum {state.momentum!r} but the rule has "
                f"{self.transform.momentum!r}; create it with rule.new_state()."
            )
        if r.size == 0:
            return r.copy()
        if state.count == 0:
            centred = r - r.mean()
            state(r)  # sets state.mean to this batch's mean
            return centred
        return state(r)

    def label(self) -> str:
        """A short human label, e.g. ``"UWO λ=0.5 → PAR"`` (just the aggregation for ``none``)."""
        agg = self.aggregation.label()
        if self.transform.name == "none":
            return agg
        return f"{agg} → {self.transform.label()}"

    def to_dict(self) -> dict[str, Any]:
        """``{"aggregation": {...}, "transform": {...}}``, JSON-serialisable."""
        return {"aggregation": self.aggregation.to_dict(), "transform": self.transform.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RewardRule:
        """Inverse of :meth:`to_dict`. A missing part takes its default; unknown keys are errors."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"reward rule must be a dict, got {type(d).__name__}: {d!r}.")
        extra = sorted(set(d) - {"aggregation", "transform"}, key=str)
        if extra:
            raise ConfigError(
                f"reward rule dict has unknown key(s) {', '.join(map(repr, extra))}; "
                "allowed: aggregation, transform."
            )
        agg = d.get("aggregation")
        if agg is None:
            aggregation = _default_aggregation()
        elif isinstance(agg, Mapping):
            aggregation = Aggregation.from_dict(dict(agg))
        else:
            raise ConfigError(f"reward rule 'aggregation' must be a dict, got {agg!r}.")
        tr = d.get("transform")
        transform = Transform() if tr is None else Transform.from_dict(tr)
        return cls(aggregation, transform)


def _par_by_group(r: np.ndarray, groups: Sequence[Hashable]) -> np.ndarray:
    """PAR with each item's references the rewards of the other items of its group."""
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    out = np.empty_like(r)
    for idx_list in members.values():
        idx = np.asarray(idx_list, dtype=np.int64)
        k = idx.size
        if k == 1:
            out[idx] = 0.5
            continue
        rg = r[idx]
        others = ~np.eye(k, dtype=bool)
        refs = np.broadcast_to(rg, (k, k))[others].reshape(k, k - 1)
        out[idx] = par(rg, refs)
    return out
