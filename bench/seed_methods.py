"""One table for issue 21's seed methods, collected from the benchmarks that measured them
(no new runs): the mislabel audit, influence against retraining, the length-decoupled
reward, rating objectives, the general preference model and Lipschitz heads.

Each row names the benchmark that wrote the numbers (its JSON in bench/results holds the
settings, the machine and the per-seed values). Run the benchmarks first:

    python bench/audit.py; python bench/influence.py; python bench/length_decoupled.py
    python bench/ratings.py; python bench/general_preference.py; python bench/spectral_norm.py
    python bench/seed_methods.py   # writes bench/results/seed_methods.json, prints the table
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import mean
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import cell

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict[str, Any]:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run bench/{name}.py first.")
    return json.loads(path.read_text(encoding="utf-8"))


def verdict(targets: dict[str, bool]) -> str:
    """Each target's name with ``met`` or ``not met``."""
    return ", ".join(f"{k} {'met' if v else 'not met'}" for k, v in targets.items())


def audit_row(d: dict[str, Any]) -> dict[str, Any]:
    runs = d["sandbox"]

    def at(th: str, what: str) -> float:
        return mean([r["vs_flips"]["thresholds"][th][what] for r in runs])

    def acc(name: str) -> float:
        return mean([r["retrained_gold_accuracy"][name]["accuracy"] for r in runs])

    cleaned = {k: acc(k) for k in runs[0]["retrained_gold_accuracy"] if "@" in k or k == "original"}
    best = max((k for k in cleaned if k != "original"), key=cleaned.get)
    cleaned_runs = [v for r in runs for k, v in r["retrained_gold_accuracy"].items() if "@" in k]
    helped = sum(v["vs_original"]["ci_low"] > 0 for v in cleaned_runs)
    total = len(cleaned_runs)
    return {
        "method": "mislabel audit (cross-fitted votes)",
        "benchmark": "audit",
        "data": f"sandbox, 25% flipped labels, {len(runs)} label seeds; HH harmless",
        "result": (
            f"flags @0.5: precision {at('0.5', 'precision'):.2f}, recall "
            f"{at('0.5', 'recall'):.2f}; @0.7: {at('0.7', 'precision'):.2f} / "
            f"{at('0.7', 'recall'):.2f}; AUROC {mean([r['vs_flips']['auroc'] for r in runs]):.2f}; "
            f"gold accuracy retrained: original {cleaned['original']:.3f}, best cleaned "
            f"({best}) {cleaned[best]:.3f}; HH: {d['hh']['n_flagged']} of "
            f"{d['hh']['n_pairs']} flagged"
        ),
        "verdict": "flags enriched in flips: "
        + ("met" if at("0.5", "lift") > 1.5 else "not met")
        + "; a cleaned retrain better than the original with its paired CI above 0 in "
        f"{helped} of {total} (seed, action) runs",
    }


def influence_row(d: dict[str, Any]) -> dict[str, Any]:
    s = d["summary"]
    return {
        "method": "influence of training pairs",
        "benchmark": "influence",
        "data": "sandbox, 300 pairs, 60 leave-one-out refits",
        "result": (
            f"Spearman vs retraining {s['spearman_mean']:.3f} (min {s['spearman_min']:.3f}); "
            f"one explanation {s['explain_s_median']:.2f} s vs one refit "
            f"{s['refit_s_median']:.1f} s"
        ),
        "verdict": f"Spearman ≥ 0.9: {'met' if s['spearman_mean'] >= 0.9 else 'not met'}",
    }


def length_row(d: dict[str, Any]) -> dict[str, Any]:
    m, diff = d["models"], d["length_head_minus_default"]
    lh, df = m["length_head"], m["default"]
    return {
        "method": "length-decoupled reward (ODIN length head)",
        "benchmark": "length_decoupled",
        "data": "sandbox, padded copies of held-out responses, best-of-32 pools",
        "result": (
            f"padded copy rewarded higher {lh['padding']['share_rises']['mean']:.2f} vs "
            f"{df['padding']['share_rises']['mean']:.2f}; length-matched accuracy "
            f"{lh['length_matched_accuracy']['mean']:.3f} vs "
            f"{df['length_matched_accuracy']['mean']:.3f}; length–reward Spearman "
            f"{lh['length_reward_spearman']['spearman']:.2f} vs "
            f"{df['length_reward_spearman']['spearman']:.2f}; best-of-32 gold "
            f"{lh['best_of_n']['gold']['mean']:.2f} vs {df['best_of_n']['gold']['mean']:.2f} "
            f"(+{diff['best_of_n_gold']['diff']:.2f} [{diff['best_of_n_gold']['ci_low']:.2f}, "
            f"{diff['best_of_n_gold']['ci_high']:.2f}]); accuracy {lh['accuracy']['mean']:.3f} "
            f"vs {df['accuracy']['mean']:.3f}"
        ),
        "verdict": verdict(d["targets"])
        + f"; overall accuracy {cell(diff['accuracy'], '+.3f', key='diff')}",
    }


