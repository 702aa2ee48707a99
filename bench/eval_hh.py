"""The evaluation suite on real human preferences, and what it costs beyond scoring.

Data: Anthropic HH-RLHF harmless test pairs (../shared/data), the same 80/20
split (seed 0) as bench/hh_foundation.py; models are trained on the 80% (from
the shared embedding cache, not timed) and evaluated on the held-out 20%:

- the default model (K=5 linear heads on MiniLM): accuracy with its 95% CI,
  the length-only baselines, the length–reward Spearman correlation, the
  batch-size invariance control, the members' mean / IQM with stratified
  bootstrap CIs;
- the STARC distance between a single model (K=1, trained alone) and the
  ensemble mean, with a prompt-bootstrap CI, and the paired bootstrap test of
  their accuracy difference; each member's STARC distance to the mean;
- wall time, each with a cold embedding cache (a fresh temporary folder), in
  one process, one after the other: scoring the held-out pairs alone
  (``compare``) before and after, the default ``eval`` (no options) and the
  full ``eval`` (``--against`` the single model and ``--perturb all``); every
  model is warmed up first (encoder loaded) on 8 training pairs; the ratios
  are to the mean of the two scoring-alone times.

Usage: python bench/eval_hh.py [--reps 2000]
Writes bench/results/eval_hh.json and prints the README row.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from rewardhedge import __version__
from rewardhedge.config import EnsembleConfig, EvalConfig
from rewardhedge.data.perturb import PERTURBATIONS
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.estimators.evaluation import evaluate_pairs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hh_data import DATA, load_hh, split

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / "bench" / "cache"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()

    pairs, report = load_hh()
    train, test = split(pairs)
    print(f"HH: {len(pairs)} clean pairs ({report.n_rejected} skipped); test {len(test)}")

    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for name, k in (("ensemble", 5), ("single", 1)):
            model = EnsembleRewardModel(EnsembleConfig(n_members=k), cache_dir=CACHE).fit(train)
            folders[name] = model.save(Path(tmp) / name)

        warm = train[:8]

        def cold(name: str, sub: str) -> EnsembleRewardModel:
            """The saved model with an empty cache of its own: every test text is encoded
            again. Warmed up (encoder loaded, torch initialised) on 8 training pairs."""
            model = EnsembleRewardModel.load(folders[name], cache_dir=Path(tmp) / "cache" / sub)
            model.compare(warm)
            return model

        def score_alone(sub: str) -> float:
            model = cold("ensemble", sub)
            t0 = time.perf_counter()
            model.compare(test)
            return time.perf_counter() - t0

        t_score_before = score_alone("score-before")
        print(f"scoring alone (cold cache): {t_score_before:.1f}s for {2 * len(test)} texts")

        cfg = EvalConfig(reps=args.reps)
        t0 = time.perf_counter()
        default = evaluate_pairs(cold("ensemble", "default"), test, config=cfg)
        t_default = time.perf_counter() - t0
        print(f"default eval (cold cache): {t_default:.1f}s")

        full_cfg = EvalConfig(reps=args.reps, perturbations=PERTURBATIONS)
        t0 = time.perf_counter()
        full = evaluate_pairs(
            cold("ensemble", "full"),
            test,
            config=full_cfg,
            other=("single K=1", cold("single", "full")),
        )
        t_full = time.perf_counter() - t0
        print(f"full eval (cold cache, --against, --perturb all): {t_full:.1f}s")
        t_score_after = score_alone("score-after")
        t_score = (t_score_before + t_score_after) / 2
        print(f"scoring alone again: {t_score_after:.1f}s; mean {t_score:.1f}s")

    cmp = full["comparison"]
    out = {
        "benchmark": "eval_hh",
        "data": str(DATA.relative_to(ROOT.parent)),
        "n_pairs_clean": len(pairs),
        "n_skipped": report.n_rejected,
        "n_test": len(test),
        "reps": args.reps,
        "machine": {
            "platform": platform.platform(),
            "cpu_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "rewardhedge": __version__,
        },
        "accuracy": {
            "value": default["pairwise_accuracy"],
            "ci_low": default["accuracy_ci_low"],
            "ci_high": default["accuracy_ci_high"],
        },
        "length_baseline": default["length_baseline"],
        "length_reward_corr": default["length_reward_corr"],
        "batch_invariance": default["controls"]["batch_invariance"],
        "members": default["members"],
        "starc_members_to_mean": default["starc"],
        "single_vs_ensemble": {
            "starc_distance": cmp["starc_distance"],
            "starc_ci": [cmp["starc_ci_low"], cmp["starc_ci_high"]],
            "accuracy_ensemble": cmp["accuracy"],
            "accuracy_single": cmp["other_accuracy"],
            "diff": cmp["diff"],
            "diff_ci": [cmp["ci_low"], cmp["ci_high"]],
            "p_value": cmp["p_value"],
        },
        "perturbation": {
            k: v["consistency"] | {"accuracy_delta": v["accuracy_delta"]}
            for k, v in full["perturbation"]["kinds"].items()
        },
        "seconds": {
            "scoring_alone_before": t_score_before,
            "scoring_alone_after": t_score_after,
            "scoring_alone": t_score,
            "eval_default": t_default,
            "eval_full": t_full,
        },
        "ratio_to_scoring": {"eval_default": t_default / t_score, "eval_full": t_full / t_score},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "eval_hh.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    for name, result in (("default", default), ("full", full)):
        (RESULTS / f"eval_hh_{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")

    acc, base, s = out["accuracy"], out["length_baseline"], out["single_vs_ensemble"]
    bi = out["batch_invariance"]
    print(
        f"| `eval_hh` | HH-RLHF harmless test, held-out 20% ({len(test)} pairs) | "
        f"accuracy {acc['value']:.3f} [{acc['ci_low']:.3f}, {acc['ci_high']:.3f}]; "
        f"length baselines longer {base['longer']['accuracy']:.3f} / shorter "
        f"{base['shorter']['accuracy']:.3f}; length–reward Spearman "
        f"{out['length_reward_corr']:.2f}; STARC single K=1 vs ensemble mean "
        f"{s['starc_distance']:.3f} [{s['starc_ci'][0]:.3f}, {s['starc_ci'][1]:.3f}]; "
        f"batch 1 vs 64 max |Δ| {bi['max_abs_diff']:.1e}, {bi['n_order_flips']} flips; "
        f"eval / scoring alone = {out['ratio_to_scoring']['eval_default']:.2f} (default), "
        f"{out['ratio_to_scoring']['eval_full']:.2f} (--against, --perturb all) | |"
    )


if __name__ == "__main__":
    main()
