"""The frozen encoder that the heads-on-features model families share: built on first
use from ``config.encoder`` (loading MiniLM takes a second), behind the embedding cache
unless ``use_cache`` is off."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardhedge.encoders import Encoder, build_cached_encoder


class FrozenFeatures:
    """Mixin for models with ``config.encoder``, ``cache_dir``, ``use_cache`` and ``_encoder``."""

    config: Any
    cache_dir: Any
    use_cache: bool
    _encoder: Encoder | None

    @property
    def encoder(self) -> Encoder:
        """The feature extractor, built on first use (loading MiniLM takes a second)."""
        if self._encoder is None:
            self._encoder = build_cached_encoder(
                self.config.encoder, self.cache_dir, use_cache=self.use_cache
            )
        return self._encoder

    def _features(
        self, prompts: Sequence[str], responses: Sequence[str], progress: bool
    ) -> np.ndarray:
        """``(n, dim)`` float32 features of the (prompt, response) items."""
        return np.asarray(
            self.encoder.encode(list(prompts), list(responses), progress=progress),
            dtype=np.float32,
        )
