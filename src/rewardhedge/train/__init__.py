"""Training loops: the batched ensemble-head trainer on cached features."""

from __future__ import annotations

from rewardhedge.train.head_training import FitResult, fit_head_stack

__all__ = ["FitResult", "fit_head_stack"]
