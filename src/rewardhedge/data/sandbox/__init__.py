"""The embedded default task: generated prompts, responses with known quality, a gold reward.

See :mod:`rewardhedge.data.sandbox.gold` for the formula and
:mod:`rewardhedge.data.sandbox.responses` for the planted spurious feature.
"""

from rewardhedge.data.sandbox.generate import (
    Comparison,
    Response,
    Sandbox,
    SandboxConfig,
    SandboxPool,
    generate_sandbox,
    label_draws,
)
from rewardhedge.data.sandbox.gold import GoldWeights, gold_reward
from rewardhedge.data.sandbox.responses import ResponseProps, SamplerConfig
from rewardhedge.data.sandbox.tasks import FAMILIES, Task, make_task, make_tasks

__all__ = [
    "FAMILIES",
    "Comparison",
    "GoldWeights",
    "Response",
    "ResponseProps",
    "SamplerConfig",
    "Sandbox",
    "SandboxConfig",
    "SandboxPool",
    "Task",
    "generate_sandbox",
    "gold_reward",
    "label_draws",
    "make_task",
    "make_tasks",
]
