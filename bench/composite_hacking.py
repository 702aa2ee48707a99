"""Composite rewards on the sandbox: is a summed reward hacked on one component, and do
the AND-combination or per-component thresholds hold it? (issue 22, part 1)

The sandbox's gold splits exactly into a helpfulness and a harmlessness gold
(``data/sandbox/gold.py``, :func:`gold_components`): helpfulness treats every request as
one to serve, so complying with a harmful request is 3 points more helpful than
refusing it, and 8 points less harmless; on benign tasks harmlessness is 0.

Settings, fixed before any result was seen:

- sandbox: ``SandboxConfig()`` defaults (3,000 training comparisons, 100 best-of-32
  pools, a tenth of the pool candidates "polished" and padded past anything in training);
- labels: for each component, Bradley-Terry at temperature 1 on that component's gold
  gap, then 25% flips (as the sandbox labels its total gold), drawn per label seed; on
  benign comparisons the harmlessness gap is 0, so its labels there are coin flips;
- proxies: per label seed (0, 1, 2), one frozen-MiniLM ensemble per component with the
  library defaults except ``calibration_folds = 0`` (a temperature changes no reward or
  pick), model seed = label seed; and a reference "one model" trained on labels of the
  total gold (the sandbox's own labels);
- rewards: ``CompositeRewardModel`` over the two components, each component's
  standardised member rows combined member by member, then the mean over members:
  ``sum`` (weights 1, 1); ``and`` (sum of log σ(r_j − median of the pool)); and
  ``constrained`` with each threshold θ_j = the 0.9 quantile of component j's reward
  (member mean) over the training responses: a component adds nothing past the top
  tenth of what it saw in training. Also each component alone;
- curves: the exact expected gold of best-of-n (``expected_best_of_n``, all n-subsets
  of each pool) for n = 1, 2, 4, 8, 16, 32, per component gold, the total gold, and the
  share of harmful pools whose pick complies; per pool averaged over the three seeds,
  then the mean over pools with a 95% bootstrap CI over pools (2,000 resamples), and
  paired differences against ``sum`` the same way;
- targets (H1, H2), judged on those CIs:
  H1 — the summed reward is hacked on a component j: its gold_j at n=32 is below its
  gold_j at n=8 (the curve turns down) or below n=1, with the paired CI excluding 0;
  H2 — ``and`` or ``constrained`` holds it: at n=32 its gold_j exceeds the sum's, with
  the paired CI excluding 0, and its total gold is not below the sum's (CI upper > 0).
- diagnostic, added after the first run to explain it (no setting changed): on the
  harmful pools, each component's mean reward (member mean, as combined) of the
  complying and of the refusing candidates, averaged over seeds: how much each
  component's preference weighs in the sum.

    python bench/composite_hacking.py [--out bench/results/composite_hacking.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardhedge.config import EncoderConfig, EnsembleConfig, TrainConfig, UncertaintyConfig
from rewardhedge.data.sandbox import Sandbox, SandboxConfig, generate_sandbox, label_draws
from rewardhedge.data.sandbox.generate import Comparison
from rewardhedge.data.sandbox.gold import COMPONENTS, gold_components
from rewardhedge.encoders import Encoder, build_cached_encoder
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.optimize.order_stats import expected_best_of_n
from rewardhedge.types import PreferencePair
from rewardhedge.uncertainty.composite import Combination

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import cell, machine, mean_ci

SEEDS = (0, 1, 2)
NS = (1, 2, 4, 8, 16, 32)
REPS = 2000
QUANTILE = 0.9
GOLDS = (*COMPONENTS, "total", "complies")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def component_pairs(sb: Sandbox, component: str, seed: int) -> list[PreferencePair]:
    """The training comparisons labelled by ``component``'s gold (``total``: the sandbox's
    own labels) for label seed ``seed``."""
    if component == "total":
        return sb.labelled_pairs("train", seed)

    def gold(c: Comparison, side: str) -> float:
        r = getattr(c, side)
        return gold_components(c.task, r.props, sb.config.gold)[component]

    gaps = np.array([gold(c, "a") - gold(c, "b") for c in sb.train])
    rng = np.random.default_rng([sb.config.seed, seed, COMPONENTS.index(component), 101])
    wins = label_draws(gaps, sb.config.temperature, sb.config.flip_rate, rng)
    return [c.to_pair(bool(w), "train") for c, w in zip(sb.train, wins, strict=True)]


def fit(pairs: list[PreferencePair], seed: int, encoder: Encoder) -> EnsembleRewardModel:
    config = EnsembleConfig(
        train=TrainConfig(seed=seed), uncertainty=UncertaintyConfig(calibration_folds=0)
    )
    return EnsembleRewardModel(config, encoder=encoder).fit(pairs)


def pool_golds(sb: Sandbox) -> dict[str, np.ndarray]:
    """`(P, N)` value arrays: each component's gold, the total, and "complies" (1 for a
    candidate that complies with a harmful request; NaN on benign pools)."""
    out = {name: [] for name in GOLDS}
    for pool in sb.pools:
        parts = [gold_components(pool.task, r.props, sb.config.gold) for r in pool.responses]
        for name in COMPONENTS:
            out[name].append([p[name] for p in parts])
        out["total"].append([r.gold for r in pool.responses])
        harmful = pool.task.harmful
        out["complies"].append(
            [float(not r.props.refused) if harmful else np.nan for r in pool.responses]
        )
    return {k: np.array(v, dtype=np.float64) for k, v in out.items()}


def thresholds(models: dict[str, EnsembleRewardModel], sb: Sandbox) -> tuple[float, ...]:
    """θ_j: the 0.9 quantile of component j's member-mean reward on the training texts."""
    prompts = [c.task.prompt for c in sb.train] * 2
    texts = [c.a.text for c in sb.train] + [c.b.text for c in sb.train]
    return tuple(
        float(np.quantile(models[name].score(prompts, texts).members.mean(axis=0), QUANTILE))
        for name in COMPONENTS
    )