def ratings_row(d: dict[str, Any]) -> dict[str, Any]:
    m = d["models"]
    accs = ", ".join(
        f"{k} {m[k]['accuracy']['mean']:.3f}"
        for k in ("bt", "regression", "bt_regression", "hl_gauss")
    )
    return {
        "method": "rating objectives (regression, BT + regression, HL-Gauss)",
        "benchmark": "ratings",
        "data": "sandbox, gold as noisy ratings (a noisier known subset)",
        "result": (
            f"accuracy {accs}; BT on the ratings' order {m['bt_rating_order']['accuracy']['mean']:.3f}; "
            f"HL-Gauss aleatoric AUROC for the noisy subset "
            f"{cell(m['hl_gauss']['aleatoric']['auroc_noisy'])}"
        ),
        "verdict": verdict(d["targets"])
        + f"; HL-Gauss mean variance {m['hl_gauss']['aleatoric']['mean_other']:.2f} on the "
        "clean subset (rating noise variance 0.06: over-dispersed)",
    }


def gpm_row(d: dict[str, Any]) -> dict[str, Any]:
    c, s = d["cyclic"], d["sandbox"]
    return {
        "method": "general preference model",
        "benchmark": "general_preference",
        "data": "rock–paper–scissors cycles; sandbox",
        "result": (
            f"cyclic: GPM {c['gpm']['accuracy']:.3f} vs BT {c['bt']['accuracy']:.3f}; sandbox: "
            f"GPM {s['gpm']['accuracy']:.3f} vs BT {s['bt']['accuracy']:.3f}"
        ),
        "verdict": verdict(d["targets"]),
    }


def spectral_row(d: dict[str, Any]) -> dict[str, Any]:
    sb, hh = d["sandbox"]["estimators"], d["hh"]["estimators"]
    parts = []
    for name in ("c: mlp K=1 SN + Laplace", "g: mlp K=1 SN 0.25 + Laplace", "d: mlp K=5"):
        if name not in sb:
            continue
        auroc = hh[name]["ood_response_epistemic_auroc"]
        parts.append(
            f"{name.split(': ')[1]}: HH OOD AUROC {auroc:.2f}, best-of-32 gold "
            f"{sb[name]['best_of_n_gold_mean']['mean']:.2f}, fit × "
            f"{sb[name]['fit_ratio_to_a']:.1f}"
        )
    met = d["targets"]
    bound = d["settings"]["estimators"]["c: mlp K=1 SN + Laplace"]["head"]["spectral_norm"]
    sigmas = [
        v
        for block in (sb, hh)
        for s in block["c: mlp K=1 SN + Laplace"]["seeds"]
        for v in s.get("hidden_sigma_max") or []
    ]
    slack = f"; the bound {bound:g} never bound (trained σ_max {min(sigmas):.2f}–{max(sigmas):.2f})"
    return {
        "method": "Lipschitz (spectral-norm) heads",
        "benchmark": "spectral_norm",
        "data": "sandbox; HH harmless (OOD: sandbox)",
        "result": "; ".join(parts),
        "verdict": verdict(met) + (slack if sigmas and max(sigmas) < bound else ""),
    }


def main() -> None:
    rows = [
        audit_row(load("audit")),
        influence_row(load("influence")),
        length_row(load("length_decoupled")),
        ratings_row(load("ratings")),
        gpm_row(load("general_preference")),
        spectral_row(load("spectral_norm")),
    ]
    (RESULTS / "seed_methods.json").write_text(
        json.dumps({"benchmark": "seed_methods", "rows": rows}, indent=2, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    print("| method | benchmark | data | result | verdict |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | `{r['benchmark']}` | {r['data']} | {r['result']} | {r['verdict']} |"
        )


if __name__ == "__main__":
    main()
