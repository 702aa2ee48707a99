"""Gao et al.'s synthetic setup at laptop scale: a gold reward model labels the pools,
cheap proxies learn from few noisy comparisons of it, best-of-n against the proxies.

Fixed before any run (not tuned after):

- gold model: `rewardhedge train --members 5 --diversity views` on 3,000 clean
  comparisons ordered by the sandbox's own gold (no label noise, ties left out);
- pools: 400 sandbox prompts × 16 candidates, written without gold; the lab labels
  them with `--gold-model` (the gold model's mean reward, cached beside the file);
- proxies: the lab's defaults (frozen multi-view MiniLM; single + bootstrap,
  subspace and views ensembles, K = 5), 5 label seeds, half the prompts for
  training with 4 comparisons each (800), labels on the standardised gold
  (T = 1 standard deviation) with 25% flips.

With ``--finetune`` the proxies are fine-tuned instead (same gold, pools and
labels): MiniLM with its top 2 layers trained (lr 1e-4, 3 epochs, max length
128, batch 16: the best CPU setting of docs/finetune.md), a single model and a
multihead ensemble (K = 4, the trainer's default) and an MC-dropout model, over
3 label seeds (fine-tuning costs minutes per model on 2 cores).

Every step is the real command line in a subprocess, with wall times.

Usage: python bench/lab_gold_model.py [--work /tmp/rh-gold-bench] [--finetune]
Writes bench/results/lab_gold_model.json (lab_gold_model_finetuned.json) and
prints a README row.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_run import run_cli

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
POOL_PROMPTS, POOL_SIZE = 400, 16
FINETUNE = {"train_top_layers": 2, "lr": 1e-4, "epochs": 3, "max_length": 128, "batch_size": 16}
"""The fine-tuned proxies' settings (``--finetune``), fixed before the run."""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/rh-gold-bench"))
    ap.add_argument("--finetune", action="store_true", help="fine-tuned proxies")
    args = ap.parse_args()
    if args.work.exists():
        shutil.rmtree(args.work)
    work = args.work
    work.mkdir(parents=True)
    from rewardhedge.data.sandbox import SandboxConfig, generate_sandbox

    sandbox = generate_sandbox(SandboxConfig(pool_prompts=POOL_PROMPTS, pool_size=POOL_SIZE))
    gold_pairs = sandbox.gold_pairs("train")
    (work / "gold_train.jsonl").write_text(
        "".join(
            json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
            for p in gold_pairs
        )
    )
    (work / "pools.jsonl").write_text(
        "".join(
            json.dumps(
                {"id": p.id, "prompt": p.task.prompt, "candidates": [r.text for r in p.responses]}
            )
            + "\n"
            for p in sandbox.pools
        )
    )
    cache = ["--cache-dir", str(work / "cache")]
    wall = {
        "train_gold": run_cli(
            [
                "train",
                "--data",
                str(work / "gold_train.jsonl"),
                "--out",
                str(work / "gold_rm"),
                "--members",
                "5",
                "--diversity",
                "views",
                *cache,
            ],
            work / "train_gold.log",
        ),
    }
    proxies = ["--seeds", "5"]
    if args.finetune:
        (work / "finetune.json").write_text(json.dumps(FINETUNE))
        proxies = ["--seeds", "3", "--finetune", "minilm", "--finetune-config",
                   str(work / "finetune.json"), "--options", "multihead,mc_dropout",
                   "--members", "4"]  # fmt: skip
    lab = ["overopt", "--pools", str(work / "pools.jsonl"), "--gold-model", str(work / "gold_rm"),
           "--pairs-per-prompt", "4", "--label-scale", "standardize", *proxies,
           "--out", str(work / "lab"), "--no-report", *cache]  # fmt: skip
    wall["lab"] = run_cli(lab, work / "lab.log")
    if not args.finetune:
        wall["lab_rerun_cached_gold"] = run_cli([*lab[:-5], "--out", str(work / "lab2"),
                                                 "--no-report", *cache], work / "lab2.log")  # fmt: skip
    result = json.loads((work / "lab" / "overopt.json").read_text())
    single = next(c for c in result["curves"] if c["model"] == "single")
    out = {
        "benchmark": "lab_gold_model",
        "machine": result["machine"],
        "setup": {
            "gold_model": "rewardhedge train --members 5 --diversity views on "
            f"{len(gold_pairs)} clean sandbox gold comparisons",
            "pools": f"{POOL_PROMPTS} sandbox prompts x {POOL_SIZE} candidates, gold from the model",
            "lab": lab[5:],
            "finetune": FINETUNE if args.finetune else None,
        },
        "wall_s": wall,
        "data": result["data"],
        "timing": result["timing"],
        "ns": result["ns"],
        "paired_n": result["paired_n"],
        "single": {
            "gold_iqm": single["gold"]["iqm"],
            "peak_n": single["peak_n_observed"],
            "gold_at_max_n": single["gold_at_max_n"],
        },
        "curves": [
            {
                "label": c["label"],
                "gold_iqm": c["gold"]["iqm"],
                "peak_n": c["peak_n_observed"],
                "gold_at_max_n": c["gold_at_max_n"],
            }
            for c in result["curves"]
        ],
        "paired": result["paired"],
        "length_controls": result["length_controls"],
        "accuracy": result["accuracy"],
        "diversity": result["diversity"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "lab_gold_model_finetuned.json" if args.finetune else "lab_gold_model.json"
    (RESULTS / name).write_text(json.dumps(out, indent=2) + "\n")
    helps = [r["label"] for r in result["paired"] if r["verdict"] == "helps"]
    hurts = [r["label"] for r in result["paired"] if r["verdict"] == "hurts"]
    g = single["gold"]["iqm"]
    print(json.dumps(wall, indent=1))
    print(
        f"single: gold {g[0]:.2f} → peak {max(g):.2f} at n={single['peak_n_observed']} → "
        f"{g[-1]:.2f} at n={result['ns'][-1]}; helps: {helps or 'none'}; hurts: {hurts or 'none'}"
    )


if __name__ == "__main__":
    main()
