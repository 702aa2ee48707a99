"""Using rewards with their uncertainty: aggregation, transforms, calibration, abstention,
the DEUP error predictor, and credit assignment over a solution's steps."""

from __future__ import annotations

from rewardhedge.uncertainty.aggregation import AGGREGATIONS, Aggregation, aggregate
from rewardhedge.uncertainty.calibration import TemperatureScaling, fit_temperature
from rewardhedge.uncertainty.deup import ErrorPredictor, FeatureDensity, excess_loss
from rewardhedge.uncertainty.process import CreditKind, aggregate_steps
from rewardhedge.uncertainty.reward_rule import TRANSFORMS, RewardRule, Transform
from rewardhedge.uncertainty.selective import AbstentionRule, fit_abstention, selective_report
from rewardhedge.uncertainty.transforms import (
    RunningMeanCenter,
    centered_logsigmoid,
    par,
    reference_by_group,
)

__all__ = [
    "AGGREGATIONS",
    "TRANSFORMS",
    "AbstentionRule",
    "Aggregation",
    "CreditKind",
    "ErrorPredictor",
    "FeatureDensity",
    "RewardRule",
    "RunningMeanCenter",
    "TemperatureScaling",
    "Transform",
    "aggregate",
    "aggregate_steps",
    "centered_logsigmoid",
    "excess_loss",
    "fit_abstention",
    "fit_temperature",
    "par",
    "reference_by_group",
    "selective_report",
]
