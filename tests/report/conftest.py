"""A realistic synthetic overoptimisation-lab JSON (docs/lab-json.md) and an eval JSON.

Gold curves follow Gao et al.'s best-of-n form ``g0 + d (α − β d)``, ``d = sqrt(KL)``,
plus per-seed noise: the single model peaks early and falls, the ensemble later,
WCO/UWO later still. Proxy curves rise with n. Numbers are deterministic.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

# (model, aggregation, params, label, alpha, beta, has_fit)
DEFAULT_CURVES: list[tuple[str, str, dict[str, float], str, float, float, bool]] = [
    ("single", "mean", {}, "single · mean", 0.9, 0.55, True),
    ("ensemble", "mean", {}, "ensemble · mean", 1.0, 0.40, True),
    ("ensemble", "wco", {}, "ensemble · WCO", 0.85, 0.25, True),
    ("ensemble", "uwo", {"lam": 0.5}, "ensemble · UWO λ=0.5", 0.9, 0.30, False),
]
EXTRA_CURVES = [
    ("ensemble", "uwo", {"lam": 2.0}, "ensemble · UWO λ=2", 0.8, 0.22, True),
    ("ensemble", "lcb", {"beta": 1.0}, "ensemble · LCB β=1", 0.82, 0.24, True),
    ("ensemble", "brme", {"lam": 0.5}, "ensemble · BRME λ=0.5", 0.95, 0.33, True),
]
SCRIPT = "<script>alert('pwned')</script>"


def kl_of_n(n: float) -> float:
    return math.log(n) - (n - 1) / n


def n_of_kl(kl: float) -> float:
    lo, hi = 1.0, 1e9
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if kl_of_n(mid) < kl else (lo, mid)
    return lo


def _iqm(x: np.ndarray) -> float:
    x = np.sort(x)
    k = len(x) // 4
    return float(x[k : len(x) - k].mean()) if len(x) > 2 else float(x.mean())


def _stats(per_seed: np.ndarray) -> dict[str, list[float]]:
    spread = per_seed.std(axis=0) + 0.03
    mean = per_seed.mean(axis=0)
    iqm = np.array([_iqm(per_seed[:, j]) for j in range(per_seed.shape[1])])
    return {
        "iqm": [round(float(v), 4) for v in iqm],
        "mean": [round(float(v), 4) for v in mean],
        "ci_low": [round(float(v), 4) for v in iqm - 1.5 * spread],
        "ci_high": [round(float(v), 4) for v in iqm + 1.5 * spread],
    }


def make_lab(
    ns: list[int] | None = None, seeds: int = 2, curves: list[tuple] | None = None
) -> dict[str, Any]:
    """A lab JSON with ``len(curves)`` curves over ``ns`` and ``seeds`` seeds."""
    ns = ns or [1, 2, 4, 8]
    curves = DEFAULT_CURVES if curves is None else curves
    rng = np.random.default_rng(7)
    kl = np.array([kl_of_n(n) for n in ns])
    d = np.sqrt(kl)
    out_curves = []
    for j, (model, agg, params, label, a, b, has_fit) in enumerate(curves):
        g0 = -0.2
        gold_true = g0 + d * (a - b * d)
        per_seed = gold_true + rng.normal(0, 0.04, size=(seeds, len(ns)))
        shrink = {"mean": 1.0, "wco": 0.7, "uwo": 0.8, "lcb": 0.75, "brme": 0.85}[agg]
        proxy_true = 0.3 + shrink * (1.3 + 0.1 * j) * d
        proxy_seed = proxy_true + rng.normal(0, 0.05, size=(seeds, len(ns)))
        gold = _stats(per_seed)
        peak_idx = int(np.argmax(gold["iqm"]))
        peak_kl = (a / (2 * b)) ** 2
        fit = None
        if has_fit:
            fit = {
                "alpha": a,
                "beta": b,
                "peak_kl": round(peak_kl, 4),
                "peak_n": round(n_of_kl(peak_kl), 2),
                "peak_gold": round(g0 + a * a / (4 * b), 4),
                "r2": round(0.9 + 0.01 * j, 3),
            }
        out_curves.append(
            {
                "model": model,
                "aggregation": agg,
                "params": params,
                "label": label,
                "gold": gold,
                "proxy": _stats(proxy_seed),
                "per_seed_gold": [[round(float(v), 4) for v in row] for row in per_seed],
                "rank_corr": [round(0.62 + 0.04 * j - (0.11 - 0.015 * j) * k, 3) for k in kl],
                "fit": fit,
                "peak_n_observed": ns[peak_idx],
                "gold_at_max_n": {
                    "iqm": gold["iqm"][-1],
                    "ci_low": gold["ci_low"][-1],
                    "ci_high": gold["ci_high"][-1],
                },
            }
        )
    mids = [round(0.05 + 0.1 * i, 2) for i in range(10)]
    counts = [4, 20, 55, 90, 130, 130, 90, 55, 20, 0]

    def reliability(name: str, bend: float, ece: float) -> dict[str, Any]:
        pred = [round(m + 0.01, 3) if c else None for m, c in zip(mids, counts, strict=True)]
        frac = [round(0.5 + (p - 0.5) * bend, 3) if p is not None else None for p in pred]
        return {
            "name": name,
            "bin_mid": mids,
            "mean_pred": pred,
            "frac_pos": frac,
            "count": counts,
            "ece": ece,
        }

    return {
        "kind": "rewardhedge.overopt",
        "version": 1,
        "created": "2026-11-23T12:00:00Z",
        "config": {
            "n_prompts": 150,
            "pool_size": max(ns),
            "seeds": list(range(seeds)),
            "members": 5,
            "label_noise": 0.25,
        },
        "ns": ns,
        "kl": [round(float(k), 4) for k in kl],
        "curves": out_curves,
        "accuracy": [
            {
                "name": "single (K=1)",
                "accuracy": 0.7123,
                "ci_low": 0.6811,
                "ci_high": 0.7432,
                "log_loss": 0.5987,
                "n": 600,
            },
            {
                "name": "ensemble (K=5)",
                "accuracy": 0.7456,
                "ci_low": 0.7101,
                "ci_high": 0.7789,
                "log_loss": 0.5512,
                "n": 600,
            },
            {
                "name": "length baseline (longer)",
                "accuracy": 0.6234,
                "ci_low": 0.5901,
                "ci_high": 0.6612,
                "log_loss": None,
                "n": 600,
            },
            {
                "name": "length baseline (shorter)",
                "accuracy": 0.3766,
                "ci_low": 0.3388,
                "ci_high": 0.4099,
                "log_loss": None,
                "n": 600,
            },
        ],
        "reliability": [
            reliability("single (K=1)", 0.7, 0.0612),
            reliability("ensemble (K=5)", 0.92, 0.0214),
        ],
        "examples": [
            {
                "prompt": f"What is 17 + 25? {SCRIPT}",
                "n": max(ns),
                "aggregation": "uwo",
                "single": {
                    "response": "Great question! " * 6 + "The answer is 41. </div><b>bold</b>",
                    "gold": -1.2,
                    "proxy": 3.1,
                    "properties": {"correct": False, "length_words": 80, "hedging": True},
                },
                "ensemble": {
                    "response": "17 + 25 = 42.",
                    "gold": 1.0,
                    "proxy": 2.2,
                    "properties": {"correct": True, "length_words": 5, "hedging": False},
                },
                "best": {"response": "The answer is 42.", "gold": 1.5},
            },
            {
                "prompt": 'List 3 colours & explain "why".',
                "n": max(ns),
                "aggregation": "wco",
                "single": {
                    "response": "red, green",
                    "gold": -0.3,
                    "proxy": 1.4,
                    "properties": {"correct": False, "length_words": 2},
                },
                "ensemble": {
                    "response": "red, green, blue",
                    "gold": 0.9,
                    "proxy": 1.1,
                    "properties": {"correct": True, "length_words": 3},
                },
                "best": {"response": "red, green, blue", "gold": 0.9},
            },
        ],
        "timing": {
            "generate_s": 1.04,
            "encode_s": 61.5,
            "train_s": 10.2,
            "bon_s": 0.8,
            "total_s": 80.3,
        },
        "machine": "2-core CPU (x86_64), torch 2.13.0+cpu",
    }


def make_eval() -> dict[str, Any]:
    """A dict shaped like ``evaluate_pairwise``'s output, with two subsets."""
    return {
        "primary_metric": "pairwise_accuracy",
        "greater_is_better": True,
        "n_pairs": 1200,
        "pairwise_accuracy": 0.6875,
        "accuracy_ci_low": 0.6612,
        "accuracy_ci_high": 0.7141,
        "ci_level": 0.95,
        "ties": "half",
        "log_loss": 0.6012,
        "brier": 0.2087,
        "mean_margin": 0.4321,
        "n_ties": 3,
        "n_members": 5,
        "member_accuracy_mean": 0.6701,
        "member_accuracy_min": 0.6533,
        "member_accuracy_max": 0.6842,
        "mean_epistemic_std": 0.1234,
        "length_baseline": {
            "longer": {"accuracy": 0.5511, "ci_low": 0.5233, "ci_high": 0.5799},
            "shorter": {"accuracy": 0.4489, "ci_low": 0.4201, "ci_high": 0.4767},
        },
        "length_reward_corr": 0.2101,
        "subsets": {
            "harmless <b>": {"n": 700, "accuracy": 0.7011, "ci_low": 0.6654, "ci_high": 0.7352},
            "helpful": {"n": 500, "accuracy": 0.6684, "ci_low": 0.6262, "ci_high": 0.7091},
        },
    }


@pytest.fixture(scope="session")
def factory() -> SimpleNamespace:
    """The builders and constants of this module (test modules cannot import a conftest)."""
    return SimpleNamespace(
        make_lab=make_lab,
        make_eval=make_eval,
        SCRIPT=SCRIPT,
        DEFAULT_CURVES=DEFAULT_CURVES,
        EXTRA_CURVES=EXTRA_CURVES,
    )


@pytest.fixture(scope="session")
def lab_report(tmp_path_factory) -> tuple[Any, str]:
    """The default synthetic lab rendered once: ``(path, html text)``."""
    from rewardhedge.report import render_report

    path = render_report(make_lab(), tmp_path_factory.mktemp("report") / "report.html")
    return path, path.read_text(encoding="utf-8")
