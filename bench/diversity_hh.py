"""Do diverse members hedge on real preferences? Each diversity option on HH-RLHF.

In-distribution: Anthropic HH-RLHF harmless test pairs (../shared/data), the
same 80/20 split (seed 0) as bench/hh_foundation.py. Out-of-distribution: the
sandbox's test pairs (arithmetic, unit conversion, … — nothing like HH).

Every model reads one multi-view MiniLM pass per text (views ctx_l4,
ctx_last, ctx_low, all_mean, whole, hash; cached on disk), sliced to the
views it uses, so the options differ only in what makes their members
differ:

- single (K=1) and bootstrap (K=5) on ctx_l4 (the herding baseline);
- subspace (K=5): a random half of ctx_l4's dimensions per member;
- views (K=5): ctx_l4, ctx_last, ctx_low, all_mean, hash, one per member;
- whole (K=5, bootstrap): ctx_l4 pooled over windows covering the whole response;
- views + whole (K=6): all six views.

Per option: accuracy with 95% CI, the misorder AUROC of the epistemic
uncertainty (and of the best uncertainty), the OOD AUROC of the response
epistemic variance (sandbox vs HH), and member diversity (mean pairwise
STARC distance on HH test items, disagreement on HH vs sandbox items).

Usage: python bench/diversity_hh.py [--reps 2000]
Writes bench/results/diversity_hh.json and prints README rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from rewardhedge import __version__
from rewardhedge.config import DiversityConfig, EncoderConfig, EnsembleConfig, TrainConfig
from rewardhedge.encoders.view_slice import ViewSlice
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.evaluate.diversity import member_diversity

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hh_data import hh_and_sandbox

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / "bench" / "cache"

ALL_VIEWS = ("ctx_l4", "ctx_last", "ctx_low", "all_mean", "whole", "hash")
OPTIONS: dict[str, tuple[int, str, tuple[str, ...]]] = {
    # name: (K, diversity kind, views read)
    "single (K=1, ctx_l4)": (1, "bootstrap", ("ctx_l4",)),
    "bootstrap (K=5, ctx_l4)": (5, "bootstrap", ("ctx_l4",)),
    "subspace (K=5, ctx_l4)": (5, "subspace", ("ctx_l4",)),
    "views (K=5)": (5, "views", ("ctx_l4", "ctx_last", "ctx_low", "all_mean", "hash")),
    "whole (K=5, bootstrap)": (5, "bootstrap", ("whole",)),
    "views + whole (K=6)": (6, "views", ALL_VIEWS),
}


def items(pairs) -> tuple[list[str], list[str], np.ndarray]:
    prompts = [p.prompt for p in pairs for _ in range(2)]
    texts = [t for p in pairs for t in (p.chosen, p.rejected)]
    return prompts, texts, np.repeat(np.arange(len(pairs)), 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2000)
    args = ap.parse_args()
    torch.manual_seed(0)
    train, test, ood, data = hh_and_sandbox()
    print(f"HH: {len(train)} train / {len(test)} test pairs; OOD sandbox: {len(ood)} pairs")
    enc_cfg = EncoderConfig(views=ALL_VIEWS)
    encoder = EnsembleRewardModel(EnsembleConfig(encoder=enc_cfg), cache_dir=CACHE).encoder
    t0 = time.perf_counter()
    for batch in (train, test, ood):
        p, t, _ = items(batch)
        encoder.encode(p, t, progress=True)
    encode_s = time.perf_counter() - t0
    print(f"encoded (cold or warm cache) in {encode_s:.1f}s", flush=True)

    rows: dict[str, dict] = {}
    for name, (k, kind, views) in OPTIONS.items():
        cfg = EnsembleConfig(
            n_members=k,
            train=TrainConfig(seed=0, bootstrap=k > 1),
            encoder=replace(enc_cfg, views=views),
            diversity=DiversityConfig(kind=kind),
        )
        model = EnsembleRewardModel(cfg, encoder=ViewSlice(encoder, enc_cfg, views))
        t0 = time.perf_counter()
        model.fit(train)
        train_s = time.perf_counter() - t0
        metrics = model.evaluate(test, reps=args.reps, ood_pairs=ood)
        unc = metrics["uncertainty"]
        row = {
            "members": k,
            "diversity": kind,
            "views": list(views),
            "accuracy": metrics["pairwise_accuracy"],
            "accuracy_ci": [metrics["accuracy_ci_low"], metrics["accuracy_ci_high"]],
            "misorder_auroc": {u: v["misorder_auroc"] for u, v in unc.items()},
            "ood_pair_auroc": metrics["ood"]["pair_auroc"],
            "ood_response_epistemic_auroc": metrics["ood"]["response_epistemic_auroc"],
            "train_s": train_s,
        }
        if k > 1:
            p_in, t_in, groups = items(test)
            p_out, t_out, _ = items(ood)
            row["member_diversity"] = member_diversity(
                model.score(p_in, t_in).members, groups, model.score(p_out, t_out).members
            )
        rows[name] = row
        epi = row["misorder_auroc"].get("epistemic_sum")
        div = row.get("member_diversity") or {}
        print(
            f"{name:26s} acc {row['accuracy']:.3f} misorder AUROC epi "
            f"{'—' if epi is None else f'{epi:.3f}'} "
            f"OOD epi {row['ood_response_epistemic_auroc'] or float('nan'):.3f} "
            f"STARC {div.get('starc_pairwise_mean') or float('nan'):.3f} "
            f"shift ratio {div.get('shift_ratio') or float('nan'):.2f} train {train_s:.1f}s",
            flush=True,
        )
    out = {
        "benchmark": "diversity_hh",
        "library_version": __version__,
        "machine": f"{platform.machine()} {torch.get_num_threads()} torch threads",
        "data": data,
        "encoder": enc_cfg.views,
        "encode_s": encode_s,
        "options": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "diversity_hh.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    print(
        "| option | accuracy [95% CI] | misorder AUROC (epistemic) | OOD AUROC | STARC | "
        "disagreement HH → sandbox |"
    )
    for name, r in rows.items():
        lo, hi = r["accuracy_ci"]
        epi = r["misorder_auroc"].get("epistemic_sum")
        div = r.get("member_diversity") or {}
        dis = (
            f"{div['disagreement_in']:.3f} → {div['disagreement_shift']:.3f}"
            if div.get("disagreement_shift") is not None
            else "—"
        )
        starc = div.get("starc_pairwise_mean")
        ood_auc = r["ood_response_epistemic_auroc"]
        print(
            f"| {name} | {r['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] | "
            f"{'—' if epi is None else f'{epi:.3f}'} | "
            f"{'—' if ood_auc is None else f'{ood_auc:.3f}'} | "
            f"{'—' if starc is None else f'{starc:.3f}'} | {dis} |"
        )


if __name__ == "__main__":
    main()
