"""The overoptimisation lab: gold → noisy labels → proxies → best-of-n, gold vs KL.

* ``data.py`` — the sandbox or a user's pools as one :class:`LabData` (split, labels);
* ``options.py`` — the frozen ensembles' diversity options and the features they read;
* ``proxies.py`` — who trains the proxies (:class:`ProxyFactory`: frozen or fine-tuned);
* ``gold_model.py`` — gold from a reward model (a folder or a server), cached;
* ``overopt.py`` — :func:`run_lab`: curves, Gao fits, paired differences, length controls.

It comes after the model classes (``estimators/``), which it trains and scores.
"""

from __future__ import annotations

from rewardhedge.lab.overopt import LabConfig, run_lab

__all__ = ["LabConfig", "run_lab"]
