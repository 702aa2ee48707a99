"""Open any rewardhedge model folder with the class that wrote it.

The manifest names the class (``EnsembleRewardModel`` for heads on a frozen
encoder, ``FinetunedRewardModel`` for a fine-tuned transformer,
``GeneralPreferenceModel`` for a general preference model,
``CompositeRewardModel`` for several models' rewards combined); ``score``,
``eval``, ``bon`` and ``serve`` call this, so every command takes either.
"""

from __future__ import annotations

from pathlib import Path

from rewardhedge.estimators.base import RewardModelBase
from rewardhedge.estimators.composite import CompositeRewardModel
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.estimators.finetuned import FinetunedRewardModel
from rewardhedge.estimators.general_preference import GeneralPreferenceModel
from rewardhedge.models.io import folder_model_class, recover_model_folder


def load_reward_model(
    path: str | Path,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    device: str | None = None,
) -> RewardModelBase:
    """The model in ``path``; ``cache_dir``/``use_cache`` apply to frozen-encoder models,
    ``device`` to fine-tuned ones (default: CUDA when available). A save that a crash
    interrupted is repaired first, so the manifest read here names the right class."""
    recover_model_folder(path)
    kind = folder_model_class(path)
    if kind == CompositeRewardModel.__name__:
        return CompositeRewardModel.load(
            path, cache_dir=cache_dir, use_cache=use_cache, device=device
        )
    if kind == FinetunedRewardModel.__name__:
        return FinetunedRewardModel.load(path, device=device)
    if kind == GeneralPreferenceModel.__name__:
        return GeneralPreferenceModel.load(path, cache_dir=cache_dir, use_cache=use_cache)
    return EnsembleRewardModel.load(path, cache_dir=cache_dir, use_cache=use_cache)
