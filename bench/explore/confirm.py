"""Confirm candidates with the library's own K=5 linear ensemble (EnsembleRewardModel.fit:
bootstrap, early stopping on its internal 10%, standardisation). L2 chosen by 5-fold CV
inside the bench's train split (seed 0) only; test = the bench's 20% split; CI from
the library's evaluate(). Also reports the default l2 (1.0) for reference.

Usage: nice -n 15 python bench/explore/confirm.py SPEC [SPEC ...]
Appends rows to bench/explore/confirm_results.jsonl
"""

import json
import sys
import time

import torch
from common import load, split_idx
from features import build
from probe import ArrayEncoder, lib_fixed, lib_select_and_test

torch.set_num_threads(1)
pairs = load()
tr, te = split_idx(len(pairs), 0)
for spec in sys.argv[1:]:
    t0 = time.perf_counter()
    xc, xr = build(spec, pairs)
    enc = ArrayEncoder(pairs, xc, xr, spec)
    r = lib_select_and_test(enc, pairs, tr, te)
    d = lib_fixed(enc, pairs, tr, te)  # library default l2
    row = {
        "spec": spec,
        "dim": xc.shape[1],
        "probe": "library K=5 linear",
        **r,
        "test_default_l2": d["test"],
        "ci_default_l2": d["ci"],
    }
    print(
        f"{spec:22s} l2={r['l2']:<5} val {r['val']:.3f} test {r['test']:.3f} "
        f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] | l2=1.0 test {d['test']:.3f} "
        f"[{d['ci'][0]:.3f}, {d['ci'][1]:.3f}]  cv {r['cv']}  ({time.perf_counter() - t0:.0f}s)",
        flush=True,
    )
    with open("confirm_results.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")
