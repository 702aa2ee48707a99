"""Some views of a multi-view encoder, served as an encoder of their own.

Why: the overoptimisation lab compares models that read one view (the single
model, the bootstrap and subspace ensembles) with an ensemble whose members
read all of them. Slicing one cached multi-view pass gives every model
exactly the features it would get from its own encoder, at the cost of one
forward pass per text instead of two.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewardhedge.config import EncoderConfig
from rewardhedge.encoders.base import Encoder
from rewardhedge.encoders.views import infer_view_slices
from rewardhedge.errors import ConfigError


class ViewSlice:
    """The columns of ``view`` (one name, or several, concatenated in the order given)
    in the features of ``encoder`` (built from ``config``).

    ``id`` defaults to the inner id plus the view; give the id of the one-view
    encoder that computes the same columns when models trained on the slice
    must load with that encoder.

    Example:
        >>> from rewardhedge.encoders import build_encoder
        >>> cfg = EncoderConfig(kind="hashing", dim=8, views=("hash", "hash_bigram"))
        >>> both = build_encoder(cfg)
        >>> words = ViewSlice(both, cfg, "hash")
        >>> words.dim, words.encode(["p"], ["a b c"]).shape
        (8, (1, 8))
    """

    def __init__(
        self,
        encoder: Encoder,
        config: EncoderConfig,
        view: str | Sequence[str],
        *,
        id: str | None = None,
    ) -> None:
        slices = infer_view_slices(config, encoder.dim)
        views = (view,) if isinstance(view, str) else tuple(view)
        for v in views:
            if v not in slices:
                raise ConfigError(
                    f"view {v!r} is not among the encoder's views {', '.join(slices)}."
                )
        self.inner = encoder
        self.views = views
        self.columns = np.concatenate([np.arange(*slices[v]) for v in views])
        self.dim = int(self.columns.shape[0])
        self.id = id or f"{encoder.id}|views={'+'.join(views)}"

    def encode(
        self, prompts: Sequence[str], responses: Sequence[str], *, progress: bool = False
    ) -> np.ndarray:
        """`(n, dim)`: the views' columns of the inner encoder's features."""
        feats = self.inner.encode(prompts, responses, progress=progress)
        return np.ascontiguousarray(np.asarray(feats)[:, self.columns])


__all__ = ["ViewSlice"]
