"""rewardhedge: reward models that know when not to be trusted.

The public API, importable from the package root (loaded on first use, so
``import rewardhedge`` stays light)::

    from rewardhedge import EnsembleRewardModel, EnsembleConfig, load_pairs
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from rewardhedge import _moved  # old module paths keep importing

_moved.install()

_EXPORTS = {
    "EnsembleRewardModel": "rewardhedge.estimators.ensemble",
    "FinetunedRewardModel": "rewardhedge.estimators.finetuned",
    "GeneralPreferenceModel": "rewardhedge.estimators.general_preference",
    "GPMConfig": "rewardhedge.models.general_preference",
    "RewardModelBase": "rewardhedge.estimators.base",
    "load_reward_model": "rewardhedge.estimators.loading",
    "FinetuneConfig": "rewardhedge.config_finetune",
    "EnsembleConfig": "rewardhedge.config",
    "EncoderConfig": "rewardhedge.config",
    "HeadConfig": "rewardhedge.config",
    "TrainConfig": "rewardhedge.config",
    "UncertaintyConfig": "rewardhedge.config",
    "EstimatorKind": "rewardhedge.config",
    "PreferencePair": "rewardhedge.types",
    "ScoreItem": "rewardhedge.types",
    "RewardEstimate": "rewardhedge.types",
    "PairwiseEstimate": "rewardhedge.types",
    "RewardModel": "rewardhedge.types",
    "RewardHedgeError": "rewardhedge.errors",
    "ConfigError": "rewardhedge.errors",
    "DataError": "rewardhedge.errors",
    "NotFittedError": "rewardhedge.errors",
    "ModelFormatError": "rewardhedge.errors",
    "CandidatePool": "rewardhedge.types",
    "load_pairs": "rewardhedge.data",
    "load_items": "rewardhedge.data",
    "load_pools": "rewardhedge.data",
    "SandboxConfig": "rewardhedge.data.sandbox",
    "generate_sandbox": "rewardhedge.data.sandbox",
    "Aggregation": "rewardhedge.uncertainty",
    "RewardRule": "rewardhedge.uncertainty",
    "Transform": "rewardhedge.uncertainty",
    "TemperatureScaling": "rewardhedge.uncertainty",
    "best_of_n": "rewardhedge.optimize.bon",
    "LabConfig": "rewardhedge.lab.overopt",
    "run_lab": "rewardhedge.lab.overopt",
    "render_report": "rewardhedge.report",
    "OneToManyRow": "rewardhedge.types",
    "load_one_to_many": "rewardhedge.data",
    "EvalConfig": "rewardhedge.config",
    "evaluate_pairs": "rewardhedge.estimators.evaluation",
    "evaluate_one_to_many": "rewardhedge.estimators.evaluation",
    "evaluate_pools": "rewardhedge.estimators.evaluation",
    "evaluate_steps": "rewardhedge.estimators.evaluation",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rewardhedge' has no attribute {name!r}")
