"""The overoptimisation lab: gold → noisy labels → proxies → best-of-n, gold vs KL.

* ``data.py`` — the sandbox or a user's pools as one :class:`LabData` (split, labels);
* ``options.py`` — the frozen ensembles' diversity options and the features they read;
* ``proxies.py`` — who trains the proxies (:class:`ProxyFactory`: frozen or fine-tuned);
* ``gold_model.py`` — gold from a reward model (a folder or a server), cached;
* ``overopt.py`` — :func:`run_lab`: curves, Gao fits, paired differences, length controls.

It comes after the model classes (``estimators/``), which it trains and scores.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LabConfig", "run_lab"]


def __getattr__(name: str) -> Any:  # lazy: lab.data and lab.options need no torch
    if name in __all__:
        from rewardhedge.lab import overopt

        return getattr(overopt, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
