"""Optimising against rewards: best-of-n estimators, overoptimisation curves, RL rewards,
reward-guided search over reasoning steps.

``RemoteRewardModel`` and ``RemoteRewardError`` (the reward-server client)
need httpx, the ``serve`` extra; they are imported on first access, so this
package imports without it (and they are left out of ``__all__``).
"""

from __future__ import annotations

from typing import Any

from rewardhedge.optimize.order_stats import (
    best_of_n_weights,
    expected_best_of_n,
    expected_best_of_n_ragged,
    kl_best_of_n,
)
from rewardhedge.optimize.policy_filter import BatchFilter, filter_by_uncertainty
from rewardhedge.optimize.rl_rewards import (
    async_reward_function,
    format_completion,
    format_prompt,
    reward_function,
)
from rewardhedge.optimize.scaling import GaoFit, fit_gao, n_at_kl
from rewardhedge.optimize.step_search import (
    BeamConfig,
    BestOfNConfig,
    OutcomeScorer,
    ParticleConfig,
    SearchResult,
    StepProposer,
    StepsAsOutcome,
    StepScorer,
    best_of_n,
    particle_filter,
    rollout,
    step_beam,
)

_REMOTE = ("RemoteRewardError", "RemoteRewardModel")

__all__ = [
    "BatchFilter",
    "BeamConfig",
    "BestOfNConfig",
    "GaoFit",
    "OutcomeScorer",
    "ParticleConfig",
    "SearchResult",
    "StepProposer",
    "StepScorer",
    "StepsAsOutcome",
    "async_reward_function",
    "best_of_n",
    "best_of_n_weights",
    "expected_best_of_n",
    "expected_best_of_n_ragged",
    "filter_by_uncertainty",
    "fit_gao",
    "format_completion",
    "format_prompt",
    "kl_best_of_n",
    "n_at_kl",
    "particle_filter",
    "reward_function",
    "rollout",
    "step_beam",
]


def __getattr__(name: str) -> Any:
    if name in _REMOTE:
        from rewardhedge.optimize import remote

        return getattr(remote, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_REMOTE])
