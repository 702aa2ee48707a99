"""Using rewards with their uncertainty: aggregation, transforms, calibration, abstention."""

from __future__ import annotations

from rewardhedge.uncertainty.aggregation import AGGREGATIONS, Aggregation, aggregate
from rewardhedge.uncertainty.calibration import TemperatureScaling, fit_temperature
from rewardhedge.uncertainty.selective import AbstentionRule, fit_abstention, selective_report
from rewardhedge.uncertainty.transforms import (
    RunningMeanCenter,
    centered_logsigmoid,
    par,
    reference_by_group,
)

__all__ = [
    "AGGREGATIONS",
    "AbstentionRule",
    "Aggregation",
    "RunningMeanCenter",
    "TemperatureScaling",
    "aggregate",
    "centered_logsigmoid",
    "fit_abstention",
    "fit_temperature",
    "par",
    "reference_by_group",
    "selective_report",
]
