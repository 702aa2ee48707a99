"""Which features each ensemble member sees (``EnsembleConfig.diversity``).

Members that share one frozen representation and differ only by seed and
bootstrap resample make the same mistakes. Two cheap ways to make them
differ on a frozen encoder, both as fixed `(K, dim)` 0/1 masks that the head
stack applies to the standardised features and saves with its weights:

- ``subspace``: member k sees its own random ⌈fraction·dim⌉ dimensions (Ho's
  random subspace method), drawn from ``train.seed``;
- ``views``: member k sees view k mod V of a multi-view encoder (the column
  block :func:`~rewardhedge.encoders.views.infer_view_slices` gives).
"""

from __future__ import annotations

import math

import numpy as np

from rewardhedge.config import DiversityKind, EnsembleConfig
from rewardhedge.encoders.views import infer_view_slices

_SUBSPACE_STREAM = 0x5B5
"""Second seed word of the subspace draws, so they never share a stream with the
split, bootstrap or initialisation (all seeded from ``train.seed`` alone)."""


def member_masks(config: EnsembleConfig, dim: int) -> np.ndarray | None:
    """`(K, dim)` float32 0/1 masks for ``config``'s diversity, or None (all features).

    Raises:
        ConfigError: ``views`` with features that do not fit ``config.encoder.views``.
    """
    kind = config.diversity.kind
    k = config.n_members
    if kind is DiversityKind.BOOTSTRAP:
        return None
    masks = np.zeros((k, dim), dtype=np.float32)
    if kind is DiversityKind.SUBSPACE:
        size = min(dim, math.ceil(config.diversity.subspace_fraction * dim))
        rng = np.random.default_rng([config.train.seed, _SUBSPACE_STREAM])
        for member in range(k):
            masks[member, rng.permutation(dim)[:size]] = 1.0
        return masks
    slices = list(infer_view_slices(config.encoder, dim).values())
    for member in range(k):
        start, stop = slices[member % len(slices)]
        masks[member, start:stop] = 1.0
    return masks


__all__ = ["member_masks"]
