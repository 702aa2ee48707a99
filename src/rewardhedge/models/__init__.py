"""Reward heads, losses and the model folder format (safetensors + JSON)."""

from __future__ import annotations

from rewardhedge.models.heads import HeadStack
from rewardhedge.models.io import load_model_folder, save_model_folder
from rewardhedge.models.losses import bradley_terry_loss

__all__ = ["HeadStack", "bradley_terry_loss", "load_model_folder", "save_model_folder"]
