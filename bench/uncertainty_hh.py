"""Which uncertainty estimator to trust: every estimator on real human preferences.

In-distribution: Anthropic HH-RLHF harmless test pairs (../shared/data), the
same 80/20 split (seed 0) as bench/hh_foundation.py. Out-of-distribution:
the sandbox's test pairs (arithmetic, unit conversion, … — nothing like HH).

For each estimator, in one run on this machine: accuracy with 95% CI, ECE
(equal-mass and equal-width, symmetrised) and NLL before and after the
cross-fitted temperature, AUROC of each uncertainty for finding misordered
pairs and its AURC, AUROC for telling OOD pairs/responses from HH ones, and
train and score time relative to a single model (K=1, no calibration)
measured in the same run. Embeddings come from the on-disk cache, so the
times are those of the heads and the estimator, which is where they differ.

Usage: python bench/uncertainty_hh.py [--reps 2000]
Writes bench/results/uncertainty_hh.json and prints README rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from rewardhedge import __version__
from rewardhedge.config import EnsembleConfig, TrainConfig, UncertaintyConfig
from rewardhedge.estimators.ensemble import EnsembleRewardModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hh_data import hh_and_sandbox

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / "bench" / "cache"

ESTIMATORS: dict[str, dict] = {
    "single (K=1, reference)": {"n_members": 1, "uncertainty": {"calibration_folds": 0}},
    "single + temperature": {"n_members": 1, "uncertainty": {}},
    "ensemble K=5": {"n_members": 5, "uncertainty": {}},
    "ensemble K=5 + DEUP": {"n_members": 5, "uncertainty": {"error_predictor": True}},
    "MC dropout T=32": {"n_members": 1, "uncertainty": {"estimator": "mc_dropout"}},
    "Gaussian (PEARL)": {"n_members": 1, "uncertainty": {"estimator": "gaussian"}},
    "Gaussian K=5": {"n_members": 5, "uncertainty": {"estimator": "gaussian"}},
    "Laplace (train prior)": {"n_members": 1, "uncertainty": {"estimator": "laplace"}},
    "Laplace (evidence prior)": {
        "n_members": 1,
        "uncertainty": {"estimator": "laplace", "laplace_prior": "evidence"},
    },
}


def config_for(spec: dict) -> EnsembleConfig:
    base = EnsembleConfig()
    return replace(
        base,
        n_members=spec["n_members"],
        train=TrainConfig(seed=0),
        uncertainty=UncertaintyConfig(**spec["uncertainty"]),
    )


def best_misorder(unc: dict) -> tuple[str, float]:
    name = max(unc, key=lambda k: unc[k]["misorder_auroc"] or 0.0)
    return name, unc[name]["misorder_auroc"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2000)
    args = ap.parse_args()
    torch.manual_seed(0)
    train, test, ood, data = hh_and_sandbox()
    print(f"HH: {len(train)} train / {len(test)} test pairs; OOD sandbox: {len(ood)} pairs")

    # Warm the embedding cache once so no estimator pays for encoding.
    warm = EnsembleRewardModel(config_for(ESTIMATORS["single (K=1, reference)"]), cache_dir=CACHE)
    t0 = time.perf_counter()
    warm.fit(train, progress=True)
    for batch in (test, ood):
        warm.compare(batch, progress=True)
    print(f"cache warm-up {time.perf_counter() - t0:.1f}s")

    rows: dict[str, dict] = {}
    for name, spec in ESTIMATORS.items():
        model = EnsembleRewardModel(config_for(spec), cache_dir=CACHE)
        t0 = time.perf_counter()
        model.fit(train)
        train_s = time.perf_counter() - t0
        prompts = [p.prompt for p in test] * 2
        responses = [p.chosen for p in test] + [p.rejected for p in test]
        model.score(prompts, responses)  # one untimed call (lazy encoder start-up)
        t0 = time.perf_counter()
        for _ in range(5):
            model.score(prompts, responses)
        score_s = (time.perf_counter() - t0) / 5
        metrics = model.evaluate(test, reps=args.reps, ood_pairs=ood)
        cal = metrics["calibration"]
        before = cal.get("before_temperature", {})
        unc = metrics["uncertainty"]
        best_name, best_auc = best_misorder(unc)
        rows[name] = {
            "config": config_for(spec).uncertainty.__dict__ | {"n_members": spec["n_members"]},
            "accuracy": metrics["pairwise_accuracy"],
            "accuracy_ci": [metrics["accuracy_ci_low"], metrics["accuracy_ci_high"]],
            "temperature": cal["temperature"],
            "ece_equal_mass_before": before.get("ece_equal_mass", cal["ece_equal_mass"]),
            "ece_equal_mass_after": cal["ece_equal_mass"],
            "ece_equal_width_before": before.get("ece_equal_width", cal["ece_equal_width"]),
            "ece_equal_width_after": cal["ece_equal_width"],
            "ece_equal_mass_noise_floor": cal["noise_floor"]["ece_equal_mass"],
            "ece_equal_mass_noise_p95": cal["noise_floor"]["p95_equal_mass"],
            "nll_before": before.get("log_loss", metrics["log_loss"]),
            "nll_after": metrics["log_loss"],
            "misorder_auroc": {k: v["misorder_auroc"] for k, v in unc.items()},
            "aurc": {k: v["aurc"] for k, v in unc.items()},
            "best_misorder": [best_name, best_auc],
            "ood_pair_auroc": metrics["ood"]["pair_auroc"],
            "ood_response_epistemic_auroc": metrics["ood"]["response_epistemic_auroc"],
            "train_s": train_s,
            "score_s": score_s,
        }
        r = rows[name]
        print(
            f"{name:28s} acc {r['accuracy']:.3f} T={r['temperature']:.2f} "
            f"ECE {r['ece_equal_mass_before']:.3f}->{r['ece_equal_mass_after']:.3f} "
            f"NLL {r['nll_before']:.3f}->{r['nll_after']:.3f} "
            f"AUROC ent {unc['prob_entropy']['misorder_auroc']:.3f} "
            f"epi {unc['epistemic_sum']['misorder_auroc'] or float('nan'):.3f} "
            f"OOD epi {r['ood_response_epistemic_auroc']:.3f} "
            f"train {train_s:.2f}s score {score_s * 1000:.1f}ms",
            flush=True,
        )
    ref = rows["single (K=1, reference)"]
    for r in rows.values():
        r["train_ratio"] = r["train_s"] / ref["train_s"]
        r["score_ratio"] = r["score_s"] / ref["score_s"]
    out = {
        "benchmark": "uncertainty_hh",
        "library_version": __version__,
        "machine": f"{platform.machine()} {torch.get_num_threads()} torch threads, "
        f"{platform.processor() or 'cpu'}",
        "data": data,
        "estimators": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "uncertainty_hh.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    print(
        "| estimator | acc [95% CI] | T | ECE mass before→after | NLL before→after | "
        "misorder AUROC (entropy / epistemic) | OOD AUROC (response epistemic) | "
        "train × | score × |"
    )
    for name, r in rows.items():
        lo, hi = r["accuracy_ci"]
        epi = r["misorder_auroc"]["epistemic_sum"]
        print(
            f"| {name} | {r['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] | {r['temperature']:.2f} | "
            f"{r['ece_equal_mass_before']:.3f}→{r['ece_equal_mass_after']:.3f} | "
            f"{r['nll_before']:.3f}→{r['nll_after']:.3f} | "
            f"{r['misorder_auroc']['prob_entropy']:.3f} / "
            f"{'—' if epi is None else f'{epi:.3f}'} | "
            f"{r['ood_response_epistemic_auroc']:.3f} | {r['train_ratio']:.1f} | "
            f"{r['score_ratio']:.1f} |"
        )


if __name__ == "__main__":
    main()
