"""What diverse members cost at scoring time: score-path throughput of each option vs raw.

Options (all MiniLM, ``EnsembleConfig`` defaults otherwise):
- ``raw``: the default model (``dual`` pooling: two sequences per item);
- ``subspace``: ``--diversity subspace`` (the same features, masked per member);
- ``views``: ``--diversity views`` with the default views (ctx_l4, ctx_last,
  ctx_low, all_mean, hash: one sequence per item, pooled five ways);
- ``views_whole``: the same plus ``whole`` (extra windows for responses cut at
  ``max_length``), with K=6 so every view has a member.

Each model is fitted on a few HH training pairs (not timed), then scores the
same held-out HH texts (``score``: tokenise, encode, heads) with a cold
embedding cache (a fresh folder per measurement). Many short rounds
interleave the options (rotating their order) because the shared 2-core
machine is noisy, its load changing within minutes; each option's ratio to
``raw`` is the median over rounds of the per-round ratios. Target: views
options >= 0.8x raw.

Usage: python bench/views_speed.py [--n-texts 60] [--rounds 7]
Writes bench/results/views_speed.json and prints the README row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from rewardhedge import __version__
from rewardhedge.config import (
    DEFAULT_VIEWS,
    DiversityConfig,
    EncoderConfig,
    EnsembleConfig,
    TrainConfig,
    UncertaintyConfig,
)
from rewardhedge.estimators.ensemble import EnsembleRewardModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hh_data import load_hh, split

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def options() -> dict[str, EnsembleConfig]:
    quick = {
        "train": TrainConfig(epochs=5),
        "uncertainty": UncertaintyConfig(calibration_folds=0),
    }
    return {
        "raw": EnsembleConfig(**quick),
        "subspace": EnsembleConfig(**quick, diversity=DiversityConfig(kind="subspace")),
        "views": EnsembleConfig(**quick, diversity=DiversityConfig(kind="views")),
        "views_whole": EnsembleConfig(
            **quick,
            n_members=6,
            encoder=EncoderConfig(views=(*DEFAULT_VIEWS, "whole")),
            diversity=DiversityConfig(kind="views"),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-texts", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    t_start = time.perf_counter()
    load_before = os.getloadavg()

    pairs, _ = load_hh()
    train, test = split(pairs)
    items = test[: args.n_texts // 2]
    prompts = [p.prompt for p in items] * 2
    responses = [p.chosen for p in items] + [p.rejected for p in items]
    n = len(prompts)
    configs = options()

    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for name, cfg in configs.items():
            model = EnsembleRewardModel(cfg, cache_dir=Path(tmp) / "train-cache")
            folders[name] = model.fit(train[:8]).save(Path(tmp) / name)
        seconds: dict[str, list[float]] = {name: [] for name in configs}
        windows: dict[str, int] = {}
        names = list(configs)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                cache = Path(tmp) / f"cache-{name}-{r}"
                model = EnsembleRewardModel.load(folders[name], cache_dir=cache)
                model.score(["warm"], ["up"])  # build the encoder outside the timing
                t0 = time.perf_counter()
                model.score(prompts, responses)
                seconds[name].append(time.perf_counter() - t0)
                enc = model.encoder.encoder
                windows[name] = int(getattr(enc, "n_windows", 0))
                print(f"round {r + 1} {name}: {n / seconds[name][-1]:.2f} texts/s", flush=True)

    results = {}
    for name in names:
        ratios = [raw / mine for raw, mine in zip(seconds["raw"], seconds[name], strict=True)]
        results[name] = {
            "seconds": seconds[name],
            "texts_per_s_median": n / statistics.median(seconds[name]),
            "ratio_to_raw_median": statistics.median(ratios),
            "ratio_to_raw_rounds": ratios,
            "encoder": configs[name].encoder.views or configs[name].encoder.pooling.value,
            "n_members": configs[name].n_members,
            "extra_windows": windows[name],
        }
    out = {
        "benchmark": "views_speed",
        "data": "../shared/data/hh_harmless_test.jsonl (held-out 20%, first texts)",
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads (shared 2-core CPU box)",
        "library_version": __version__,
        "n_texts": n,
        "rounds": args.rounds,
        "options": results,
        "load_average_1_5_15_before_after": [load_before, os.getloadavg()],
        "target": "views options >= 0.8x raw",
        "wall_seconds": time.perf_counter() - t_start,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "views_speed.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    print(readme_row(out))


def readme_row(out: dict) -> str:
    """The README results-table line for this run."""
    o = out["options"]
    cells = "; ".join(
        f"{name} {o[name]['texts_per_s_median']:.1f} texts/s ({o[name]['ratio_to_raw_median']:.2f}×)"
        for name in o
    )
    ok = min(o["views"]["ratio_to_raw_median"], o["views_whole"]["ratio_to_raw_median"]) >= 0.8
    return (
        f"| `views_speed` | HH-RLHF harmless test, {out['n_texts']} held-out texts, MiniLM, "
        f"cold cache, median of {out['rounds']} interleaved rounds | score path: {cells} "
        f"(`whole` ran {o['views_whole']['extra_windows']} extra windows) | "
        f"views ≥ 0.8× raw ({'met' if ok else 'NOT met'}) |"
    )


if __name__ == "__main__":
    main()
