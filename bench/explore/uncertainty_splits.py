"""Exploration: calibration and uncertainty quality of three estimators over five HH splits.

Which differences in bench/uncertainty_hh.py are noise? One split has 461 test
pairs, where an ECE of ~0.03 is within sampling noise; this repeats the key
estimators on splits 0-4 and prints means and per-split values.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hh_data import load_hh, split
from rewardhedge.config import EnsembleConfig, UncertaintyConfig
from rewardhedge.data.sandbox import SandboxConfig, generate_sandbox
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from uncertainty_hh import CACHE

SPECS = {
    "single": (1, {}),
    "ensemble5": (5, {}),
    "laplace1": (1, {"estimator": "laplace"}),
    "laplace5": (5, {"estimator": "laplace"}),
}


def main() -> None:
    pairs, _ = load_hh()
    ood = generate_sandbox(SandboxConfig()).gold_pairs("test")
    rows: dict[str, list] = {k: [] for k in SPECS}
    for seed in range(5):
        train, test = split(pairs, seed=seed)
        for name, (k, unc) in SPECS.items():
            cfg = replace(EnsembleConfig(), n_members=k, uncertainty=UncertaintyConfig(**unc))
            m = EnsembleRewardModel(cfg, cache_dir=CACHE).fit(train)
            met = m.evaluate(test, reps=200, ood_pairs=ood)
            cal = met["calibration"]
            b = cal.get("before_temperature", cal)
            u = met["uncertainty"]
            row = (
                met["pairwise_accuracy"],
                cal["temperature"],
                b["ece_equal_mass"],
                cal["ece_equal_mass"],
                b.get("log_loss", met["log_loss"]),
                met["log_loss"],
                u["prob_entropy"]["misorder_auroc"],
                u["epistemic_sum"]["misorder_auroc"],
                met["ood"]["response_epistemic_auroc"],
            )
            rows[name].append(row)
            print(seed, name, " ".join(f"{x:.3f}" for x in row), flush=True)
    print("name acc T ece_before ece_after nll_before nll_after auroc_ent auroc_epi ood_epi")
    for name, r in rows.items():
        print(name, " ".join(f"{x:.3f}" for x in np.mean(r, axis=0)))


if __name__ == "__main__":
    main()
