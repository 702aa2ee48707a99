"""A general preference model (GPM) against Bradley–Terry (BT) heads, on one frozen encoder
(issue 21 item 5).

Two data sets:

1. **cyclic**: ``rock_paper_scissors_pairs`` (three responses per prompt, paper ≻ rock ≻
   scissors ≻ paper): any scalar reward gets at most 2 of a prompt's 3 comparisons right,
   so BT is capped at accuracy 2/3; a GPM can reach 1.
2. **sandbox**: the built-in sandbox's transitive pairs (training labels with BT noise and
   25% flips; held-out pairs ordered by gold, exact ties left out), where BT is the right
   model: the GPM should match it.

Settings, fixed before any result was seen:

- encoder: the library default (MiniLM, ``dual`` pooling), with the embedding cache;
- GPM: ``GPMConfig()`` defaults (K = 5, dim 8, linear head, lr 1e-2, l2 0.1, patience 50,
  5 cross-fitting folds for the temperature); BT: ``EnsembleConfig()`` defaults (K = 5
  linear heads, 5 folds);
- cyclic: 1,000 training prompts (3,000 pairs, seed 0) and 500 held-out prompts (1,500
  pairs, seed 1); sandbox: ``SandboxConfig()`` (3,000 training comparisons, 1,000 test);
- model seeds 0, 1, 2 (on the sandbox also the label seed);
- accuracy (ties half) of the seed-averaged per-pair correctness, with a 95% percentile
  bootstrap CI over held-out pairs (2,000 resamples); GPM − BT by a paired bootstrap on the
  same pairs; fit time = wall time of ``fit`` (calibration included, features already
  cached), median over seeds;
- targets: cyclic GPM ≥ 0.95 and BT ≤ 2/3; sandbox |GPM − BT| ≤ 0.02.

    python bench/general_preference.py [--out bench/results/general_preference.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardhedge.config import EncoderConfig, EnsembleConfig, TrainConfig, to_dict
from rewardhedge.data.cyclic import rock_paper_scissors_pairs
from rewardhedge.data.sandbox import SandboxConfig, generate_sandbox
from rewardhedge.encoders import build_cached_encoder
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.estimators.general_preference import GeneralPreferenceModel
from rewardhedge.evaluate.paired import paired_bootstrap_test
from rewardhedge.evaluate.pairwise import bootstrap_ci, pairwise_correct
from rewardhedge.models.general_preference import GPMConfig
from rewardhedge.types import PreferencePair

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import cell, machine, pair_texts

SEEDS = (0, 1, 2)
REPS = 2000


def _models(seed: int, encoder: Any) -> dict[str, Any]:
    bt = EnsembleConfig(train=TrainConfig(seed=seed))
    return {
        "gpm": GeneralPreferenceModel(GPMConfig(seed=seed), encoder=encoder),
        "bt": EnsembleRewardModel(bt, encoder=encoder),
    }


def _run(
    name: str,
    train_for: Any,
    test: list[PreferencePair],
    encoder: Any,
) -> dict[str, Any]:
    """Fit both families for every seed; the seed-averaged accuracies and their CIs."""
    correct: dict[str, list[np.ndarray]] = {"gpm": [], "bt": []}
    fit_s: dict[str, list[float]] = {"gpm": [], "bt": []}
    per_seed: dict[str, list[dict[str, Any]]] = {"gpm": [], "bt": []}
    for seed in SEEDS:
        train = train_for(seed)
        for family, model in _models(seed, encoder).items():
            t0 = time.perf_counter()
            model.fit(train)
            fit_s[family].append(time.perf_counter() - t0)
            est = model.compare(test)
            c = pairwise_correct(est.chosen.mean, est.rejected.mean)
            correct[family].append(c)
            low, high = bootstrap_ci(c, reps=REPS, seed=seed)
            per_seed[family].append(
                {
                    "seed": seed,
                    "accuracy": float(c.mean()),
                    "ci_low": low,
                    "ci_high": high,
                    "temperature": model.temperature,
                    "fit_s": fit_s[family][-1],
                    "best_epoch": list(model.best_epoch_),
                }
            )
            print(f"{name} seed {seed} {family}: accuracy {c.mean():.4f} "
                  f"[{low:.4f}, {high:.4f}], fit {fit_s[family][-1]:.1f}s, "
                  f"T {model.temperature:.3f}", flush=True)  # fmt: skip
    out: dict[str, Any] = {"n_train_pairs": len(train_for(0)), "n_test_pairs": len(test)}
    mean_correct = {f: np.mean(np.stack(v), axis=0) for f, v in correct.items()}
    for family, c in mean_correct.items():
        low, high = bootstrap_ci(c, reps=REPS, seed=0)
        out[family] = {
            "accuracy": float(c.mean()),
            "ci_low": low,
            "ci_high": high,
            "fit_s_median": statistics.median(fit_s[family]),
            "seeds": per_seed[family],
        }
    test_ = paired_bootstrap_test(mean_correct["gpm"], mean_correct["bt"], reps=REPS, seed=0)
    out["gpm_minus_bt"] = {
        "diff": test_.diff,
        "ci_low": test_.ci_low,
        "ci_high": test_.ci_high,
        "p_value": test_.p_value,
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("bench/results/general_preference.json"))
    args = ap.parse_args()
    t_start = time.perf_counter()
    encoder = build_cached_encoder(EncoderConfig())

    cyclic_train = rock_paper_scissors_pairs(1000, seed=0)
    cyclic_test = rock_paper_scissors_pairs(500, seed=1)
    sandbox = generate_sandbox(SandboxConfig())
    sandbox_test = sandbox.gold_pairs("test")

    t0 = time.perf_counter()
    for pairs in (cyclic_train, cyclic_test, sandbox.labelled_pairs("train", 0), sandbox_test):
        encoder.encode(*pair_texts(pairs), progress=False)
    encode_s = time.perf_counter() - t0
    print(f"encoded (or read from the cache) in {encode_s:.1f}s", flush=True)

    cyclic = _run("cyclic", lambda seed: cyclic_train, cyclic_test, encoder)
    transitive = _run(
        "sandbox", lambda seed: sandbox.labelled_pairs("train", seed), sandbox_test, encoder
    )
    result = {
        "benchmark": "general_preference",
        "settings": {
            "encoder": to_dict(EncoderConfig()),
            "gpm": GPMConfig().to_dict(),
            "bt": EnsembleConfig().to_dict(),
            "seeds": list(SEEDS),
            "reps": REPS,
        },
        "cyclic": cyclic,
        "sandbox": transitive,
        "encode_s": encode_s,
        "total_s": time.perf_counter() - t_start,
        "machine": machine(),
    }
    result["targets"] = {
        "cyclic_gpm_ge_0.95": cyclic["gpm"]["accuracy"] >= 0.95,
        "cyclic_bt_le_2/3": cyclic["bt"]["accuracy"] <= 2 / 3,
        "sandbox_abs_diff_le_0.02": abs(transitive["gpm_minus_bt"]["diff"]) <= 0.02,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["targets"]), flush=True)

    def acc(block: dict[str, Any]) -> str:
        return cell(block, key="accuracy")

    d = transitive["gpm_minus_bt"]
    print(
        "| `general_preference` | rock–paper–scissors cycles (1,000 / 500 prompts, 3 pairs "
        "each) and the sandbox (3,000 labelled / "
        f"{transitive['n_test_pairs']} gold-decided test pairs), MiniLM, K=5, 3 seeds, "
        f"2-core CPU | cyclic: GPM {acc(cyclic['gpm'])} vs BT {acc(cyclic['bt'])} "
        f"(fit {cyclic['gpm']['fit_s_median']:.0f} s vs {cyclic['bt']['fit_s_median']:.0f} s); "
        f"sandbox: GPM {acc(transitive['gpm'])} vs BT {acc(transitive['bt'])}, "
        f"GPM − BT {cell(d, '+.3f', key='diff')} | "
        "cyclic GPM ≥ 0.95 and BT ≤ 2/3; sandbox |GPM − BT| ≤ 0.02 |"
    )


if __name__ == "__main__":
    main()
