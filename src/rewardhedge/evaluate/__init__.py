"""Evaluation of reward models on preference pairs: pure metric functions and a report."""

from __future__ import annotations

from rewardhedge.evaluate.pairwise import (
    bootstrap_ci,
    brier,
    length_baseline_correct,
    log_loss,
    pairwise_accuracy,
    pairwise_correct,
    per_subset,
)
from rewardhedge.evaluate.report import evaluate_pairwise, format_metrics, metrics_table

__all__ = [
    "bootstrap_ci",
    "brier",
    "evaluate_pairwise",
    "format_metrics",
    "length_baseline_correct",
    "log_loss",
    "metrics_table",
    "pairwise_accuracy",
    "pairwise_correct",
    "per_subset",
]
