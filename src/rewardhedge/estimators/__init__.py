"""What a user holds: reward models that fit, score, compare, evaluate, save and load.

* :class:`RewardModelBase` — the API every model family shares (``base.py``);
* :class:`EnsembleRewardModel` — heads on a frozen encoder (``ensemble.py``);
* :class:`FinetunedRewardModel` — a fine-tuned transformer (``finetuned.py``);
* :class:`GeneralPreferenceModel` — skew-symmetric pair scores on a frozen encoder,
  no scalar reward (``general_preference.py``);
* :func:`load_reward_model` — opens any kind of folder (``loading.py``);
* :class:`ProcessRewardModel`, :class:`ImplicitProcessRewardModel` — step rewards from
  a step-level or an outcome model, with credit over a solution's steps (``process.py``);
* :func:`evaluate_pairs`, :func:`evaluate_one_to_many`, :func:`evaluate_pools` —
  the full evaluation of a model (``evaluation.py``).

This stage composes the ones before it (data → encoders → models → train →
uncertainty → evaluate → optimize); names load on first use, so importing the
package imports neither torch nor the training code.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RewardModelBase": "base",
    "EnsembleRewardModel": "ensemble",
    "FinetunedRewardModel": "finetuned",
    "GeneralPreferenceModel": "general_preference",
    "load_reward_model": "loading",
    "evaluate_pairs": "evaluation",
    "evaluate_one_to_many": "evaluation",
    "evaluate_pools": "evaluation",
    "check_reward_model": "checks",
    "ProcessRewardModel": "process",
    "ImplicitProcessRewardModel": "process",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
