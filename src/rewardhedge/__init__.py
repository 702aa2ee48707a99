"""rewardhedge: reward models that know when not to be trusted."""

from __future__ import annotations

__version__ = "0.1.0"
