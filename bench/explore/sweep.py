"""(b)-(e) Sklearn probe on difference features, C chosen by 5-fold CV inside the
bench's train split (seed 0); test = the bench's 20% test split.

Usage: nice -n 15 python bench/explore/sweep.py SPEC [SPEC ...]  (see features.py)
Appends rows to bench/explore/sweep_results.jsonl
"""

import json
import sys
import time

import torch
from common import load, split_idx
from features import build
from probe import sk_select_and_test

torch.set_num_threads(1)
pairs = load()
tr, te = split_idx(len(pairs), 0)
for spec in sys.argv[1:]:
    t0 = time.perf_counter()
    xc, xr = build(spec, pairs)
    r = sk_select_and_test(xc, xr, tr, te)
    row = {"spec": spec, "dim": xc.shape[1], "probe": "sklearn", **r}
    print(
        f"{spec:28s} d={xc.shape[1]:5d} C={r['C']:.0e} val {r['val']:.3f} test {r['test']:.3f} "
        f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]  ({time.perf_counter() - t0:.0f}s)",
        flush=True,
    )
    with open("sweep_results.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")
