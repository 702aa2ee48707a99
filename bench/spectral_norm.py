"""A Lipschitz (spectral-norm) MLP head, alone or with a last-layer Laplace posterior,
against deep ensembles: is an ensemble necessary? (issue 21 item 6)

Five estimators on one frozen encoder, on the built-in sandbox and on HH-RLHF harmless:

- (a) ``mlp K=1``: one MLP head;
- (b) ``mlp K=1 SN``: one MLP head whose hidden layer is kept at spectral norm ≤ 1.0;
- (c) ``mlp K=1 SN + Laplace``: (b) with a last-layer Laplace posterior
  (``UncertaintyConfig(estimator="laplace")``): one distance-aware model with an
  epistemic variance, SNGP-like;
- (d) ``mlp K=5``: a deep ensemble of five MLP heads (the default estimator);
- (e) ``linear K=5``: the library default (five linear heads).

Settings, fixed before any result was seen:

- encoder: the library default (MiniLM, ``dual`` pooling), the embedding cache built once
  (the default cache folder) and passed to every model;
- every other setting is the library default (MLP: 256 hidden units, dropout 0.1, L2
  0.05; linear: L2 1.0; Laplace: the ``train`` prior, 64 posterior samples), except
  ``calibration_folds = 0`` for all five: a temperature changes none of the rewards,
  accuracies, variances or picks reported here, and cross-fitting would multiply every
  fit time by about six;
- seeds 0, 1, 2 (model seeds; on the sandbox also the label seed);
- sandbox: ``SandboxConfig()`` defaults (3,000 training comparisons with BT labels at
  temperature 1 then 25% flips; the 1,000 test comparisons ordered by gold, exact ties
  left out; 100 best-of-32 pools, a tenth of their candidates "polished", padded past
  anything in training);
- HH-RLHF harmless test pairs (../shared/data), the 80/20 split (seed 0) of
  bench/hh_data.py; OOD = the sandbox's gold-ordered test pairs, as in
  bench/uncertainty_hh.py: the AUROC of the response epistemic variance for telling the
  sandbox responses from the HH test responses (``ood_report``), per seed, averaged over
  seeds;
- accuracy (ties half) of the seed-averaged per-pair correctness with a 95% percentile
  bootstrap CI over pairs (2,000 resamples);
- sandbox best-of-n at n = 32: per pool, the candidate with the highest reward among its
  first 32 under the mean (every estimator) and under WCO (the minimum over the members:
  five heads for (d) and (e), 64 posterior samples for (c)); its gold averaged over
  seeds per pool, the mean over pools with a bootstrap CI over pools; also the AUROC of
  the epistemic variance for telling the polished candidates from the other candidates
  (the sandbox's own shift);
- time: ``fit`` wall time (features cached) and ``score`` wall time of the 3,200 pool
  candidates (sandbox) or of the HH test and OOD responses (HH), median over seeds,
  and (train + score) relative to (a) on the same data;
- diagnostic (added after the first run, to explain why (a) and (b) came out identical;
  no setting changed): each MLP member's largest singular value of its hidden layer as
  trained, before any clip: a bound c changes nothing while this stays below c;
- second run (after the library moved from an exact SVD per step to power iteration,
  which changes (b)/(c) only through σ_max's estimate): two secondary arms, (f) and (g),
  (b) and (c) with the bound at 0.25, chosen before they ran as below the smallest
  trained σ_max of the first run (0.41), so the bound binds; reported beside the
  others, not part of the target;
- target: (c)'s HH OOD AUROC at least (d)'s minus 0.05, (c)'s sandbox best-of-32 gold
  (mean) inside (d)'s 95% CI, and (c)'s total fit time (both data sets, all seeds) at
  most a third of (d)'s.

    python bench/spectral_norm.py [--out bench/results/spectral_norm.json] [--no-hh]
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
import torch

from rewardhedge.config import (
    EncoderConfig,
    EnsembleConfig,
    HeadConfig,
    TrainConfig,
    UncertaintyConfig,
    to_dict,
)
from rewardhedge.data.sandbox import Sandbox, SandboxConfig, generate_sandbox
from rewardhedge.encoders import build_cached_encoder
from rewardhedge.estimators.base import ood_report
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.evaluate.pairwise import pairwise_correct
from rewardhedge.evaluate.uncertainty_quality import ood_auroc
from rewardhedge.lab.data import LabData, from_sandbox, polished_mask
from rewardhedge.uncertainty.aggregation import aggregate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import cell, has_spread, machine, mean_ci, num, pair_texts
from hh_data import hh_and_sandbox

SEEDS = (0, 1, 2)
REPS = 2000
N_BEST = 32
SN = 1.0
SN_BINDING = 0.25
NO_CAL = {"calibration_folds": 0}
ESTIMATORS: dict[str, dict[str, Any]] = {
    # name: (members, head, uncertainty)
    "a: mlp K=1": {"n_members": 1, "head": {"kind": "mlp"}, "uncertainty": NO_CAL},
    "b: mlp K=1 SN": {
        "n_members": 1,
        "head": {"kind": "mlp", "spectral_norm": SN},
        "uncertainty": NO_CAL,
    },
    "c: mlp K=1 SN + Laplace": {
        "n_members": 1,
        "head": {"kind": "mlp", "spectral_norm": SN},
        "uncertainty": NO_CAL | {"estimator": "laplace"},
    },
    "d: mlp K=5": {"n_members": 5, "head": {"kind": "mlp"}, "uncertainty": NO_CAL},
    "e: linear K=5": {"n_members": 5, "head": {}, "uncertainty": NO_CAL},
    # Secondary, added after the first run showed every trained σ_max (0.41–0.91) below
    # 1.0, so (b) and (c) equal (a): a bound chosen, before this arm ran, under the
    # smallest σ_max seen, so that it binds on every seed and data set.
    "f: mlp K=1 SN 0.25": {
        "n_members": 1,
        "head": {"kind": "mlp", "spectral_norm": SN_BINDING},
        "uncertainty": NO_CAL,
    },
    "g: mlp K=1 SN 0.25 + Laplace": {
        "n_members": 1,
        "head": {"kind": "mlp", "spectral_norm": SN_BINDING},
        "uncertainty": NO_CAL | {"estimator": "laplace"},
    },
}
REF, LAPLACE, ENSEMBLE = "a: mlp K=1", "c: mlp K=1 SN + Laplace", "d: mlp K=5"


def config_for(name: str, seed: int) -> EnsembleConfig:
    spec = ESTIMATORS[name]
    return EnsembleConfig(
        n_members=spec["n_members"],
        head=HeadConfig(**spec["head"]),
        train=TrainConfig(seed=seed),
        uncertainty=UncertaintyConfig(**spec["uncertainty"]),
    )


def hidden_sigma_max(model: EnsembleRewardModel) -> list[float] | None:
    """Each MLP member's largest singular value of its (masked) hidden layer as trained,
    before any clip: whether a spectral-norm bound can bind at all (``None``: linear)."""
    heads = model.heads_.heads
    w1 = getattr(heads, "w1", None)
    if w1 is None:
        return None
    w = w1.detach() * heads.member_mask[:, :, None]
    return [float(v) for v in torch.linalg.matrix_norm(w, ord=2)]


def run_sandbox(encoder: Any, seeds: list[int], sandbox: Sandbox, lab: LabData) -> dict[str, Any]:
    test = sandbox.gold_pairs("test")
    pool_prompts = [p.prompt for p in lab.pools for _ in range(p.size)]
    pool_texts = [c for p in lab.pools for c in p.candidates]
    n_pool = lab.pools[0].size
    if any(p.size != n_pool for p in lab.pools) or n_pool < N_BEST:
        raise RuntimeError("expected equal pools of at least N_BEST candidates")
    gold = np.stack([p.gold for p in lab.pools])[:, :N_BEST]
    polished = polished_mask(sandbox)
    rows = np.arange(len(lab.pools))
    per: dict[str, dict[str, list[Any]]] = {
        n: {"correct": [], "mean_gold": [], "wco_gold": [], "seeds": []} for n in ESTIMATORS
    }
    for seed in seeds:
        pairs = lab.labelled_pairs("train", seed)
        for name in ESTIMATORS:
            model = EnsembleRewardModel(config_for(name, seed), encoder=encoder)
            t0 = time.perf_counter()
            model.fit(pairs)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            est = model.score(pool_prompts, pool_texts)
            score_s = time.perf_counter() - t0
            est_test = model.compare(test)
            correct = pairwise_correct(est_test.chosen.mean, est_test.rejected.mean)
            shape = (len(lab.pools), n_pool)
            mean_pick = np.argmax(est.mean.reshape(shape)[:, :N_BEST], axis=1)
            wco = aggregate(est, "wco").reshape(shape)[:, :N_BEST]
            wco_pick = np.argmax(wco, axis=1)
            epi = est.epistemic.reshape(shape)
            r = per[name]
            r["correct"].append(correct)
            r["mean_gold"].append(gold[rows, mean_pick])
            r["wco_gold"].append(gold[rows, wco_pick])
            r["seeds"].append(
                {
                    "seed": seed,
                    "accuracy": float(correct.mean()),
                    "best_of_n_gold_mean": float(gold[rows, mean_pick].mean()),
                    "best_of_n_gold_wco": float(gold[rows, wco_pick].mean()),
                    "polished_picks_mean": float(polished[rows, mean_pick].mean()),
                    "polished_epistemic_auroc": (
                        ood_auroc(epi[~polished], epi[polished])
                        if has_spread(est.epistemic)
                        else None
                    ),
                    "n_members_scored": est.n_members,
                    "hidden_sigma_max": hidden_sigma_max(model),
                    "fit_s": fit_s,
                    "score_s": score_s,
                    "best_epoch": list(model.best_epoch_),
                }
            )
            s = r["seeds"][-1]
            print(f"sandbox seed {seed} {name}: acc {s['accuracy']:.3f}, best-of-{N_BEST} "
                  f"gold mean {s['best_of_n_gold_mean']:.3f} / WCO "
                  f"{s['best_of_n_gold_wco']:.3f}, polished AUROC "
                  f"{num(s['polished_epistemic_auroc'])}, fit {fit_s:.1f}s, "
                  f"score {score_s:.2f}s", flush=True)  # fmt: skip
    out: dict[str, Any] = {
        "n_train_pairs": len(lab.train),
        "n_test_pairs": len(test),
        "n_pools": len(lab.pools),
        "pool_oracle_gold": mean_ci(gold.max(axis=1), REPS),
        "pool_random_gold": mean_ci(gold.mean(axis=1), REPS),
        "estimators": {},
    }
    for name, r in per.items():
        seeds_ = r["seeds"]
        aucs = [s["polished_epistemic_auroc"] for s in seeds_]
        out["estimators"][name] = {
            "accuracy": mean_ci(np.mean(r["correct"], axis=0), REPS),
            "best_of_n_gold_mean": mean_ci(np.mean(r["mean_gold"], axis=0), REPS),
            "best_of_n_gold_wco": mean_ci(np.mean(r["wco_gold"], axis=0), REPS),
            "polished_epistemic_auroc": None if None in aucs else float(np.mean(aucs)),
            "fit_s_median": statistics.median(s["fit_s"] for s in seeds_),
            "score_s_median": statistics.median(s["score_s"] for s in seeds_),
            "seeds": seeds_,
        }
    return out


def run_hh(encoder: Any, seeds: list[int], hh: tuple[Any, ...]) -> dict[str, Any]:
    """``hh``: what ``hh_and_sandbox()`` returns."""
    train, test, ood, data = hh
    per: dict[str, dict[str, list[Any]]] = {n: {"correct": [], "seeds": []} for n in ESTIMATORS}
    for seed in seeds:
        for name in ESTIMATORS:
            model = EnsembleRewardModel(config_for(name, seed), encoder=encoder)
            t0 = time.perf_counter()
            model.fit(train)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            est_in = model.compare(test)
            est_out = model.compare(ood)
            score_s = time.perf_counter() - t0
            correct = pairwise_correct(est_in.chosen.mean, est_in.rejected.mean)
            epi = np.concatenate([est_in.chosen.epistemic, est_in.rejected.epistemic])
            auc = (
                ood_report(est_in, est_out)["response_epistemic_auroc"] if has_spread(epi) else None
            )
            per[name]["correct"].append(correct)
            per[name]["seeds"].append(
                {
                    "seed": seed,
                    "accuracy": float(correct.mean()),
                    "ood_response_epistemic_auroc": auc,
                    "hidden_sigma_max": hidden_sigma_max(model),
                    "fit_s": fit_s,
                    "score_s": score_s,
                    "best_epoch": list(model.best_epoch_),
                }
            )
            print(f"HH seed {seed} {name}: acc {correct.mean():.3f}, OOD AUROC "
                  f"{num(auc)}, fit {fit_s:.1f}s, "
                  f"score {score_s:.2f}s", flush=True)  # fmt: skip
    out: dict[str, Any] = {"data": data, "estimators": {}}
    for name, r in per.items():
        seeds_ = r["seeds"]
        aucs = [s["ood_response_epistemic_auroc"] for s in seeds_]
        out["estimators"][name] = {
            "accuracy": mean_ci(np.mean(r["correct"], axis=0), REPS),
            "ood_response_epistemic_auroc": None if None in aucs else float(np.mean(aucs)),
            "ood_auroc_per_seed": aucs,
            "fit_s_median": statistics.median(s["fit_s"] for s in seeds_),
            "score_s_median": statistics.median(s["score_s"] for s in seeds_),
            "seeds": seeds_,
        }
    return out


def add_ratios(block: dict[str, Any]) -> None:
    est = block["estimators"]
    ref = est[REF]["fit_s_median"] + est[REF]["score_s_median"]
    for r in est.values():
        r["train_score_ratio_to_a"] = (r["fit_s_median"] + r["score_s_median"]) / ref
        r["fit_ratio_to_a"] = r["fit_s_median"] / est[REF]["fit_s_median"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/results/spectral_norm.json"))
    ap.add_argument("--no-hh", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="(smoke runs only)")
    args = ap.parse_args()
    t_start = time.perf_counter()
    encoder = build_cached_encoder(EncoderConfig())
    t0 = time.perf_counter()
    sandbox = generate_sandbox(SandboxConfig())
    lab = from_sandbox(sandbox)
    encoder.encode(*lab.texts())
    hh = None if args.no_hh else hh_and_sandbox(sandbox)
    if hh is not None:
        for pairs in hh[:3]:
            encoder.encode(*pair_texts(pairs))
    encode_s = time.perf_counter() - t0
    print(f"encoded (or read from the cache) in {encode_s:.1f}s", flush=True)

    sandbox_block = run_sandbox(encoder, args.seeds, sandbox, lab)
    add_ratios(sandbox_block)
    hh_block = None
    if hh is not None:
        hh_block = run_hh(encoder, args.seeds, hh)
        add_ratios(hh_block)

    result: dict[str, Any] = {
        "benchmark": "spectral_norm",
        "settings": {
            "encoder": to_dict(EncoderConfig()),
            "estimators": {n: config_for(n, 0).to_dict() for n in ESTIMATORS},
            "sandbox": SandboxConfig().to_dict(),
            "seeds": list(args.seeds),
            "reps": REPS,
            "n_best": N_BEST,
        },
        "sandbox": sandbox_block,
        "hh": hh_block,
        "encode_s": encode_s,
        "total_s": time.perf_counter() - t_start,
        "machine": machine(),
    }
    sb = sandbox_block["estimators"]
    lap, ens = sb[LAPLACE], sb[ENSEMBLE]
    blocks = [b for b in (sandbox_block, hh_block) if b is not None]
    fit_total = {
        n: sum(s["fit_s"] for b in blocks for s in b["estimators"][n]["seeds"])
        for n in (LAPLACE, ENSEMBLE)
    }
    result["fit_s_total"] = fit_total
    targets = {
        "c_best_of_n_gold_in_d_ci": ens["best_of_n_gold_mean"]["ci_low"]
        <= lap["best_of_n_gold_mean"]["mean"]
        <= ens["best_of_n_gold_mean"]["ci_high"],
        "c_fit_time_le_d_over_3": fit_total[LAPLACE] <= fit_total[ENSEMBLE] / 3,
    }
    if hh_block is not None:
        h = hh_block["estimators"]
        targets["c_hh_ood_auroc_ge_d_minus_0.05"] = (
            h[LAPLACE]["ood_response_epistemic_auroc"] is not None
            and h[LAPLACE]["ood_response_epistemic_auroc"]
            >= h[ENSEMBLE]["ood_response_epistemic_auroc"] - 0.05
        )
    result["targets"] = targets
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(targets), flush=True)
    print(f"wrote {args.out} in {result['total_s']:.0f}s", flush=True)
    print_table(result)


def print_table(result: dict[str, Any]) -> None:
    sb, hh = result["sandbox"]["estimators"], result["hh"]

    print(
        "| estimator | sandbox acc | best-of-32 gold (mean) | best-of-32 gold (WCO) | "
        "polished AUROC | HH acc | HH OOD AUROC | train+score × (sandbox / HH) |"
    )
    for name, s in sb.items():
        h = hh["estimators"][name] if hh else None
        print(
            f"| {name} | {cell(s['accuracy'])} | {cell(s['best_of_n_gold_mean'])} | "
            f"{cell(s['best_of_n_gold_wco'])} | {num(s['polished_epistemic_auroc'])} | "
            f"{cell(h['accuracy']) if h else '—'} | "
            f"{num(h['ood_response_epistemic_auroc']) if h else '—'} | "
            f"{s['train_score_ratio_to_a']:.1f} / "
            f"{h['train_score_ratio_to_a'] if h else float('nan'):.1f} |"
        )
    lap, ens = sb[LAPLACE], sb[ENSEMBLE]
    t = result["targets"]
    ood = ""
    if hh:
        he = hh["estimators"]
        ood = (
            f"HH OOD AUROC {num(he[LAPLACE]['ood_response_epistemic_auroc'])} vs "
            f"{num(he[ENSEMBLE]['ood_response_epistemic_auroc'])}, HH accuracy "
            f"{cell(he[LAPLACE]['accuracy'])} vs {cell(he[ENSEMBLE]['accuracy'])}; "
        )
    ft = result["fit_s_total"]
    missed = [k for k, v in t.items() if not v]
    print(
        f"| `spectral_norm` | sandbox ({result['sandbox']['n_test_pairs']} gold-ordered test "
        f"pairs, {result['sandbox']['n_pools']} best-of-{N_BEST} pools) and HH-RLHF harmless "
        f"(OOD: sandbox), MiniLM, {len(result['settings']['seeds'])} seeds, "
        f"2-core CPU | SN MLP K=1 + Laplace vs MLP K=5 ensemble: {ood}sandbox accuracy "
        f"{cell(lap['accuracy'])} vs {cell(ens['accuracy'])}, best-of-32 gold "
        f"{cell(lap['best_of_n_gold_mean'])} vs {cell(ens['best_of_n_gold_mean'])}; fit time "
        f"{ft[LAPLACE]:.0f} s vs {ft[ENSEMBLE]:.0f} s | (c) OOD AUROC ≥ (d) − 0.05, best-of-32 "
        f"gold in (d)'s CI, ≤ 1/3 of its train time "
        f"({'met' if not missed else 'not met: ' + ', '.join(missed)}) |"
    )


if __name__ == "__main__":
    main()
