"""Uncertainty quality: which uncertainty score should a user trust?

Why: every ensemble gives several candidate uncertainty scores (the entropy of
the preference probability, the spread of the members, a small margin, …).
Calibration metrics say whether probabilities are right on average; these
metrics say whether the *ranking* by uncertainty is useful — whether the most
uncertain pairs are the ones the model gets wrong (misorder AUROC, selective
accuracy curve, AURC) and whether unfamiliar inputs look uncertain (OOD AUROC).

Conventions, shared by every function here:

- ``uncertainty`` is `(n,)`, higher = less trusted.
- ``correct`` is `(n,)` per-pair correctness in [0, 1], as
  :func:`rewardhedge.evaluate.pairwise.pairwise_correct` returns it: 1 right,
  0 wrong, 0.5 an exact tie.
- For the AUROC a pair is *misordered* iff ``correct < 1``: a tie counts as a
  misordered pair, because the model could not tell the two responses apart
  and an uncertainty score should flag it. The selective curve and AURC use
  ``correct`` as it is (a tie counts half), matching pairwise accuracy.
- Ties in uncertainty are broken stably: among equally uncertain items the one
  earlier in the input is kept first. The selective curve and AURC therefore
  depend on input order only where scores tie exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from sklearn.metrics import roc_auc_score

from rewardhedge.types import PairwiseEstimate

__all__ = [
    "SelectiveCurve",
    "aurc",
    "misorder_auroc",
    "ood_auroc",
    "pair_uncertainties",
    "selective_curve",
]


def _scores(x: np.ndarray | Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got {arr.shape}.")
    n_nan = int(np.isnan(arr).sum())
    if n_nan:
        raise ValueError(f"{name} contains {n_nan} NaN value(s).")
    return arr


def _pair(
    uncertainty: np.ndarray | Sequence[float], correct: np.ndarray | Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    u = _scores(uncertainty, "uncertainty")
    c = _scores(correct, "correct")
    if u.shape != c.shape:
        raise ValueError(f"uncertainty and correct differ in length: {u.shape[0]} vs {c.shape[0]}.")
    bad = (c < 0.0) | (c > 1.0)
    if bad.any():
        raise ValueError(f"correct must lie in [0, 1]; {int(bad.sum())} value(s) do not.")
    return u, c


def _auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    if negatives.size == 0 or positives.size == 0:
        return math.nan
    y = np.concatenate([np.zeros(negatives.size), np.ones(positives.size)])
    return float(roc_auc_score(y, np.concatenate([negatives, positives])))


def misorder_auroc(
    uncertainty: np.ndarray | Sequence[float], correct: np.ndarray | Sequence[float]
) -> float:
    """AUROC of the uncertainty for detecting misordered pairs.

    The probability that a random misordered pair (``correct < 1``, ties
    included) is more uncertain than a random correctly ordered one, equal
    scores counting half. 1 is perfect, 0.5 is no better than chance.

    Returns:
        A float; NaN when every pair is correct or every pair misordered.

    Example:
        >>> misorder_auroc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0.5])
        1.0
    """
    u, c = _pair(uncertainty, correct)
    wrong = c < 1.0
    return _auroc(u[~wrong], u[wrong])


def ood_auroc(u_in: np.ndarray | Sequence[float], u_out: np.ndarray | Sequence[float]) -> float:
    """AUROC of the uncertainty for telling out-of-distribution items from in-distribution ones.

    The probability that a random OOD item is more uncertain than a random
    in-distribution one, equal scores counting half.

    Raises:
        ValueError: if either array is empty, not 1-D, or contains NaN.

    Example:
        >>> ood_auroc([0.1, 0.3], [0.2, 0.9])
        0.75
    """
    a = _scores(u_in, "u_in")
    b = _scores(u_out, "u_out")
    if a.size == 0 or b.size == 0:
        raise ValueError(f"u_in and u_out must both be non-empty, got {a.size} and {b.size}.")
    return _auroc(a, b)


class SelectiveCurve(NamedTuple):
    """Coverage ``k/n`` and selective accuracy when keeping the ``k`` most certain items."""

    coverage: np.ndarray
    accuracy: np.ndarray


def selective_curve(
    uncertainty: np.ndarray | Sequence[float], correct: np.ndarray | Sequence[float]
) -> SelectiveCurve:
    """Selective accuracy as a function of coverage, for ``k = 1..n``.

    Returns:
        ``(coverage, accuracy)``, both `(n,)`: ``coverage[k-1] = k/n`` and
        ``accuracy[k-1]`` is the mean of ``correct`` over the ``k`` least
        uncertain items (stable tie-breaking). The last accuracy is the
        overall accuracy. Empty inputs give empty arrays.

    Example:
        >>> cov, acc = selective_curve([0.3, 0.1, 0.2, 0.9], [0, 1, 1, 0.5])
        >>> cov.tolist(), acc.tolist()
        ([0.25, 0.5, 0.75, 1.0], [1.0, 1.0, 0.6666666666666666, 0.625])
    """
    u, c = _pair(uncertainty, correct)
    n = u.shape[0]
    k = np.arange(1, n + 1, dtype=np.float64)
    order = np.argsort(u, kind="stable")
    return SelectiveCurve(coverage=k / n, accuracy=np.cumsum(c[order]) / k)


def aurc(uncertainty: np.ndarray | Sequence[float], correct: np.ndarray | Sequence[float]) -> float:
    """Area under the risk–coverage curve: mean selective risk over ``k = 1..n``.

    Risk is ``1 - correct`` (a tie costs half). Lower is better. With ``e``
    misordered pairs out of ``n`` (0/1 correctness), the best possible value is
    ``(e - (n - e)·(H_n - H_{n-e})) / n`` (``H`` the harmonic numbers), reached
    when every correct pair is less uncertain than every wrong one; a score
    unrelated to correctness gives the error rate ``e/n`` in expectation.

    Returns:
        A float; NaN when ``n == 0``.

    Example:
        >>> aurc([0.1, 0.2, 0.3, 0.4], [1, 1, 1, 0])  # (0 + 0 + 0 + 1/4) / 4
        0.0625
    """
    _, acc = selective_curve(uncertainty, correct)
    return float(np.mean(1.0 - acc)) if acc.size else math.nan


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats, 0 at p in {0, 1}."""
    q = np.clip(p, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(q * np.log(q) + (1.0 - q) * np.log1p(-q))
    return np.nan_to_num(h, nan=0.0)


def pair_uncertainties(pairwise: PairwiseEstimate) -> dict[str, np.ndarray]:
    """Per-pair uncertainty scores from an ensemble's preference probabilities.

    All are `(n,)`, higher = less trusted:

    - ``prob_entropy``: binary entropy (nats) of the ensemble probability
      ``prob``. *Total* uncertainty: high both when members disagree and when
      they agree on a coin flip.
    - ``member_std``: standard deviation over members of their probabilities
      (ddof=0). *Epistemic*: zero for a single member.
    - ``mutual_information``: ``H(prob) - mean_k H(p_k)`` (BALD), the
      *epistemic* part of the entropy; zero when all members agree.
    - ``margin_abs_inverse``: ``-|mean margin|``, a point-estimate score (pairs
      near the decision boundary); not epistemic, it ignores the members' spread.
    - ``epistemic_sum``: the two responses' own ``epistemic`` values added
      (the member variance for ensembles, the posterior predictive variance
      for Laplace, the predicted excess loss with an error predictor).
    - ``aleatoric_sum``: the same for ``aleatoric`` (only when some is non-zero,
      i.e. for Gaussian heads).

    Example:
        >>> from rewardhedge.types import RewardEstimate, pairwise_from_estimates
        >>> c = RewardEstimate.from_members(np.array([[1.0, 0.0], [1.0, 2.0]]))
        >>> r = RewardEstimate.from_members(np.zeros((2, 2)))
        >>> out = pair_uncertainties(pairwise_from_estimates(c, r))
        >>> out["member_std"].round(3).tolist(), out["margin_abs_inverse"].tolist()
        ([0.0, 0.19], [-1.0, -1.0])
    """
    prob = np.asarray(pairwise.prob, dtype=np.float64)
    members = np.asarray(pairwise.members, dtype=np.float64)
    entropy = _binary_entropy(prob)
    out = {
        "prob_entropy": entropy,
        "member_std": members.std(axis=0),
        "mutual_information": np.maximum(entropy - _binary_entropy(members).mean(axis=0), 0.0),
        "margin_abs_inverse": -np.abs(np.asarray(pairwise.margin, dtype=np.float64)),
        "epistemic_sum": pairwise.chosen.epistemic + pairwise.rejected.epistemic,
    }
    aleatoric = pairwise.chosen.aleatoric + pairwise.rejected.aleatoric
    if np.any(aleatoric):
        out["aleatoric_sum"] = aleatoric
    return out
