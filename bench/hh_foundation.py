"""Foundation benchmark on real human preferences (Anthropic HH-RLHF harmless test).

Measures, in one run on this machine:
- test accuracy with 95% CI for K=1 / K=5 and linear / MLP heads, beside the
  length-only baseline (80/20 split, fixed seed; rows without a clean
  dialogue split are skipped and counted);
- wall time of encode / train / score;
- throughput of the whole ``score`` path divided by the raw encoder forward
  throughput on the same texts (target ≥ 0.9 for K=5);
- re-scoring from the embedding cache versus encoding (target ≥ 50×);
- K=5 batched heads versus five K=1 fits in a loop.

Usage: python bench/hh_foundation.py [--pooling response_mean] [--max-length 256]
Writes bench/results/hh_foundation[-<pooling>].json and prints a README row.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from rewardhedge import __version__
from rewardhedge.config import EncoderConfig, EnsembleConfig, HeadConfig, TrainConfig
from rewardhedge.encoders import CachedEncoder, TransformerEncoder
from rewardhedge.estimators.ensemble import EnsembleRewardModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hh_data import load_hh, split

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pooling", default="dual")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--reps", type=int, default=2000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        pairs, report = load_hh()
        train, test = split(pairs)
        print(
            f"{report.n_kept} clean pairs ({report.n_rejected} skipped): {len(train)} train / {len(test)} test"
        )

        enc_cfg = EncoderConfig(pooling=args.pooling, max_length=args.max_length)
        raw = TransformerEncoder(enc_cfg)
        cached = CachedEncoder(raw, Path(tmp) / "cache")

        # 1. encode everything once (cold cache): this is the encode wall time
        prompts = [p.prompt for p in pairs] * 2
        responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
        _, t_encode = timed(lambda: cached.encode(prompts, responses, progress=True))
        print(
            f"encode: {len(prompts)} texts in {t_encode:.1f}s ({len(prompts) / t_encode:.1f} texts/s)"
        )

        # 2. train the four configurations from the cache
        configs = {}
        results = {}
        for kind in ("linear", "mlp"):
            for k in (1, 5):
                cfg = EnsembleConfig(
                    n_members=k,
                    head=HeadConfig(kind=kind),
                    encoder=enc_cfg,
                    train=TrainConfig(seed=0),
                )
                model = EnsembleRewardModel(cfg, encoder=cached)
                _, t_fit = timed(lambda model=model: model.fit(train))
                metrics = model.evaluate(test, reps=args.reps)
                name = f"K{k}-{kind}"
                configs[name] = model
                results[name] = {
                    "accuracy": metrics["pairwise_accuracy"],
                    "ci": [metrics["accuracy_ci_low"], metrics["accuracy_ci_high"]],
                    "log_loss": metrics["log_loss"],
                    "member_accuracy_mean": metrics["member_accuracy_mean"],
                    "train_seconds_from_cache": t_fit,
                    "epochs_run": len(model.history_),
                }
                print(
                    f"{name}: acc {metrics['pairwise_accuracy']:.3f} "
                    f"[{metrics['accuracy_ci_low']:.3f}, {metrics['accuracy_ci_high']:.3f}] "
                    f"log loss {metrics['log_loss']:.3f}, fit {t_fit:.1f}s"
                )
        length = metrics["length_baseline"]

        # 3. batched K=5 vs five K=1 fits in a loop (features from cache)
        base = EnsembleConfig(n_members=1, encoder=enc_cfg)
        _, t_loop = timed(
            lambda: [
                EnsembleRewardModel(
                    replace(base, train=TrainConfig(seed=s, bootstrap=False)), encoder=cached
                ).fit(train)
                for s in range(5)
            ]
        )
        t_batched = results["K5-linear"]["train_seconds_from_cache"]

        # 4. throughput: raw encoder forward vs the whole score path (no cache), same texts
        tp = [p.prompt for p in test] * 2
        tr = [p.chosen for p in test] + [p.rejected for p in test]
        default = configs["K5-linear"]
        default.save(Path(tmp) / "rm")
        scorer = EnsembleRewardModel.load(Path(tmp) / "rm", encoder=raw)
        views = raw.views(tp, tr)  # pre-tokenised: the raw forward excludes tokenisation
        raw_times, score_times = [], []
        for _ in range(3):  # alternate to share the machine's noise
            raw_times.append(
                timed(lambda: [raw.forward_ids(ids, pooling=pool) for ids, pool in views])[1]
            )
            score_times.append(timed(lambda: scorer.score(tp, tr))[1])
        raw_tput = len(tp) / min(raw_times)
        score_tput = len(tp) / min(score_times)

        # 5. re-scoring from the warm cache
        warm = EnsembleRewardModel.load(Path(tmp) / "rm", encoder=cached)
        t_cached = min(timed(lambda: warm.score(tp, tr))[1] for _ in range(3))
        cached_tput = len(tp) / t_cached

    out = {
        "benchmark": "hh_foundation",
        "data": "../shared/data/hh_harmless_test.jsonl",
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads (shared 2-core CPU box)",
        "library_version": __version__,
        "pooling": args.pooling,
        "max_length": args.max_length,
        "n_clean_pairs": report.n_kept,
        "n_skipped": report.n_rejected,
        "n_train": len(train),
        "n_test": len(test),
        "models": results,
        "length_baseline_longer": length["longer"],
        "length_baseline_shorter": length["shorter"],
        "encode_seconds": t_encode,
        "encode_texts_per_s": len(prompts) / t_encode,
        "raw_forward_texts_per_s": raw_tput,
        "score_path_texts_per_s_K5": score_tput,
        "score_over_raw_ratio_K5": score_tput / raw_tput,
        "cached_rescore_texts_per_s": cached_tput,
        "cached_rescore_speedup_vs_encode": cached_tput / score_tput,
        "train_seconds_K5_batched": t_batched,
        "train_seconds_5xK1_loop": t_loop,
        "batched_vs_loop_ratio": t_batched / t_loop,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = (
        ""
        if args.pooling == "dual" and args.max_length == 256
        else f"-{args.pooling}-{args.max_length}"
    )
    path = RESULTS / f"hh_foundation{suffix}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    d = results["K5-linear"]
    print(json.dumps(out, indent=2))
    print(
        f"| hh_foundation | HH harmless test 20% | K=5 linear acc {d['accuracy']:.3f} "
        f"[{d['ci'][0]:.3f}, {d['ci'][1]:.3f}]; length baseline {length['longer']['accuracy']:.3f}; "
        f"score/raw {out['score_over_raw_ratio_K5']:.2f}; cache {out['cached_rescore_speedup_vs_encode']:.0f}× |"
    )


if __name__ == "__main__":
    main()
