"""Paired split-seed comparison (seeds 0..9) of the library K=5 linear ensemble:
current default (ctx+alone, last layer) vs mean-of-last-4-layers dual, raw and
L2-normalised, at the default l2=1.0; plus dual-L4n with l2 chosen per seed by
5-fold CV on that seed's train split (grid 0.1, 0.3, 1, 3).

Usage: nice -n 15 python bench/explore/seed_variance_candidates.py
Writes bench/explore/seed_variance_candidates.json
"""

import json

import numpy as np
import torch
from common import load, split_idx
from features import build
from probe import ArrayEncoder, lib_fixed, lib_select_and_test

torch.set_num_threads(1)
pairs = load()
specs = ["ctx+alone", "cxL4+aL4", "cxL4n+aL4n"]
encs = {s: ArrayEncoder(pairs, *build(s, pairs), s) for s in specs}
rows = []
for seed in range(10):
    tr, te = split_idx(len(pairs), seed)
    row = {"seed": seed}
    for s in specs:
        row[s] = lib_fixed(encs[s], pairs, tr, te)["test"]
    cv = lib_select_and_test(encs["cxL4n+aL4n"], pairs, tr, te, grid=[0.1, 0.3, 1.0, 3.0])
    row["cxL4n+aL4n cv-l2"], row["cv_l2"] = cv["test"], cv["l2"]
    rows.append(row)
    print(row, flush=True)
summary = {}
for k in [*specs, "cxL4n+aL4n cv-l2"]:
    v = np.array([r[k] for r in rows])
    d = v - np.array([r["ctx+alone"] for r in rows])
    summary[k] = {
        "mean": v.mean(),
        "std": v.std(ddof=1),
        "min": v.min(),
        "max": v.max(),
        "mean_gain_vs_default": d.mean(),
        "gain_std": d.std(ddof=1),
        "seeds_improved": int((d > 0).sum()),
    }
    print(k, {a: round(float(b), 4) for a, b in summary[k].items()})
with open("seed_variance_candidates.json", "w") as fh:
    json.dump(
        {"rows": rows, "summary": summary},
        fh,
        indent=1,
        default=float,
    )
