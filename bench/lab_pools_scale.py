"""Is `overopt --pools` practical at 1,000 prompts × 16 long candidates on 2 cores?

A timing run, not a science run: the pools are built from the HH-RLHF harmless test
dialogues (real text the project may use): each of 1,000 prompts gets 16 candidates,
each the concatenation of three HH assistant responses (its own chosen or rejected
first, then two drawn from other rows): 104 words on average (median 92), several
times the sandbox's responses; the lab's encoder reads 256 tokens. The gold is seeded noise plus a small length term;
no curve here means anything. Measured: wall time of the real command on a cold
embedding cache, per stage (`overopt.json` timing), and of a rerun on the warm cache.

Usage: python bench/lab_pools_scale.py [--work /tmp/rh-pools-scale]
Writes bench/results/lab_pools_scale.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_run import run_cli
from hh_data import load_hh

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PROMPTS, SIZE = 1000, 16


def build(path: Path) -> dict[str, float]:
    pairs, _ = load_hh()
    rng = np.random.default_rng(0)
    responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    rows, lengths = [], []
    for i in range(PROMPTS):
        p = pairs[i % len(pairs)]
        cands = []
        for j in range(SIZE):
            own = p.chosen if j % 2 == 0 else p.rejected
            extra = rng.choice(len(responses), size=2, replace=False)
            cands.append(" ".join([own, *(responses[k] for k in extra)]))
        gold = rng.normal(size=SIZE) + 0.001 * np.array([len(c) for c in cands])
        rows.append({"id": f"hh-{i}", "prompt": p.prompt, "candidates": cands,
                     "gold": [float(g) for g in gold]})  # fmt: skip
        lengths += [len(c.split()) for c in cands]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"candidates": PROMPTS * SIZE, "mean_words": float(np.mean(lengths)),
            "median_words": float(np.median(lengths))}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/rh-pools-scale"))
    args = ap.parse_args()
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    sizes = build(args.work / "pools.jsonl")
    common = ["overopt", "--pools", str(args.work / "pools.jsonl"), "--label-scale",
              "standardize", "--no-report", "--cache-dir", str(args.work / "cache")]  # fmt: skip
    cold = run_cli([*common, "--out", str(args.work / "lab")], args.work / "cold.log")
    warm = run_cli([*common, "--out", str(args.work / "lab2")], args.work / "warm.log")
    result = json.loads((args.work / "lab" / "overopt.json").read_text())
    out = {
        "benchmark": "lab_pools_scale",
        "machine": result["machine"],
        "pools": {"prompts": PROMPTS, "size": SIZE, **sizes},
        "data": result["data"],
        "wall_s": {"cold_cache": cold, "warm_cache": warm},
        "timing": result["timing"],
        "encoder_id": result["encoder_id"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lab_pools_scale.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
