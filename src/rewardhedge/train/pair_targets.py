"""What a training pair carries besides its two feature vectors: a required margin,
ratings of its two sides, and the sides' length features. The head trainer reads
whichever the objective and the head need, and cross-fitting splits them with the
features (:meth:`PairTargets.take`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from rewardhedge.config import RATING_OBJECTIVES, EnsembleConfig
from rewardhedge.encoders.length import length_features
from rewardhedge.errors import DataError
from rewardhedge.types import PreferencePair


@dataclass(frozen=True)
class PairTargets:
    """Per-pair arrays (numpy, or torch inside the trainer); ``None`` where unused."""

    margin: np.ndarray | torch.Tensor | None = None
    """`(n,)` required reward gap of each pair (0 where the data has none)."""
    ratings: np.ndarray | torch.Tensor | None = None
    """`(n, 2)` ratings of chosen and rejected; NaN where a side has none."""
    lengths: np.ndarray | torch.Tensor | None = None
    """`(n, 2, L)` length features of chosen and rejected (see ``encoders/length.py``)."""
    soft_label: np.ndarray | torch.Tensor | None = None
    """`(n,)` probability that chosen is preferred (1 where the pair has a hard label)."""

    def take(self, index: np.ndarray | torch.Tensor) -> PairTargets:
        """The same arrays for the pairs at ``index`` (positions or a boolean mask)."""
        return PairTargets(
            **{
                f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                for f in fields(self)
            }
        )

    def as_tensors(self) -> PairTargets:
        """float32 torch tensors of every array that is set."""
        return PairTargets(
            **{
                f.name: None
                if getattr(self, f.name) is None
                else torch.as_tensor(getattr(self, f.name), dtype=torch.float32)
                for f in fields(self)
            }
        )

    @classmethod
    def from_pairs(cls, pairs: Sequence[PreferencePair], config: EnsembleConfig) -> PairTargets:
        """The arrays ``config`` needs from ``pairs``: margins and soft labels when any
        pair has one, ratings for the rating objectives, length features for a length head.

        Raises:
            DataError: a rating objective, and no pair carries a rating.
        """
        margins = [p.margin for p in pairs]
        margin = None
        if any(m is not None for m in margins):
            margin = np.array([m or 0.0 for m in margins], dtype=np.float64)
        ratings = pair_ratings(pairs, config)
        lengths = None
        if config.head.length_head:
            both = length_features([p.chosen for p in pairs] + [p.rejected for p in pairs])
            lengths = np.stack([both[: len(pairs)], both[len(pairs) :]], axis=1)
        soft_label = None
        if any(p.soft_label is not None for p in pairs):
            soft_label = np.array(
                [1.0 if p.soft_label is None else p.soft_label for p in pairs], dtype=np.float64
            )
        return cls(margin, ratings, lengths, soft_label)


def pair_ratings(pairs: Sequence[PreferencePair], config: EnsembleConfig) -> np.ndarray | None:
    """`(n, 2)` ratings of chosen and rejected (NaN where missing) for a rating
    objective, else ``None``.

    Raises:
        DataError: a rating objective, and no pair carries a rating.
    """
    objective = config.train.objective
    if objective not in RATING_OBJECTIVES:
        return None
    ratings = np.array(
        [[_or_nan(p.chosen_score), _or_nan(p.rejected_score)] for p in pairs], dtype=np.float64
    )
    if not np.isfinite(ratings).any():
        raise DataError(
            f"train.objective {objective.value!r} fits ratings, but none of the "
            f"{len(pairs)} training pairs has chosen_score or rejected_score; add "
            "them (map your columns with --field chosen_score=COLUMN) or use 'bt'."
        )
    return ratings


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else float(value)