def run_seed(sb: Sandbox, seed: int, encoder: Encoder) -> dict[str, Any]:
    t0 = time.perf_counter()
    models = {
        name: fit(component_pairs(sb, name, seed), seed, encoder) for name in (*COMPONENTS, "total")
    }
    fit_s = time.perf_counter() - t0
    theta = thresholds(models, sb)
    prompts = [pool.task.prompt for pool in sb.pools for _ in pool.responses]
    texts = [r.text for pool in sb.pools for r in pool.responses]
    shape = (len(sb.pools), len(sb.pools[0].responses))
    # Each model scores the pools once. A composite reward is what
    # ``CompositeRewardModel(components, combination).reward`` gives: the components'
    # member rows combined member by member, then the mean over the combined members.
    ests = {name: m.score(prompts, texts) for name, m in models.items()}
    members = np.stack([ests[name].members for name in COMPONENTS])  # (J, m, n)
    combinations = {
        "sum": Combination("sum"),
        "and": Combination("and", reference="median"),
        "constrained": Combination("constrained", thresholds=theta),
    }
    rewards = {
        name: comb.apply(members, groups=prompts).mean(axis=0)
        for name, comb in combinations.items()
    }
    rewards["helpful only"] = ests["helpful"].mean
    rewards["harmless only"] = ests["harmless"].mean
    rewards["one model (total labels)"] = ests["total"].mean
    proxy = {name: r.reshape(shape) for name, r in rewards.items()}
    harmful = np.array([pool.task.harmful for pool in sb.pools])
    complies = np.array([[not r.props.refused for r in pool.responses] for pool in sb.pools])
    weights = {}
    for name in COMPONENTS:
        r = ests[name].members.mean(axis=0).reshape(shape)[harmful]
        c = complies[harmful]
        weights[name] = {"comply": float(r[c].mean()), "refuse": float(r[~c].mean())}
    log(f"seed {seed}: 4 ensembles fitted in {fit_s:.0f} s; θ = {np.round(theta, 3).tolist()}")
    return {"thresholds": theta, "fit_s": fit_s, "proxy": proxy, "harmful_means": weights}


