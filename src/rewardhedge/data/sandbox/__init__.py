"""The embedded default task: generated prompts, responses with known quality, a gold reward.

See :mod:`rewardhedge.data.sandbox.gold` for the formula and
:mod:`rewardhedge.data.sandbox.responses` for the planted spurious feature;
:mod:`rewardhedge.data.sandbox.steps` holds the multi-step tasks with checkable
steps (the process-reward sandbox).
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
from rewardhedge.data.sandbox.steps import (
    ERROR_KINDS,
    STEP_FAMILIES,
    STEP_SPLITS,
    Op,
    Step,
    StepPolicy,
    StepSandbox,
    StepSandboxConfig,
    StepTask,
    generate_step_sandbox,
    is_complete,
    make_step_task,
    make_step_tasks,
    pad_solution,
    pad_step,
    solution_correct,
    solution_text,
    to_step_solution,
)
from rewardhedge.data.sandbox.tasks import FAMILIES, Task, make_task, make_tasks

__all__ = [
    "ERROR_KINDS",
    "FAMILIES",
    "STEP_FAMILIES",
    "STEP_SPLITS",
    "Comparison",
    "GoldWeights",
    "Op",
    "Response",
    "ResponseProps",
    "SamplerConfig",
    "Sandbox",
    "SandboxConfig",
    "SandboxPool",
    "Step",
    "StepPolicy",
    "StepSandbox",
    "StepSandboxConfig",
    "StepTask",
    "Task",
    "generate_sandbox",
    "generate_step_sandbox",
    "gold_reward",
    "is_complete",
    "label_draws",
    "make_step_task",
    "make_step_tasks",
    "make_task",
    "make_tasks",
    "pad_solution",
    "pad_step",
    "solution_correct",
    "solution_text",
    "to_step_solution",
]
