"""Preference strength and mislabel suspicion from an ensemble's member rewards.

Pure functions of arrays (numpy and scipy; no torch), after Wang et al. 2024,
"Secrets of RLHF in Large Language Models Part II: Reward Modeling"
(arXiv:2401.06080), who score each pair by the votes of several reward models.
For pair ``i`` and member ``k`` of ``m``, with ``d_ik = r_k(x, y_chosen) −
r_k(x, y_rejected)`` (the members as :class:`~rewardhedge.types.RewardEstimate`
gives them):

- vote share ``v_i = (1/m) Σ_k [d_ik > 0] + ½ [d_ik = 0]``: the share of members
  that agree with the label (a tie counts half, as in :mod:`.pairwise`);
- preference strength: the mean margin ``μ_i = (1/m) Σ_k d_ik`` and its spread
  ``s_i = sqrt((1/m) Σ_k (d_ik − μ_i)²)``;
- ``p_i = (1/m) Σ_k σ(ℓ_ik)``: the members' mean probability of the label, with
  ``ℓ_ik`` the member logit of :func:`~rewardhedge.types.member_logits` (``d_ik``,
  or ``d_ik`` shrunk by the predicted noise for Gaussian heads), temperature 1;
- suspicion ``1 − p_i``: how likely the members find the opposite label. It is
  only honest when the members never trained on pair ``i`` (the cross-fitting in
  :mod:`rewardhedge.estimators.audit` sees to that).

What to do with a suspect (:class:`AuditAction`) and how well a flagged set
matches known mislabels (:func:`flag_enrichment`) are here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

from rewardhedge.config import Option
from rewardhedge.evaluate.uncertainty_quality import ood_auroc
from rewardhedge.types import PreferencePair, RewardEstimate, member_logits, sigmoid

__all__ = [
    "AuditAction",
    "PreferenceStrength",
    "apply_action",
    "flag_enrichment",
    "flag_suspects",
    "flip_pair",
    "pair_record",
    "vote_share",
]


class AuditAction(Option):
    """What the audit does with the pairs it flags."""

    FLAG = "flag"
    """Only mark them in the audit file; the data is left as it is."""
    DROP = "drop"
    """Leave them out of the cleaned pairs."""
    FLIP = "flip"
    """Swap their chosen and rejected (and the two scores; the margin is dropped)."""
    SOFT = "soft"
    """Keep them with a soft label: the held-out members' probability that chosen is
    preferred (below 1 − threshold for a suspect), so the BT loss trusts the label only
    as far as the models do (their margin is dropped)."""


def vote_share(margins: np.ndarray) -> np.ndarray:
    """`(n,)` share of the `(m, n)` member margins that are positive, ties counting half.

    Example:
        >>> vote_share(np.array([[1.0, -1.0, 0.0], [2.0, 1.0, -3.0]])).tolist()
        [1.0, 0.5, 0.25]
    """
    d = _members(margins, "margins")
    return (np.sign(d) + 1.0).mean(axis=0) / 2.0


@dataclass(frozen=True)
class PreferenceStrength:
    """How strongly an ensemble's members back each pair's label.

    Attributes:
        vote_share: `(n,)` share of members with ``r_chosen > r_rejected`` (ties half).
        margin_mean: `(n,)` mean over members of ``r_chosen − r_rejected``.
        margin_std: `(n,)` its standard deviation over members (ddof 0).
        prob: `(n,)` mean over members of ``σ(logit_k)``, temperature 1.
        n_members: ``m``, the rows the statistics were taken over.

    Example:
        >>> s = PreferenceStrength.from_margins(np.array([[2.0, -1.0], [0.0, -3.0]]))
        >>> s.vote_share.tolist(), s.margin_mean.tolist(), s.margin_std.tolist()
        ([0.75, 0.0], [1.0, -2.0], [1.0, 1.0])
    """

    vote_share: np.ndarray
    margin_mean: np.ndarray
    margin_std: np.ndarray
    prob: np.ndarray
    n_members: int

    def __post_init__(self) -> None:
        n = np.shape(self.vote_share)[0]
        for name in ("vote_share", "margin_mean", "margin_std", "prob"):
            if np.shape(getattr(self, name)) != (n,):
                raise ValueError(
                    f"PreferenceStrength.{name} has shape {np.shape(getattr(self, name))}, "
                    f"expected ({n},)."
                )

    @classmethod
    def from_margins(
        cls, margins: np.ndarray, logits: np.ndarray | None = None
    ) -> PreferenceStrength:
        """From `(m, n)` member margins ``r_c − r_r`` (and `(m, n)` member logits when they
        differ from the margins, as for Gaussian heads)."""
        d = _members(margins, "margins")
        z = d if logits is None else _members(logits, "logits")
        if z.shape != d.shape:
            raise ValueError(f"logits have shape {z.shape}, margins {d.shape}.")
        return cls(
            vote_share=vote_share(d),
            margin_mean=d.mean(axis=0),
            margin_std=d.std(axis=0),
            prob=sigmoid(z).mean(axis=0),
            n_members=int(d.shape[0]),
        )

    @classmethod
    def from_estimates(cls, chosen: RewardEstimate, rejected: RewardEstimate) -> PreferenceStrength:
        """From the estimates of the chosen and the rejected responses."""
        return cls.from_margins(chosen.members - rejected.members, member_logits(chosen, rejected))

    def __len__(self) -> int:
        return int(self.vote_share.shape[0])

    @property
    def suspicion(self) -> np.ndarray:
        """`(n,)` ``1 − prob``: the members' mean probability that the label is wrong."""
        return 1.0 - self.prob

    def row(self, i: int) -> dict[str, float]:
        """Pair ``i`` as plain floats, for JSON."""
        return {
            "vote_share": float(self.vote_share[i]),
            "margin_mean": float(self.margin_mean[i]),
            "margin_std": float(self.margin_std[i]),
            "p_label": float(self.prob[i]),
        }


