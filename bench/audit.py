"""Mislabel audit (docs/audit.md): does the cross-fitted suspicion find known label flips,
and does a model retrained on the cleaned labels do better against gold?

Settings, fixed before any result was seen:

- sandbox: ``SandboxConfig()`` defaults (3000 training comparisons, Bradley-Terry labels
  at temperature 1, then 25% of labels flipped), label seeds 0, 1, 2; the known flips are
  the flip draws, reproduced from the sandbox's seed scheme and checked against its labels;
  also reported against the gold order (BT noise and flips together; gold ties left out);
- model: ``EnsembleConfig()`` (K=5 linear heads on frozen MiniLM, dual pooling) with
  calibration off (``calibration_folds=0``: a temperature changes no vote, no flag and no
  accuracy); audit: 5 folds by prompt, fold seed 0;
- thresholds on the suspicion: 0.5 (the default), 0.6, 0.7, 0.8, 0.9: precision, recall,
  lift over the base rate, hypergeometric p-value, and the threshold-free AUROC; the same
  for the in-sample suspicion of a model trained on all pairs (the paper's variant, not
  cross-fitted), to show what cross-fitting changes;
- retraining: drop and flip at thresholds 0.5 and 0.7, plus two oracles (drop the true
  flips; undo them), each a fresh model on the result; added with soft labels (fixed
  before their first run): soft at 0.5 and 0.7, each suspect labelled with its held-out
  probability of the label; accuracy on the sandbox's
  gold-ordered test pairs (ties left out) with a 95% bootstrap CI and the paired bootstrap
  test against the model trained on the original labels;
- HH-RLHF harmless test (../shared/data, read in place): the same audit at the default
  threshold; how many pairs it flags, and as examples the 5 most suspicious pairs and 3
  flagged pairs drawn at random (seed 0).

Usage: python bench/audit.py [--label-seeds 0 1 2] [--no-hh]
Writes bench/results/audit.json and prints the README row.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardhedge.config import EnsembleConfig, UncertaintyConfig
from rewardhedge.data.sandbox import SandboxConfig, generate_sandbox
from rewardhedge.encoders import build_cached_encoder
from rewardhedge.estimators.audit import AuditConfig, audit_pairs
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.evaluate import bootstrap_ci, paired_bootstrap_test, pairwise_correct
from rewardhedge.evaluate.audit import PreferenceStrength, apply_action, flag_enrichment, flip_pair
from rewardhedge.types import sigmoid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine
from hh_data import DATA, load_hh

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
RETRAIN_THRESHOLDS = (0.5, 0.7)
FOLDS = 5
CONFIG = EnsembleConfig(uncertainty=UncertaintyConfig(calibration_folds=0))
N_TOP, N_RANDOM = 5, 3


def known_flips(sandbox, label_seed: int) -> np.ndarray:
    """`(n,)` bool: which training labels the sandbox flipped after the BT draw.

    ``Sandbox.label_wins`` draws ``a_wins`` (BT) and then ``flips`` from one generator;
    the same two draws are reproduced here and checked against the labels it returns."""
    cfg = sandbox.config
    rng = np.random.default_rng([cfg.seed, label_seed, 0, 7])
    gaps = np.array([c.a.gold - c.b.gold for c in sandbox.train])
    a_wins = rng.random(gaps.shape) < sigmoid(gaps / cfg.temperature)
    flips = rng.random(gaps.shape) < cfg.flip_rate
    if not np.array_equal(a_wins ^ flips, sandbox.label_wins("train", label_seed)):
        raise RuntimeError("the reproduced flip draws do not match the sandbox's labels")
    return flips


def accuracy(model: EnsembleRewardModel, test) -> np.ndarray:
    est = model.compare(test)
    return pairwise_correct(est.chosen.mean, est.rejected.mean)


def summary_of(correct: np.ndarray, reference: np.ndarray | None = None) -> dict[str, Any]:
    low, high = bootstrap_ci(correct, reps=2000, seed=0)
    out: dict[str, Any] = {"accuracy": float(correct.mean()), "ci": [low, high]}
    if reference is not None:
        out["vs_original"] = paired_bootstrap_test(correct, reference, reps=10000).to_dict()
    return out


def quality(suspicion: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """Per threshold: precision, recall, lift, p-value against ``truth`` on ``mask``."""
    s, t = suspicion[mask], truth[mask]
    rows = {f"{th:g}": flag_enrichment(s > th, t) for th in THRESHOLDS}
    return {"auroc": flag_enrichment(s > 0.5, t, s)["auroc"], "thresholds": rows}


def sandbox_run(sandbox, test, label_seed: int, encoder) -> dict[str, Any]:
    pairs = sandbox.labelled_pairs("train", label_seed)
    flips = known_flips(sandbox, label_seed)
    decided = np.array([c.a.gold != c.b.gold for c in sandbox.train])
    against_gold = np.array(
        [
            (p.chosen == c.a.text) != (c.a.gold > c.b.gold)
            for p, c in zip(pairs, sandbox.train, strict=True)
        ]
    )
    t0 = time.perf_counter()
    result = audit_pairs(pairs, CONFIG, AuditConfig(folds=FOLDS), encoder=encoder)
    t_audit = time.perf_counter() - t0
    s = result.suspicion
    print(f"seed {label_seed}: audit {t_audit:.0f}s, flagged {result.flagged.mean():.3f}")

    t0 = time.perf_counter()
    original = EnsembleRewardModel(CONFIG, encoder=encoder).fit(pairs)
    est = original.compare(pairs)
    in_sample = PreferenceStrength.from_estimates(est.chosen, est.rejected).suspicion
    base = accuracy(original, test)
    retrained: dict[str, Any] = {"original": summary_of(base) | {"n_pairs": len(pairs)}}
    variants: dict[str, list] = {
        "oracle_drop": [p for p, f in zip(pairs, flips, strict=True) if not f],
        "oracle_undo": [flip_pair(p) if f else p for p, f in zip(pairs, flips, strict=True)],
    }
    for th in RETRAIN_THRESHOLDS:
        for action in ("drop", "flip", "soft"):
            variants[f"{action}@{th:g}"] = apply_action(pairs, s > th, action, 1.0 - s)
    for name, cleaned in variants.items():
        model = EnsembleRewardModel(CONFIG, encoder=encoder).fit(cleaned)
        retrained[name] = summary_of(accuracy(model, test), base) | {"n_pairs": len(cleaned)}
        print(f"  {name}: accuracy {retrained[name]['accuracy']:.3f}")
    t_retrain = time.perf_counter() - t0

    return {
        "label_seed": label_seed,
        "n_pairs": len(pairs),
        "n_flips": int(flips.sum()),
        "n_against_gold": int(against_gold[decided].sum()),
        "n_decided": int(decided.sum()),
        "held_out_agreement": result.summary()["held_out_agreement"],
        "vs_flips": quality(s, flips, np.ones(len(pairs), dtype=bool)),
        "vs_gold": quality(s, against_gold, decided),
        "in_sample_vs_flips": quality(in_sample, flips, np.ones(len(pairs), dtype=bool)),
        "retrained_gold_accuracy": retrained,
        "seconds": {"audit": t_audit, "retraining": t_retrain} | result.seconds,
    }


def clip(text: str, n: int, tail: bool = False) -> str:
    if len(text) <= n:
        return text
    return "…" + text[-n:] if tail else text[:n] + "…"


def hh_run(encoder) -> dict[str, Any]:
    pairs, report = load_hh()
    t0 = time.perf_counter()
    result = audit_pairs(pairs, CONFIG, AuditConfig(folds=FOLDS), encoder=encoder)
    seconds = time.perf_counter() - t0
    s = result.suspicion
    flagged = np.flatnonzero(result.flagged)
    top = list(np.argsort(-s)[:N_TOP])
    rest = np.setdiff1d(flagged, top)
    drawn = list(
        np.random.default_rng(0).choice(rest, size=min(N_RANDOM, rest.size), replace=False)
    )

    def example(i: int, why: str) -> dict[str, Any]:
        p = result.pairs[i]
        return {
            "why": why,
            "id": p.id,
            "prompt_end": clip(p.prompt, 300, tail=True),
            "chosen": clip(p.chosen, 400),
            "rejected": clip(p.rejected, 400),
            "suspicion": float(s[i]),
        } | result.held_out.row(i)

    summary = result.summary()
    print(f"HH: flagged {summary['n_flagged']} of {len(pairs)} in {seconds:.0f}s")
    return {
        "data": str(DATA.relative_to(ROOT.parent)),
        "n_pairs": len(pairs),
        "n_skipped": report.n_rejected,
        "threshold": AuditConfig().threshold,
        "n_flagged": summary["n_flagged"],
        "share_flagged": summary["share_flagged"],
        "held_out_agreement": summary["held_out_agreement"],
        "suspicion_quantiles": {
            f"q{q}": float(np.quantile(s, q / 100)) for q in (10, 25, 50, 75, 90)
        },
        "n_flagged_at": {f"{th:g}": int((s > th).sum()) for th in THRESHOLDS},
        "examples": [example(int(i), "most suspicious") for i in top]
        + [example(int(i), "flagged, drawn at random") for i in drawn],
        "seconds": {"total": seconds} | result.seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-hh", action="store_true")
    args = parser.parse_args()
    t_start = time.perf_counter()
    encoder = build_cached_encoder(CONFIG.encoder)  # the user cache, as the CLI uses
    sandbox = generate_sandbox(SandboxConfig())
    test = sandbox.gold_pairs("test")
    runs = [sandbox_run(sandbox, test, seed, encoder) for seed in args.label_seeds]
    hh = None if args.no_hh else hh_run(encoder)
    out = {
        "benchmark": "audit",
        "settings": {
            "sandbox": SandboxConfig().to_dict(),
            "label_seeds": args.label_seeds,
            "model": CONFIG.to_dict(),
            "folds": FOLDS,
            "thresholds": list(THRESHOLDS),
            "retrain_thresholds": list(RETRAIN_THRESHOLDS),
            "n_test_pairs": len(test),
        },
        "machine": machine(),
        "sandbox": runs,
        "hh": hh,
        "seconds_total": time.perf_counter() - t_start,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "audit.json"
    path.write_text(json.dumps(json_safe(out), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path}")
    print(readme_row(out))


def json_safe(value: Any) -> Any:
    """``value`` with NaN (a precision with nothing flagged) as null: strict JSON."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def readme_row(out: dict[str, Any]) -> str:
    runs = out["sandbox"]

    def mean(get) -> float:
        return float(np.mean([get(r) for r in runs]))

    at = lambda r, th: r["vs_flips"]["thresholds"][th]  # noqa: E731
    acc = lambda r, name: r["retrained_gold_accuracy"][name]["accuracy"]  # noqa: E731
    text = (
        f"| `audit` | sandbox defaults (3000 train pairs, 25% flips), label seeds "
        f"{out['settings']['label_seeds']}; HH-RLHF harmless test | "
        f"flags at 0.5: precision {mean(lambda r: at(r, '0.5')['precision']):.2f}, recall "
        f"{mean(lambda r: at(r, '0.5')['recall']):.2f} against the known flips (base rate "
        f"{mean(lambda r: at(r, '0.5')['base_rate']):.2f}); at 0.7: precision "
        f"{mean(lambda r: at(r, '0.7')['precision']):.2f}, recall "
        f"{mean(lambda r: at(r, '0.7')['recall']):.2f}; AUROC "
        f"{mean(lambda r: r['vs_flips']['auroc']):.2f} (in-sample, not cross-fitted: "
        f"{mean(lambda r: r['in_sample_vs_flips']['auroc']):.2f}); gold accuracy retrained "
        f"original {mean(lambda r: acc(r, 'original')):.3f}, drop@0.5 "
        f"{mean(lambda r: acc(r, 'drop@0.5')):.3f}, flip@0.5 "
        f"{mean(lambda r: acc(r, 'flip@0.5')):.3f}, drop@0.7 "
        f"{mean(lambda r: acc(r, 'drop@0.7')):.3f}, flip@0.7 "
        f"{mean(lambda r: acc(r, 'flip@0.7')):.3f}, soft@0.5 "
        f"{mean(lambda r: acc(r, 'soft@0.5')):.3f}, soft@0.7 "
        f"{mean(lambda r: acc(r, 'soft@0.7')):.3f} (oracle drop "
        f"{mean(lambda r: acc(r, 'oracle_drop')):.3f})"
    )
    hh = out["hh"]
    if hh is not None:
        text += (
            f"; HH: {hh['n_flagged']} of {hh['n_pairs']} pairs flagged at 0.5 "
            f"({hh['share_flagged']:.0%})"
        )
    return text + " | |"


if __name__ == "__main__":
    main()
