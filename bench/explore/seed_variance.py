"""(a) Split-seed variance of the current default (dual, K=5 linear, l2=1.0) from cached
features, plus the sklearn probe with CV-chosen C, over split seeds 0..9.

Usage: nice -n 15 python bench/explore/seed_variance.py
"""

import json
import time

import numpy as np
import torch
from common import cached_view, load, split_idx
from probe import ArrayEncoder, lib_fixed, sk_select_and_test

torch.set_num_threads(1)
pairs = load()
ctx = cached_view(pairs, "response_mean")
alone = cached_view(pairs, "mean", alone=True)
xc, xr = np.hstack([ctx[0], alone[0]]), np.hstack([ctx[1], alone[1]])
enc = ArrayEncoder(pairs, xc, xr, "dual-cached")
rows = []
for seed in range(10):
    t0 = time.perf_counter()
    tr, te = split_idx(len(pairs), seed)
    lib = lib_fixed(enc, pairs, tr, te)  # default l2 (1.0)
    lib1 = lib_fixed(enc, pairs, tr, te, n_members=1)
    sk = sk_select_and_test(xc, xr, tr, te)
    rows.append(
        {
            "seed": seed,
            "lib_K5_default": lib["test"],
            "lib_K1_default": lib1["test"],
            "sk_cvC": sk["test"],
            "sk_C": sk["C"],
            "sk_val": sk["val"],
        }
    )
    print(rows[-1], f"{time.perf_counter() - t0:.1f}s", flush=True)
summary = {}
for k in ("lib_K5_default", "lib_K1_default", "sk_cvC"):
    v = np.array([r[k] for r in rows])
    summary[k] = {"mean": v.mean(), "std": v.std(ddof=1), "min": v.min(), "max": v.max()}
    print(k, summary[k])
with open("seed_variance_default.json", "w") as fh:
    json.dump({"rows": rows, "summary": summary}, fh, indent=1)
