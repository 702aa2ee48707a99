"""Can a CPU user live with fine-tuning? `rewardhedge finetune` on HH-RLHF, 2 cores.

Runs the real command line in a subprocess per setting, on the HH-RLHF
harmless 80/20 split (seed 0) that every HH benchmark uses, with stderr to a
log file (as under nohup or CI), and records for each setting: wall time,
pairs/s, held-out accuracy with its CI (the command's own `eval.json`), and
the longest gap between progress lines in the log. The frozen default
(MiniLM + K=5 linear heads) is the bar: its accuracy on this split is read
from bench/results/eval_hh.json (same split, same data).

Usage: python bench/finetune_cpu.py [--settings lora1,multihead4] [--epochs 1]
Writes bench/results/finetune_cpu.json and prints README rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

from hh_data import load_hh, split

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

SETTINGS: dict[str, list[str]] = {
    "lora1": ["--ensemble", "single", "--lora"],
    "multihead4": ["--ensemble", "multihead", "--members", "4", "--lora"],
    "lora4": ["--ensemble", "lora", "--members", "4"],
    "full1": ["--ensemble", "single", "--full"],
    "lora1_lr1e-3_2ep": ["--ensemble", "single", "--lora", "--lr", "1e-3", "--epochs", "2"],
    "full1_lr5e-5": ["--ensemble", "single", "--full", "--lr", "5e-5"],
    "lora1_lr1e-3": ["--ensemble", "single", "--lora", "--lr", "1e-3"],
    "lora1_lr1e-3_bf16": ["--ensemble", "single", "--lora", "--lr", "1e-3", "--precision", "bf16"],
    "lora4_lr1e-3_bf16": [
        "--ensemble",
        "lora",
        "--members",
        "4",
        "--lr",
        "1e-3",
        "--precision",
        "bf16",
    ],
    "lora1_r4_lr1e-3": ["--ensemble", "single", "--lora", "--lora-r", "4", "--lora-alpha", "8",
                        "--lr", "1e-3"],
    "lora1_r64_lr1e-3": ["--ensemble", "single", "--lora", "--lora-r", "64", "--lora-alpha",
                         "128", "--lr", "1e-3"],
    "top2_lr1e-4_3ep": ["--ensemble", "single", "--full", "--train-top-layers", "2", "--lr",
                        "1e-4", "--epochs", "3"],
    "top1_lr1e-4_3ep": ["--ensemble", "single", "--full", "--train-top-layers", "1", "--lr",
                        "1e-4", "--epochs", "3"],
    "top2_multihead4_lr1e-4_3ep": ["--ensemble", "multihead", "--members", "4", "--full",
                                   "--train-top-layers", "2", "--lr", "1e-4", "--epochs", "3"],
    "top2_independent4_lr1e-4_3ep": ["--ensemble", "independent", "--members", "4", "--full",
                                     "--train-top-layers", "2", "--lr", "1e-4", "--epochs", "3"],
}  # fmt: skip
"""Name → the flags that make the setting (LoRA r=16 unless --full; default lr: 1e-4 LoRA,
1e-5 full). Flags given here come after the common ones, so they win."""


def write_pairs(pairs, path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}))
            f.write("\n")


def flag_value(flags: list[str], flag: str, default: str) -> str:
    """The value of the last ``flag`` in ``flags``, else ``default``."""
    values = [flags[i + 1] for i, f in enumerate(flags[:-1]) if f == flag]
    return values[-1] if values else default


def log_gaps(log: str) -> float:
    """Longest gap (s) between the `elapsed m:ss` stamps of consecutive progress lines."""
    stamps = []
    for m in re.finditer(r"elapsed (\d+):(\d\d)(?::(\d\d))?", log):
        a, b, c = m.groups()
        stamps.append(int(a) * 3600 + int(b) * 60 + int(c) if c else int(a) * 60 + int(b))
    return max((b - a for a, b in itertools.pairwise(stamps)), default=float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--settings", default="lora1,multihead4")
    ap.add_argument("--epochs", default="1")
    ap.add_argument("--max-length", default="128")
    ap.add_argument("--batch-size", default="16")
    args = ap.parse_args()
    pairs, _ = load_hh()
    train, test = split(pairs)
    frozen = json.loads((RESULTS / "eval_hh.json").read_text())
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_pairs(train, tmp / "train.jsonl")
        write_pairs(test, tmp / "test.jsonl")
        for name in args.settings.split(","):
            out, log = tmp / name, tmp / f"{name}.log"
            cmd = [
                sys.executable, "-m", "rewardhedge", "finetune", "--backbone", "minilm",
                "--data", str(tmp / "train.jsonl"), "--eval-data", str(tmp / "test.jsonl"),
                "--out", str(out), "--max-length", args.max_length,
                "--batch-size", args.batch_size, "--epochs", args.epochs,
                *SETTINGS[name],
            ]  # fmt: skip
            t0 = time.perf_counter()
            with log.open("w") as f:
                proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True)
            wall = time.perf_counter() - t0
            text = log.read_text()
            if proc.returncode != 0:
                sys.exit(f"{name} failed ({proc.returncode}):\n{text[-3000:]}")
            metrics = json.loads((out / "eval.json").read_text())
            rows[name] = {
                "flags": SETTINGS[name],
                "common": {k: getattr(args, k) for k in ("epochs", "max_length", "batch_size")},
                "wall_s": wall,
                "epochs": float(flag_value(SETTINGS[name], "--epochs", args.epochs)),
                "accuracy": metrics["pairwise_accuracy"],
                "misorder_auroc": {
                    u: v.get("misorder_auroc") for u, v in metrics.get("uncertainty", {}).items()
                },
                "accuracy_ci": [metrics["accuracy_ci_low"], metrics["accuracy_ci_high"]],
                "max_log_gap_s": log_gaps(text),
                "progress_lines": len(re.findall(r"step \d+/\d+", text)),
                "log_tail": text.strip().splitlines()[-3:],
            }
            r = rows[name]
            print(
                f"{name}: wall {wall:.0f}s, accuracy {r['accuracy']:.3f} "
                f"[{r['accuracy_ci'][0]:.3f}, {r['accuracy_ci'][1]:.3f}], "
                f"longest gap between log lines {r['max_log_gap_s']}s",
                flush=True,
            )
    out = {
        "benchmark": "finetune_cpu",
        "machine": f"{platform.machine()}, {platform.platform()}",
        "data": {"n_train": len(train), "n_test": len(test)},
        "args": vars(args),
        "frozen_default": {
            "accuracy": frozen["accuracy"]["value"],
            "source": "bench/results/eval_hh.json",
        },
        "settings": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "finetune_cpu.json"
    if path.exists():  # settings run separately accumulate; a setting run again is replaced
        out["settings"] = json.loads(path.read_text()).get("settings", {}) | rows
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