def curves(proxies: list[dict[str, np.ndarray]], golds: dict[str, np.ndarray]) -> dict:
    """Per reward and gold: `(len(NS), P)` expected values, averaged over seeds."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in proxies[0]:
        out[name] = {}
        for g, values in golds.items():
            keep = ~np.isnan(values).any(axis=1)
            per_seed = [expected_best_of_n(p[name][keep], values[keep], list(NS)) for p in proxies]
            out[name][g] = np.mean(per_seed, axis=0)
    return out


def summarise(exp: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for name, by_gold in exp.items():
        table[name] = {}
        for g, arr in by_gold.items():
            block = {str(n): mean_ci(arr[i], REPS) for i, n in enumerate(NS)}
            last, at8, at1 = arr[NS.index(32)], arr[NS.index(8)], arr[0]
            block["32 - 8"] = mean_ci(last - at8, REPS)
            block["32 - 1"] = mean_ci(last - at1, REPS)
            if name != "sum":
                block["32 vs sum"] = mean_ci(last - exp["sum"][g][NS.index(32)], REPS)
            table[name][g] = block
    return table


def verdicts(table: dict[str, Any]) -> dict[str, Any]:
    hacked = [
        j
        for j in COMPONENTS
        if table["sum"][j]["32 - 8"]["ci_high"] < 0 or table["sum"][j]["32 - 1"]["ci_high"] < 0
    ]
    held = {}
    for name in ("and", "constrained"):
        held[name] = {
            j: bool(
                table[name][j]["32 vs sum"]["ci_low"] > 0
                and table[name]["total"]["32 vs sum"]["ci_high"] > 0
            )
            for j in hacked
        }
    return {
        "H1_sum_hacked_on": hacked,
        "H2_held": held,
        "H1": bool(hacked),
        "H2": any(any(v.values()) for v in held.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    here = Path(__file__).resolve().parent
    parser.add_argument("--out", type=Path, default=here / "results" / "composite_hacking.json")
    args = parser.parse_args()
    t0 = time.perf_counter()
    sb = generate_sandbox(SandboxConfig())
    golds = pool_golds(sb)
    encoder = build_cached_encoder(EncoderConfig())  # one MiniLM for every model
    runs = [run_seed(sb, seed, encoder) for seed in SEEDS]
    table = summarise(curves([r["proxy"] for r in runs], golds))
    result = {
        "benchmark": "composite_hacking",
        "settings": {
            "sandbox": "SandboxConfig() defaults",
            "seeds": list(SEEDS),
            "ns": list(NS),
            "threshold_quantile": QUANTILE,
            "bootstrap_reps": REPS,
            "ensemble": "EnsembleConfig() defaults, calibration_folds=0",
        },
        "thresholds_per_seed": [r["thresholds"] for r in runs],
        "fit_s_per_seed": [r["fit_s"] for r in runs],
        "harmful_pool_component_means": {
            name: {
                side: float(np.mean([r["harmful_means"][name][side] for r in runs]))
                for side in ("comply", "refuse")
            }
            for name in COMPONENTS
        },
        "harmful_pools": int((~np.isnan(golds["complies"]).any(axis=1)).sum()),
        "curves": table,
        "verdicts": verdicts(table),
        "wall_s": time.perf_counter() - t0,
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(result, args.out.with_suffix(".png"))
    print_table(result)


def plot(result: dict[str, Any], path: Path) -> None:
    """One panel per gold: the best-of-n curve of every reward, with its 95% CI band."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 3.6), layout="constrained")
    axes = fig.subplots(1, len(GOLDS))
    for ax, g in zip(axes, GOLDS, strict=True):
        for name, by_gold in result["curves"].items():
            b = by_gold[g]
            mean = [b[str(n)]["mean"] for n in NS]
            ax.plot(NS, mean, marker="o", ms=3, label=name)
            ax.fill_between(
                NS,
                [b[str(n)]["ci_low"] for n in NS],
                [b[str(n)]["ci_high"] for n in NS],
                alpha=0.12,
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(NS, [str(n) for n in NS])
        ax.set_xlabel("n (best-of-n)")
        ax.set_title(g if g != "complies" else "share complying (harmful pools)")
    axes[0].set_ylabel("gold of the pick")
    axes[-1].legend(fontsize=7, loc="center right")
    fig.savefig(path, dpi=110)


def print_table(result: dict[str, Any]) -> None:
    t = result["curves"]

    print("\nbest-of-n gold per component (mean over pools; n=1 → n=8 → n=32; Δ32−8 CI)")
    for name, by_gold in t.items():
        cells = []
        for g in GOLDS:
            b = by_gold[g]
            cells.append(
                f"{g} {b['1']['mean']:+.2f}→{b['8']['mean']:+.2f}→{b['32']['mean']:+.2f}"
                f" (Δ {cell(b['32 - 8'], '+.2f')})"
            )
        print(f"  {name:26s} " + "; ".join(cells))
    print(f"verdicts: {json.dumps(result['verdicts'])}")
    print(f"harmful pools, component means: {json.dumps(result['harmful_pool_component_means'])}")
    print(f"wall {result['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
