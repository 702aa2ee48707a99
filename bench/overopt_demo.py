"""The demo as a benchmark: does the sandbox reproduce overoptimisation, and how fast?

Runs ``rewardhedge demo`` with its defaults in a real subprocess on a cold
embedding cache (as on a fresh machine), times it, then reads its
``overopt.json`` and reports, per curve: the gold reward at n=1, the n where
the gold IQM peaks, the fitted Gao peak, and the gold at the largest n with
its 95% stratified-bootstrap CI; plus held-out accuracies. Finally it loads
``report.html`` in headless Chromium (bench/report_check.py) and keeps the
screenshot.

Usage: python bench/overopt_demo.py [--out /tmp/rh-demo] [extra demo flags ...]
Writes bench/results/overopt_demo.json and bench/results/overopt_demo.png.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("/tmp/rh-demo-bench"))
    args, extra = parser.parse_known_args()
    if args.out.exists():
        shutil.rmtree(args.out)  # cold cache: the demo keeps its cache under --out
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "rewardhedge", "demo", "--out", str(args.out), *extra],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"demo failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lab = json.loads((args.out / "overopt.json").read_text())
    curves = []
    for c in lab["curves"]:
        fit = c.get("fit") or {}
        g = c["gold"]
        curves.append(
            {
                "label": c["label"],
                "gold_n1": g["iqm"][0],
                "peak_n_observed": c["peak_n_observed"],
                "peak_gold": max(g["iqm"]),
                "fit_peak_n": fit.get("peak_n"),
                "gold_at_max_n": c["gold_at_max_n"],
                "proxy_monotone": all(
                    b >= a - 1e-9 for a, b in itertools.pairwise(c["proxy"]["iqm"])
                ),
            }
        )
    shot = RESULTS / "overopt_demo.png"
    check = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "report_check.py"),
            str(args.out / "report.html"),
            "--screenshot",
            str(shot),
        ],
        capture_output=True,
        text=True,
    )
    result = {
        "benchmark": "overopt_demo",
        "machine": lab["machine"],
        "platform": platform.platform(),
        "demo_args": extra,
        "wall_s": wall,
        "lab_timing": lab["timing"],
        "ns": lab["ns"],
        "pool_gold": lab["pool_gold"],
        "curves": curves,
        "paired": lab.get("paired", []),
        "diversity": lab.get("diversity", []),
        "accuracy": lab["accuracy"],
        "report_check": json.loads(check.stdout)
        if check.stdout.strip()
        else {"error": check.stderr},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "overopt_demo.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    single = curves[0]
    print(
        f"\nREADME row: demo wall {wall:.0f}s; single model gold peaks at n={single['peak_n_observed']} "
        f"({single['peak_gold']:.2f}) and ends at {single['gold_at_max_n']['iqm']:.2f} "
        f"[{single['gold_at_max_n']['ci_low']:.2f}, {single['gold_at_max_n']['ci_high']:.2f}] at n={lab['ns'][-1]}"
    )


if __name__ == "__main__":
    main()
