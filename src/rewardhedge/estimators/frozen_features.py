"""The frozen encoder that the heads-on-features model families share: built on first
use from ``config.encoder`` (loading MiniLM takes a second), behind the embedding cache
unless ``use_cache`` is off."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardhedge.encoders import Encoder, build_cached_encoder
from rewardhedge.errors import ModelFormatError
from rewardhedge.uncertainty.calibration import TemperatureScaling


class FrozenFeatures:
    """Mixin for models with ``config.encoder``, ``cache_dir``, ``use_cache`` and ``_encoder``."""

    config: Any
    cache_dir: Any
    use_cache: bool
    _encoder: Encoder | None
    temperature_: TemperatureScaling
    history_: list[dict[str, Any]]
    best_epoch_: list[int]
    n_pairs_: int
    data_hash_: str | None
    encoder_id_: str | None

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

    # -- what every model folder of this family records ----------------------------------
    def _fitted_record(self, **shape: int) -> dict[str, Any]:
        """``config.json``'s ``fitted`` block: the heads' input ``shape`` and the fit's
        size, best epochs and epoch count."""
        return {
            **shape,
            "n_pairs": self.n_pairs_,
            "best_epoch": list(self.best_epoch_),
            "epochs_run": len(self.history_),
        }

    def _manifest_info(self, n_members: int, estimator: str) -> dict[str, Any]:
        """The manifest's provenance: encoder, training data hash, members, estimator."""
        return {
            "encoder_id": self.encoder_id_,
            "training_data_hash": self.data_hash_,
            "n_members": n_members,
            "estimator": estimator,
        }

    def _restore_fitted(
        self,
        path: str | Path,
        manifest: dict[str, Any],
        fitted: dict[str, Any],
        temperature: TemperatureScaling,
    ) -> None:
        """Refuse a folder trained on another encoder; then restore what ``_fitted_record``
        and ``_manifest_info`` saved (the epoch history itself is not kept)."""
        if self.encoder.id != manifest.get("encoder_id"):
            raise ModelFormatError(
                f"{Path(path) / 'manifest.json'}: the model was trained on encoder "
                f"{manifest.get('encoder_id')!r}, but the encoder available here is "
                f"{self.encoder.id!r}; its scores would be meaningless."
            )
        self.temperature_ = temperature
        self.history_ = []
        self.best_epoch_ = list(fitted.get("best_epoch", []))
        self.n_pairs_ = int(fitted.get("n_pairs", 0))
        self.data_hash_ = manifest.get("training_data_hash")
        self.encoder_id_ = manifest.get("encoder_id")
