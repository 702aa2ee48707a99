"""Old module paths that still import: ``rewardhedge.reward_model`` and the rest moved
into ``estimators/`` and ``lab/``; code that imports the old path gets the new module's
names (and a DeprecationWarning) instead of an ImportError."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any

MOVED = {
    "rewardhedge.reward_api": "rewardhedge.estimators.base",
    "rewardhedge.reward_model": "rewardhedge.estimators.ensemble",
    "rewardhedge.finetuned_model": "rewardhedge.estimators.finetuned",
    "rewardhedge.loading": "rewardhedge.estimators.loading",
    "rewardhedge.eval_suite": "rewardhedge.estimators.evaluation",
    "rewardhedge.optimize.overopt": "rewardhedge.lab.overopt",
    "rewardhedge.optimize.lab_data": "rewardhedge.lab.data",
    "rewardhedge.optimize.lab_options": "rewardhedge.lab.options",
    "rewardhedge.optimize.gold_model": "rewardhedge.lab.gold_model",
}
"""Old module path → where it lives now."""


class _Forward(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        target = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {target}; import it from there.",
            DeprecationWarning,
            stacklevel=2,
        )
        new = importlib.import_module(target)
        module = types.ModuleType(spec.name, new.__doc__)

        def __getattr__(name: str) -> Any:  # every name the new module has
            return getattr(new, name)

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        module.__all__ = list(getattr(new, "__all__", [n for n in vars(new) if n[0] != "_"]))
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the names come from the new module."""


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if fullname in MOVED:
            return importlib.machinery.ModuleSpec(fullname, _Forward())
        return None


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once); it answers only the old paths."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