def flag_suspects(suspicion: np.ndarray | Sequence[float], threshold: float) -> np.ndarray:
    """`(n,)` bool: ``suspicion > threshold``.

    Example:
        >>> flag_suspects([0.2, 0.5, 0.9], 0.5).tolist()
        [False, False, True]
    """
    s = np.asarray(suspicion, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"suspicion must have shape (n,), got {s.shape}.")
    return s > threshold


def flip_pair(pair: PreferencePair) -> PreferencePair:
    """The pair with chosen and rejected swapped (and their scores, and a soft label
    ``s`` becomes ``1 − s``); its margin, which measured the old label, is dropped."""
    return replace(
        pair,
        chosen=pair.rejected,
        rejected=pair.chosen,
        chosen_score=pair.rejected_score,
        rejected_score=pair.chosen_score,
        soft_label=None if pair.soft_label is None else 1.0 - pair.soft_label,
        margin=None,
    )


def apply_action(
    pairs: Sequence[PreferencePair],
    flagged: np.ndarray | Sequence[bool],
    action: str,
    prob: np.ndarray | Sequence[float] | None = None,
) -> list[PreferencePair]:
    """The pairs after ``action`` on the flagged ones: all kept (``flag``), the flagged
    left out (``drop``), flipped (``flip``) or given the soft label ``prob[i]``, the
    probability that chosen is preferred (``soft``); order otherwise unchanged.

    Example:
        >>> ps = [PreferencePair("q", "a", "b"), PreferencePair("q", "c", "d")]
        >>> [(p.chosen, p.rejected) for p in apply_action(ps, [False, True], "flip")]
        [('a', 'b'), ('d', 'c')]
    """
    act = AuditAction.parse(action, "action")
    mask = np.asarray(flagged, dtype=bool)
    if mask.shape != (len(pairs),):
        raise ValueError(f"flagged has shape {mask.shape}, expected ({len(pairs)},).")
    if act is AuditAction.FLAG:
        return list(pairs)
    if act is AuditAction.DROP:
        return [p for p, f in zip(pairs, mask, strict=True) if not f]
    if act is AuditAction.SOFT:
        if prob is None or np.shape(prob) != (len(pairs),):
            raise ValueError(f"action 'soft' needs prob of shape ({len(pairs)},).")
        return [
            replace(p, soft_label=float(q), margin=None) if f else p
            for p, f, q in zip(pairs, mask, prob, strict=True)
        ]
    return [flip_pair(p) if f else p for p, f in zip(pairs, mask, strict=True)]


def pair_record(pair: PreferencePair) -> dict[str, Any]:
    """The pair as a row the pair loaders read back (fields left unset are left out).

    Example:
        >>> pair_record(PreferencePair("q", "a", "b", id="x"))
        {'prompt': 'q', 'chosen': 'a', 'rejected': 'b', 'id': 'x'}
    """
    return {k: v for k, v in asdict(pair).items() if v is not None}


def flag_enrichment(
    flagged: np.ndarray | Sequence[bool],
    truth: np.ndarray | Sequence[bool],
    suspicion: np.ndarray | Sequence[float] | None = None,
) -> dict[str, Any]:
    """How well the flagged pairs match known mislabels ``truth``.

    Returns ``n``, ``n_true`` (mislabels), ``n_flagged``, ``n_true_flagged``,
    ``precision`` (NaN when nothing is flagged), ``recall``, ``base_rate``
    (``n_true / n``, the precision of a random flagging), ``lift`` (precision /
    base rate) and ``p_value``: the chance that flagging ``n_flagged`` pairs at
    random finds at least ``n_true_flagged`` mislabels (hypergeometric upper tail);
    with ``suspicion``, also ``auroc``: the chance that a random mislabel is more
    suspicious than a random correct pair (threshold-free).

    Example:
        >>> r = flag_enrichment([True, True, False, False], [True, False, False, False])
        >>> r["precision"], r["recall"], r["lift"], r["p_value"]
        (0.5, 1.0, 2.0, 0.5)
    """
    f = np.asarray(flagged, dtype=bool)
    t = np.asarray(truth, dtype=bool)
    if f.ndim != 1 or f.shape != t.shape:
        raise ValueError(f"flagged and truth must both have shape (n,), got {f.shape}, {t.shape}.")
    n, n_true, n_flag = int(f.size), int(t.sum()), int(f.sum())
    tp = int((f & t).sum())
    precision = tp / n_flag if n_flag else float("nan")
    base = n_true / n if n else float("nan")
    out: dict[str, Any] = {
        "n": n,
        "n_true": n_true,
        "n_flagged": n_flag,
        "n_true_flagged": tp,
        "precision": precision,
        "recall": tp / n_true if n_true else float("nan"),
        "base_rate": base,
        "lift": precision / base if n_flag and base > 0 else float("nan"),
        "p_value": float(stats.hypergeom.sf(tp - 1, n, n_true, n_flag)) if n else float("nan"),
    }
    if suspicion is not None:
        s = np.asarray(suspicion, dtype=np.float64)
        if s.shape != t.shape:
            raise ValueError(f"suspicion has shape {s.shape}, expected {t.shape}.")
        out["auroc"] = ood_auroc(s[~t], s[t]) if 0 < n_true < n else float("nan")
    return out


def _members(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValueError(f"{name} must have shape (m, n) with m >= 1, got {arr.shape}.")
    return arr
