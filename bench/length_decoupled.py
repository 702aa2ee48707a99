"""A length-decoupled reward head (ODIN-style ``HeadConfig(length_head=True)``) against the
default head on the built-in sandbox (issue 21 item 3).

In the sandbox's training (and held-out) comparisons, responses that are right are padded
more (``data/sandbox/responses.py``, ``train`` mode), so a default model learns to like
padding; padding up to five sentences costs no gold, past that 0.75 gold a sentence
(``data/sandbox/gold.py``). The length head is a second, linear head on length features
(log characters, log words) trained jointly with the quality head, with a penalty on the
squared batch correlation between the quality reward and log length; scoring uses the
quality head alone.

Settings, fixed before any result was seen:

- data: ``SandboxConfig()`` defaults (3,000 training comparisons, BT labels at
  temperature 1 then 25% flips; label seed = model seed); held-out pairs: the 1,000 test
  comparisons ordered by gold, exact ties left out (``Sandbox.gold_pairs("test")``);
- held-out responses: the distinct (prompt, response) items of the 1,000 test comparisons;
- models: ``EnsembleConfig()`` (K = 5 linear heads on frozen MiniLM, dual pooling,
  default training and calibration) against ``EnsembleConfig(head=HeadConfig(
  length_head=True))`` (everything else default, ``length_decorrelation`` 1.0); seeds 0, 1,
  2; the MiniLM embedding cache built once (the default cache folder) and passed to
  every model;
- accuracy (ties half) on the gold-ordered test pairs, of the seed-averaged per-pair
  correctness, 95% percentile bootstrap CI over pairs (2,000 resamples); length-head −
  default by a paired bootstrap on the same pairs;
- length-matched accuracy: the same on the test pairs whose two responses are within ±10%
  of each other's character length (``length_matched_mask``);
- length–reward Spearman: between character length and the mean reward over the held-out
  responses, per seed, averaged over seeds, with a bootstrap CI over responses; for
  reference the same correlation for the gold itself (positive here by construction:
  the held-out comparisons are drawn like the training ones);
- spurious padding preference: each held-out response with at most 3 padding sentences
  gets a padded copy with 2 more of the sandbox's own padding sentences
  (``responses.PADDING``, ones the response lacks, drawn with seed 0), put where
  ``render`` puts padding (the end of the first line, before any format block or
  closer), so the padded copy stays within the free range and its gold is unchanged.
  Reported: the share of these items whose mean reward rises when padded, and the mean
  reward change in units of the reward's standard deviation over the held-out responses
  (per seed, then averaged over seeds per item), with bootstrap CIs over items and paired
  bootstrap differences;
- best-of-n at n = 32 on the sandbox's 100 test pools (``from_sandbox``; a tenth of the
  candidates "polished", padded past anything in training): per pool, the candidate with
  the highest mean reward among its first 32; its gold, averaged over seeds per pool,
  then the mean over pools with a bootstrap CI over pools; the share of picks that are
  polished; oracle (best gold) and random-pick (mean gold) baselines;
- targets: the length head's share of items preferring the padded copy at most the
  default's minus 0.20, with the paired CI of the difference below 0; and its
  length-matched accuracy at least the default's minus 0.02.

    python bench/length_decoupled.py [--out bench/results/length_decoupled.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rewardhedge.config import EncoderConfig, EnsembleConfig, HeadConfig, TrainConfig, to_dict
from rewardhedge.data.sandbox import SandboxConfig, generate_sandbox
from rewardhedge.data.sandbox.responses import PADDING
from rewardhedge.encoders import build_cached_encoder
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.evaluate.paired import paired_bootstrap_test
from rewardhedge.evaluate.pairwise import length_matched_mask, pairwise_correct
from rewardhedge.lab.data import from_sandbox, polished_mask

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (
    cell,
    held_out_items,
    item_summary,
    machine,
    mean_ci,
    pair_texts,
    spearman_rows,
)

SEEDS = (0, 1, 2)
REPS = 2000
N_BEST = 32
PAD_ADD = 2
PAD_MAX_BEFORE = 3
PER_ITEM = ("correct", "rises", "delta_sd", "pick_gold", "pick_polished")
"""Per-item values averaged over seeds (per test pair, padded item or pool)."""
MODELS: dict[str, Callable[[int], EnsembleConfig]] = {
    "default": lambda seed: EnsembleConfig(train=TrainConfig(seed=seed)),
    "length_head": lambda seed: EnsembleConfig(
        head=HeadConfig(length_head=True), train=TrainConfig(seed=seed)
    ),
}


def pad(text: str, verbosity: int, rng: np.random.Generator) -> str:
    """``text`` with ``PAD_ADD`` more padding sentences where ``render`` puts them: at the
    end of the first line (the format block and the closer follow on later lines)."""
    first, sep, rest = text.partition("\n")
    present = [p for p in PADDING if p in first]
    if len(present) != verbosity or (verbosity and not first.endswith(tuple(present))):
        raise RuntimeError(f"padding not where render puts it: {text!r}")
    free = [p for p in PADDING if p not in present]
    picks = rng.choice(len(free), size=PAD_ADD, replace=False)
    return " ".join([first, *(free[int(i)] for i in picks)]) + sep + rest


def spearman_summary(x: np.ndarray, ys: list[np.ndarray]) -> dict[str, Any]:
    """Spearman(x, y) per seed, its mean over seeds (as ``spearman``), and a bootstrap CI."""
    return item_summary(spearman_rows, ys, x, reps=REPS, key="spearman")


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    t = paired_bootstrap_test(a, b, reps=REPS, seed=0)
    return {"diff": t.diff, "ci_low": t.ci_low, "ci_high": t.ci_high, "p_value": t.p_value}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/results/length_decoupled.json"))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="(smoke runs only)")
    args = ap.parse_args()
    t_start = time.perf_counter()
    encoder = build_cached_encoder(EncoderConfig())
    sandbox = generate_sandbox(SandboxConfig())
    lab = from_sandbox(sandbox)
    test = sandbox.gold_pairs("test")
    items = held_out_items(sandbox)
    items["verbosity"] = np.array([r.props.verbosity for r in items["responses"]])
    items["chars"] = np.array([len(t) for t in items["texts"]], dtype=np.float64)
    rng = np.random.default_rng(0)
    to_pad = np.flatnonzero(items["verbosity"] <= PAD_MAX_BEFORE)
    padded = [pad(items["texts"][i], int(items["verbosity"][i]), rng) for i in to_pad]
    pad_prompts = [items["prompts"][i] for i in to_pad]
    pool_prompts = [p.prompt for p in lab.pools for _ in range(p.size)]
    pool_texts = [c for p in lab.pools for c in p.candidates]
    n_pool = max(p.size for p in lab.pools)
    if any(p.size != n_pool for p in lab.pools) or n_pool < N_BEST:
        raise RuntimeError("expected equal pools of at least N_BEST candidates")
    pool_gold = np.stack([p.gold for p in lab.pools])[:, :N_BEST]
    polished = polished_mask(sandbox)[:, :N_BEST]
    lm_mask = length_matched_mask([p.chosen for p in test], [p.rejected for p in test])

    t0 = time.perf_counter()
    for seed in args.seeds:
        pairs = lab.labelled_pairs("train", seed)
        encoder.encode(*pair_texts(pairs))
    encoder.encode(*pair_texts(test))
    encoder.encode(items["prompts"], items["texts"])
    encoder.encode(pad_prompts, padded)
    encoder.encode(pool_prompts, pool_texts)
    encode_s = time.perf_counter() - t0
    print(f"encoded (or read from the cache) in {encode_s:.1f}s; {len(test)} test pairs "
          f"({int(lm_mask.sum())} length-matched), {len(items['texts'])} held-out responses, "
          f"{len(to_pad)} padded", flush=True)  # fmt: skip

    per: dict[str, dict[str, list[Any]]] = {
        name: {k: [] for k in (*PER_ITEM, "reward", "fit_s", "seeds")} for name in MODELS
    }
    for seed in args.seeds:
        pairs = lab.labelled_pairs("train", seed)
        for name, make in MODELS.items():
            model = EnsembleRewardModel(make(seed), encoder=encoder)
            t0 = time.perf_counter()
            model.fit(pairs)
            fit_s = time.perf_counter() - t0
            est = model.compare(test)
            correct = pairwise_correct(est.chosen.mean, est.rejected.mean)
            metrics = model.evaluate(test, reps=REPS, seed=0, estimate=est)
            reward = model.score(items["prompts"], items["texts"]).mean
            sd = float(reward.std())
            delta = model.score(pad_prompts, padded).mean - reward[to_pad]
            pool = model.score(pool_prompts, pool_texts).mean.reshape(len(lab.pools), n_pool)
            pick = np.argmax(pool[:, :N_BEST], axis=1)
            rows = np.arange(len(lab.pools))
            r = per[name]
            r["correct"].append(correct)
            r["reward"].append(reward)
            r["rises"].append((delta > 0).astype(np.float64))
            r["delta_sd"].append(delta / sd)
            r["pick_gold"].append(pool_gold[rows, pick])
            r["pick_polished"].append(polished[rows, pick].astype(np.float64))
            r["fit_s"].append(fit_s)
            lm = metrics["length_matched"]
            r["seeds"].append(
                {
                    "seed": seed,
                    "accuracy": float(correct.mean()),
                    "length_matched_accuracy": float(correct[lm_mask].mean()),
                    "evaluate_length_matched": lm,
                    "evaluate_length_reward_corr": metrics["length_reward_corr"],
                    "reward_sd": sd,
                    "share_rises_padded": float((delta > 0).mean()),
                    "mean_delta_sd": float(np.mean(delta / sd)),
                    "best_of_n_gold": float(pool_gold[rows, pick].mean()),
                    "share_polished_picks": float(polished[rows, pick].mean()),
                    "fit_s": fit_s,
                    "best_epoch": list(model.best_epoch_),
                }
            )
            s = r["seeds"][-1]
            print(f"seed {seed} {name}: acc {s['accuracy']:.3f} (matched "
                  f"{s['length_matched_accuracy']:.3f}), padded rises "
                  f"{s['share_rises_padded']:.3f}, Δ {s['mean_delta_sd']:+.3f} sd, "
                  f"best-of-{N_BEST} gold {s['best_of_n_gold']:.3f} (polished "
                  f"{s['share_polished_picks']:.2f}), fit {fit_s:.1f}s", flush=True)  # fmt: skip

    out_models: dict[str, Any] = {}
    avg = {n: {k: np.mean(np.stack(v[k]), axis=0) for k in PER_ITEM} for n, v in per.items()}
    for name, r in per.items():
        a = avg[name]
        out_models[name] = {
            "config": MODELS[name](0).to_dict(),
            "accuracy": mean_ci(a["correct"], REPS),
            "length_matched_accuracy": mean_ci(a["correct"][lm_mask], REPS),
            "length_reward_spearman": spearman_summary(items["chars"], r["reward"]),
            "gold_reward_spearman": spearman_summary(items["gold"], r["reward"]),
            "padding": {
                "share_rises": mean_ci(a["rises"], REPS),
                "mean_delta_sd": mean_ci(a["delta_sd"], REPS),
            },
            "best_of_n": {
                "n": N_BEST,
                "gold": mean_ci(a["pick_gold"], REPS),
                "share_polished_picks": float(a["pick_polished"].mean()),
            },
            "fit_s_median": statistics.median(r["fit_s"]),
            "seeds": r["seeds"],
        }
    d, b = avg["length_head"], avg["default"]
    diffs = {
        "accuracy": paired(d["correct"], b["correct"]),
        "length_matched_accuracy": paired(d["correct"][lm_mask], b["correct"][lm_mask]),
        "share_rises_padded": paired(d["rises"], b["rises"]),
        "mean_delta_sd": paired(d["delta_sd"], b["delta_sd"]),
        "best_of_n_gold": paired(d["pick_gold"], b["pick_gold"]),
    }
    result = {
        "benchmark": "length_decoupled",
        "settings": {
            "sandbox": SandboxConfig().to_dict(),
            "encoder": to_dict(EncoderConfig()),
            "seeds": list(args.seeds),
            "reps": REPS,
            "pad_add": PAD_ADD,
            "pad_items_max_verbosity": PAD_MAX_BEFORE,
            "n_best": N_BEST,
        },
        "data": {
            "n_train_pairs": len(sandbox.train),
            "n_test_pairs": len(test),
            "n_length_matched_pairs": int(lm_mask.sum()),
            "n_held_out_responses": len(items["texts"]),
            "n_padded_items": len(to_pad),
            "n_pools": len(lab.pools),
            "gold_length_spearman": float(
                spearman_rows(items["chars"][None], items["gold"][None])[0]
            ),
            "pool_oracle_gold": mean_ci(pool_gold.max(axis=1), REPS),
            "pool_random_gold": mean_ci(pool_gold.mean(axis=1), REPS),
        },
        "models": out_models,
        "length_head_minus_default": diffs,
        "encode_s": encode_s,
        "total_s": time.perf_counter() - t_start,
        "machine": machine(),
    }
    share = {n: out_models[n]["padding"]["share_rises"]["mean"] for n in MODELS}
    matched = {n: out_models[n]["length_matched_accuracy"]["mean"] for n in MODELS}
    result["targets"] = {
        "padding_share_le_default_minus_0.20": share["length_head"] <= share["default"] - 0.20,
        "padding_share_diff_ci_below_0": diffs["share_rises_padded"]["ci_high"] < 0,
        "length_matched_ge_default_minus_0.02": matched["length_head"] >= matched["default"] - 0.02,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["targets"]), flush=True)
    print(f"wrote {args.out} in {result['total_s']:.0f}s", flush=True)
    print(readme_row(result))


def readme_row(result: dict[str, Any]) -> str:
    m = result["models"]

    def both(get: Callable[[dict[str, Any]], dict[str, Any]], fmt: str = ".3f") -> str:
        return f"{cell(get(m['length_head']), fmt)} vs {cell(get(m['default']), fmt)}"

    rho = {n: m[n]["length_reward_spearman"] for n in m}
    met = "met" if all(result["targets"].values()) else "not met"
    return (
        f"| `length_decoupled` | sandbox ({result['data']['n_test_pairs']} gold-ordered test "
        f"pairs, {result['data']['n_length_matched_pairs']} length-matched; "
        f"{result['data']['n_padded_items']} held-out responses padded by "
        f"{result['settings']['pad_add']} free sentences; {result['data']['n_pools']} pools), "
        f"MiniLM, K=5, {len(result['settings']['seeds'])} seeds, "
        f"2-core CPU | length head vs default: share rewarding the padded copy higher "
        f"{both(lambda b: b['padding']['share_rises'])}, mean Δ "
        f"{both(lambda b: b['padding']['mean_delta_sd'], '+.2f')} sd; length-matched accuracy "
        f"{both(lambda b: b['length_matched_accuracy'])}; accuracy "
        f"{both(lambda b: b['accuracy'])}; length–reward Spearman "
        f"{rho['length_head']['spearman']:.2f} vs {rho['default']['spearman']:.2f} (gold "
        f"{result['data']['gold_length_spearman']:.2f}); best-of-{N_BEST} gold "
        f"{both(lambda b: b['best_of_n']['gold'])} | padded-preferred share ≤ default − 0.20 "
        f"and length-matched accuracy ≥ default − 0.02 ({met}) |"
    )


if __name__ == "__main__":
    main()
