"""Evaluation of reward models: pure metric functions (numpy/scipy) and the summary dict
(:mod:`pairwise_summary`); their terminal tables are in :mod:`rewardhedge.report.terminal`.

Pairs (:mod:`pairwise`, :mod:`calibration`, :mod:`uncertainty_quality`),
RewardBench v1 sections (:mod:`rewardbench`), one chosen vs many rejected
(:mod:`one_to_many`), statistics over seeds or members (:mod:`statistics`),
the paired bootstrap test (:mod:`paired`), distances between reward models
(:mod:`starc`), how different an ensemble's members are (:mod:`diversity`),
consistency under prompt perturbations (:mod:`consistency`), step-level accuracy
and ProcessBench first-error detection of process reward models (:mod:`process`),
batch-size invariance (:mod:`invariance`) and whether best-of-n picks beat length
or ride it (:mod:`length_controls`).
"""

from __future__ import annotations

from rewardhedge.evaluate.consistency import perturbation_consistency
from rewardhedge.evaluate.diversity import member_diversity
from rewardhedge.evaluate.invariance import batch_invariance
from rewardhedge.evaluate.length_controls import length_baselines, length_controls
from rewardhedge.evaluate.one_to_many import (
    best_of_n_tie_penalty,
    chance_best_of_n,
    one_to_many_correct,
    reciprocal_rank,
    summarise_one_to_many,
)
from rewardhedge.evaluate.paired import PairedTest, paired_bootstrap_test
from rewardhedge.evaluate.pairwise import (
    bootstrap_ci,
    brier,
    length_baseline_correct,
    log_loss,
    pairwise_accuracy,
    pairwise_correct,
    per_subset,
)
from rewardhedge.evaluate.pairwise_summary import evaluate_pairwise
from rewardhedge.evaluate.process import (
    first_error_scores,
    fit_threshold,
    predicted_first_error,
    step_metrics,
)
from rewardhedge.evaluate.rewardbench import (
    REWARDBENCH_V1_EXAMPLE_COUNTS,
    REWARDBENCH_V1_SECTIONS,
    section_scores,
)
from rewardhedge.evaluate.starc import (
    canonicalise,
    starc_bootstrap_ci,
    starc_distance,
    starc_pairwise,
    starc_to_reference,
)
from rewardhedge.evaluate.statistics import iqm, stratified_bootstrap_ci

__all__ = [
    "REWARDBENCH_V1_EXAMPLE_COUNTS",
    "REWARDBENCH_V1_SECTIONS",
    "PairedTest",
    "batch_invariance",
    "best_of_n_tie_penalty",
    "bootstrap_ci",
    "brier",
    "canonicalise",
    "chance_best_of_n",
    "evaluate_pairwise",
    "first_error_scores",
    "fit_threshold",
    "iqm",
    "length_baseline_correct",
    "length_baselines",
    "length_controls",
    "log_loss",
    "member_diversity",
    "one_to_many_correct",
    "paired_bootstrap_test",
    "pairwise_accuracy",
    "pairwise_correct",
    "per_subset",
    "perturbation_consistency",
    "predicted_first_error",
    "reciprocal_rank",
    "section_scores",
    "starc_bootstrap_ci",
    "starc_distance",
    "starc_pairwise",
    "starc_to_reference",
    "step_metrics",
    "stratified_bootstrap_ci",
    "summarise_one_to_many",
]
