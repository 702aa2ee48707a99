"""Optimising against rewards: best-of-n estimators and overoptimisation curves."""

from __future__ import annotations

from rewardhedge.optimize.order_stats import (
    best_of_n_weights,
    expected_best_of_n,
    expected_best_of_n_ragged,
    kl_best_of_n,
)
from rewardhedge.optimize.scaling import GaoFit, fit_gao, n_at_kl

__all__ = [
    "GaoFit",
    "best_of_n_weights",
    "expected_best_of_n",
    "expected_best_of_n_ragged",
    "fit_gao",
    "kl_best_of_n",
    "n_at_kl",
]
