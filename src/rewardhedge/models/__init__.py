"""Reward heads, losses and the model folder format (safetensors + JSON)."""

from __future__ import annotations

from rewardhedge.models.heads import HeadStack
from rewardhedge.models.io import load_model_folder, recover_model_folder, save_model_folder
from rewardhedge.models.laplace import LastLayerLaplace, bt_ggn
from rewardhedge.models.losses import bradley_terry_loss
from rewardhedge.models.reward_heads import RewardHeads

__all__ = [
    "HeadStack",
    "LastLayerLaplace",
    "RewardHeads",
    "bradley_terry_loss",
    "bt_ggn",
    "load_model_folder",
    "recover_model_folder",
    "save_model_folder",
]
