"""Using rewards with their uncertainty: conservative ensemble aggregation."""

from __future__ import annotations

from rewardhedge.uncertainty.aggregation import AGGREGATIONS, Aggregation, aggregate

__all__ = ["AGGREGATIONS", "Aggregation", "aggregate"]
