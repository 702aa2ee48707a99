"""Reward transforms that bound what an optimiser can gain from one prompt.

Why: a raw Bradley-Terry reward is unbounded and only defined up to a
per-prompt shift, so a policy can win a lot of "reward" by pushing far past
a good-enough answer, which is exactly where the proxy is least trustworthy.

- Centered log-sigmoid ``log σ(r − r_ref(x))`` ("Transforming and Combining
  Rewards for Aligning LLMs", Wang et al.): concave and bounded above by 0,
  so gains beyond the reference saturate; summing it over several reward
  models is the log-probability that the response beats the reference under
  all of them (a logical AND).
- PAR ``mean_j σ(r − r_ref,j)`` ("Reward Shaping to Mitigate Reward Hacking
  in RLHF"): bounded in (0, 1), centred on references, averaged over several.
- Running-mean centering (PPO-C in "Taming Overconfidence in LLMs: Reward
  Calibration in RLHF"): subtract the mean of the rewards seen so far.

The reference ``r_ref(x)`` is a reward of the same prompt: a reference
response's reward, or (:func:`reference_by_group`) the median of the
rewards of that prompt's candidates.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "RunningMeanCenter",
    "centered_logsigmoid",
    "par",
    "reference_by_group",
]


def centered_logsigmoid(rewards: np.ndarray, reference: np.ndarray | float) -> np.ndarray:
    """``log σ(r − r_ref)``, computed stably as ``−log(1 + exp(−(r − r_ref)))``.

    Example:
        >>> np.round(centered_logsigmoid(np.array([0.0, 10.0, -10.0]), 0.0), 4).tolist()
        [-0.6931, -0.0, -10.0]
    """
    x = np.asarray(rewards, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    return -np.logaddexp(0.0, -x)


def par(rewards: np.ndarray, references: np.ndarray) -> np.ndarray:
    """PAR: ``mean_j σ(r_i − ref_ij)`` for `(n,)` rewards and `(n, m)` (or `(m,)` shared) references.

    Example:
        >>> par(np.array([0.0, 1.0]), np.array([0.0])).tolist()
        [0.5, 0.7310585786300049]
    """
    r = np.asarray(rewards, dtype=np.float64)
    refs = np.asarray(references, dtype=np.float64)
    if refs.ndim == 1:
        refs = np.broadcast_to(refs, (r.shape[0], refs.shape[0]))
    if refs.ndim != 2 or refs.shape[0] != r.shape[0] or refs.shape[1] == 0:
        raise ValueError(
            f"references must have shape (n, m) or (m,) with m ≥ 1 for {r.shape[0]} rewards, "
            f"got {np.shape(references)}"
        )
    x = r[:, None] - refs
    return np.mean(np.exp(-np.logaddexp(0.0, -x)), axis=1)


def reference_by_group(
    rewards: np.ndarray, groups: Sequence[Hashable], *, how: str = "median"
) -> np.ndarray:
    """Each item's reference: the median (or mean) reward of the items sharing its group.

    ``groups`` is usually the prompt, so each candidate is compared with its
    own prompt's typical candidate.

    Example:
        >>> reference_by_group(np.array([1.0, 3.0, 10.0]), ["a", "a", "b"]).tolist()
        [2.0, 2.0, 10.0]
    """
    r = np.asarray(rewards, dtype=np.float64)
    if len(groups) != r.shape[0]:
        raise ValueError(f"{len(groups)} groups for {r.shape[0]} rewards")
    if how not in ("median", "mean"):
        raise ValueError(f"how must be 'median' or 'mean', got {how!r}")
    reduce = np.median if how == "median" else np.mean
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    out = np.empty_like(r)
    for idx in members.values():
        out[idx] = reduce(r[idx])
    return out


@dataclass
class RunningMeanCenter:
    """Subtract the running mean of all rewards seen before each batch (PPO-C).

    The mean is updated *after* centering a batch, so a batch is never
    centred on itself. ``momentum`` switches to an exponential moving
    average (weight of the new batch mean); ``None`` keeps the exact mean.
    """

    momentum: float | None = None
    mean: float = 0.0
    count: int = field(default=0)

    def __post_init__(self) -> None:
        if self.momentum is not None and not 0.0 < self.momentum <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], got {self.momentum}")

    def __call__(self, rewards: np.ndarray) -> np.ndarray:
        r = np.asarray(rewards, dtype=np.float64)
        centred = r - self.mean
        if r.size:
            if self.count == 0:
                self.mean = float(r.mean())
            elif self.momentum is None:
                self.mean += (float(r.sum()) - r.size * self.mean) / (self.count + r.size)
            else:
                self.mean += self.momentum * (float(r.mean()) - self.mean)
            self.count += r.size
        return centred
