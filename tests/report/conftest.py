"""A realistic synthetic overoptimisation-lab JSON (docs/lab-json.md, versions 1 and 2) and
an eval JSON.

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


# -- lab JSON version 2: one ensemble per diversity option, paired rows, member diversity -----
V2_OPTIONS = ("bootstrap", "subspace", "views")
V2_AGGS = [("mean", {}, "mean"), ("wco", {}, "WCO"), ("uwo", {"lam": 0.5}, "UWO λ=0.5")]
# (diff, ci_low, ci_high, p, verdict) per option × aggregation, in V2_AGGS order: bootstrap ·
# WCO hurts, subspace · UWO and views · UWO help, the rest do not differ.
V2_PAIRED = {
    "bootstrap": [
        (0.05, -0.1, 0.2, 0.52, "no difference"),
        (-0.3, -0.5, -0.1, 0.004, "hurts"),
        (0.0, -0.15, 0.15, 1.0, "no difference"),
    ],
    "subspace": [
        (0.1, -0.05, 0.25, 0.2, "no difference"),
        (0.12, -0.02, 0.26, 0.09, "no difference"),
        (0.25, 0.08, 0.42, 0.0004, "helps"),
    ],
    "views": [
        (0.02, -0.2, 0.24, 0.86, "no difference"),
        (-0.04, -0.3, 0.22, 0.75, "no difference"),
        (0.2, 0.01, 0.39, 0.04, "helps"),
    ],
}
V2_DIVERSITY = {
    "bootstrap": (0.0412, 0.1046, 0.1102, 1.0535),
    "subspace": (0.1873, 0.2511, 0.4023, 1.6021),
    "views": (0.2534, 0.3102, None, None),
}


def make_lab_v2() -> dict[str, Any]:
    """Version 2 (``docs/lab-json.md``): the single model, then 3 options × 3 aggregations."""
    curves = [DEFAULT_CURVES[0]]
    for j, option in enumerate(V2_OPTIONS):
        for k, (agg, params, name) in enumerate(V2_AGGS):
            alpha, beta = 0.9 + 0.05 * j, 0.4 - 0.05 * k - 0.03 * j
            curves.append((option, agg, params, f"{option} · {name}", alpha, beta, True))
    lab = make_lab(curves=curves)
    lab["version"] = 2
    lab["config"]["options"] = [
        {
            "name": o,
            "diversity": {"kind": o, "subspace_fraction": 0.5},
            "all_views": o == "views",
            "summary": f"the {o} option, described at length so that a dump would be cut off",
        }
        for o in V2_OPTIONS
    ]
    lab["config"]["member_norm"] = "standardize"
    lab["config"]["aggregations"] = [{"name": a, **params} for a, params, _ in V2_AGGS]
    lab["paired"] = []
    # Interleaved on purpose: the table groups the rows by option.
    for k, (agg, params, name) in enumerate(V2_AGGS):
        for option in V2_OPTIONS:
            diff, low, high, p, verdict = V2_PAIRED[option][k]
            lab["paired"].append(
                {
                    "model": option,
                    "aggregation": agg,
                    "params": params,
                    "label": f"{option} · {name}",
                    "gold": round(1.0 + diff, 4),
                    "single_gold": 1.0,
                    "diff": diff,
                    "ci_low": low,
                    "ci_high": high,
                    "p_value": p,
                    "n": 300,
                    "reps": 2000,
                    "level": 0.95,
                    "verdict": verdict,
                }
            )
    lab["diversity"] = [
        {
            "model": option,
            "n_members": 5,
            "starc_pairwise_mean": starc,
            "disagreement_in": inside,
            "disagreement_shift": shift,
            "shift_ratio": ratio,
        }
        for option, (starc, inside, shift, ratio) in V2_DIVERSITY.items()
    ]
    single_acc, length_acc = lab["accuracy"][0], lab["accuracy"][2:]
    lab["accuracy"] = [
        single_acc,
        *({**lab["accuracy"][1], "name": f"{o} ensemble (K=5)"} for o in V2_OPTIONS),
        *length_acc,
    ]
    single_rel, ens_rel = lab["reliability"]
    lab["reliability"] = [single_rel] + [
        {**ens_rel, "name": f"{o} ensemble (K=5)"} for o in V2_OPTIONS
    ]
    for ex in lab["examples"]:
        ex["model"] = "views"
    return lab


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
        make_lab_v2=make_lab_v2,
        V2_OPTIONS=V2_OPTIONS,
        V2_PAIRED=V2_PAIRED,
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


# -- the eval JSON's optional blocks (docs/eval-json.md) ---------------------------------------
RB_SECTIONS = {
    "Chat": (0.9123, 358, ["alpacaeval-easy", "alpacaeval-hard", "mt-bench-easy"], []),
    "Chat Hard": (0.6012, 456, ["llmbar-natural", "llmbar-adver-neighbor"], ["mt-bench-hard"]),
    "Safety": (0.7788, 740, ["refusals-dangerous", "xstest-should-refuse", "donotanswer"], []),
    "Reasoning": (0.6534, 1431, ["math-prm", "hep-python"], ["hep-rust"]),
}


def _ci(value: float, half: float = 0.03) -> dict[str, float]:
    return {"value": value, "ci_low": round(value - half, 4), "ci_high": round(value + half, 4)}


def _gold(mean: float, half: float = 0.05) -> dict[str, float]:
    return {"mean": mean, "ci_low": round(mean - half, 4), "ci_high": round(mean + half, 4)}


def make_controls(passed: bool = True) -> dict[str, Any]:
    return {
        "batch_invariance": {
            "n_items": 256,
            "batch_sizes": [1, 64],
            "max_abs_diff": 3.05e-07 if passed else 0.0123,
            "max_rel_diff": 1.2e-07 if passed else 0.0049,
            "identical": False,
            "tolerance": 2.5e-05,
            "within_tolerance": passed,
            "n_order_flips": 0 if passed else 3,
            "n_pairs_checked": 128,
        }
    }


def make_members() -> tuple[dict[str, Any], dict[str, Any]]:
    members = {
        "n_members": 5,
        "tasks": ["harmless <b>", "helpful"],
        "accuracy": [0.6533, 0.6612, 0.6701, 0.6817, 0.6842],
        "mean": {"point": 0.6701, "low": 0.6589, "high": 0.6803},
        "iqm": {"point": 0.6710, "low": 0.6601, "high": 0.6822},
        "reps": 2000,
    }
    starc = {
        "member_to_mean": [0.1412, 0.1203, 0.0987, 0.1533, 0.1106],
        "mean": 0.1248,
        "max": 0.1533,
    }
    return members, starc


def make_eval_full(model: str = "ensemble-minilm") -> dict[str, Any]:
    """A ``rewardhedge.eval`` pairs result with every optional block."""
    out = make_eval()
    sections = {
        name: {
            "accuracy": acc,
            "ci_low": round(acc - 0.025, 4),
            "ci_high": round(acc + 0.025, 4),
            "n": n,
            "subsets": present,
            "missing": missing,
        }
        for name, (acc, n, present, missing) in RB_SECTIONS.items()
    }
    members, starc = make_members()
    out.update(
        {
            "kind": "rewardhedge.eval",
            "version": 1,
            "task": "pairs",
            "model": model,
            "data": "rewardbench_v1.jsonl",
            "rewardbench": {
                "sections": sections,
                "score": {"accuracy": 0.7364, "ci_low": 0.7211, "ci_high": 0.7502, "n_sections": 4},
                "complete": False,
                "unmapped_subsets": ["my-extra-subset"],
                "weighting": "RewardBench v1 example counts",
            },
            "members": members,
            "starc": starc,
            "controls": make_controls(),
            "comparison": {
                "other_model": "baseline-single",
                "n_pairs": 1200,
                "accuracy": 0.6875,
                "other_accuracy": 0.6521,
                "diff": 0.0354,
                "ci_low": 0.0112,
                "ci_high": 0.0597,
                "p_value": 0.0042,
                "reps": 2000,
                "starc_distance": 0.2871,
                "starc_ci_low": 0.2633,
                "starc_ci_high": 0.3102,
            },
            "perturbation": {
                "source": "generated",
                "n_pairs": 1200,
                "kinds": {
                    "lowercase": {
                        "n_pairs": 1200,
                        "consistency": _ci(0.9412, 0.0133),
                        "accuracy": 0.6875,
                        "accuracy_perturbed": 0.6712,
                        "accuracy_delta": -0.0163,
                        "mean_abs_margin_shift": 0.0871,
                    },
                    "typos": {
                        "n_pairs": 1200,
                        "consistency": _ci(0.8833, 0.0181),
                        "accuracy": 0.6875,
                        "accuracy_perturbed": 0.6401,
                        "accuracy_delta": -0.0474,
                        "mean_abs_margin_shift": 0.1934,
                    },
                },
            },
            "timing": {"scoring_s": 12.34, "total_s": 15.02, "overhead_ratio": 1.217},
        }
    )
    return out


def make_one_to_many() -> dict[str, Any]:
    """A ``rewardhedge.eval`` one-to-many result (pair metrics over the expanded pairs)."""
    out = make_eval()
    out["n_pairs"] = 1500
    out.update(
        {
            "kind": "rewardhedge.eval",
            "version": 1,
            "task": "one_to_many",
            "model": "ensemble-minilm",
            "data": "rewardbench2.jsonl",
            "one_to_many": {
                "n_rows": 500,
                "candidates_per_row": {"min": 3, "max": 5, "mean": 4.02},
                "accuracy": _ci(0.4123),
                "mrr": _ci(0.6234),
                "best_of_n": {**_ci(0.4567), "chance": 0.2512},
                "best_of_4": {**_ci(0.4711, 0.04), "chance": 0.25, "n_rows": 480},
                "length_baseline": {
                    "longer": {
                        "accuracy": _ci(0.2811),
                        "mrr": _ci(0.5102),
                        "best_of_n": _ci(0.3124),
                    },
                    "shorter": {
                        "accuracy": _ci(0.1544),
                        "mrr": _ci(0.4233),
                        "best_of_n": _ci(0.1987),
                    },
                },
                "subsets": {
                    "math": {
                        "n": 300,
                        "accuracy": _ci(0.4401),
                        "mrr": _ci(0.6502),
                        "best_of_n": {**_ci(0.4803), "chance": 0.25},
                    },
                    "safety": {
                        "n": 200,
                        "accuracy": _ci(0.3707),
                        "mrr": _ci(0.5832),
                        "best_of_n": {**_ci(0.4213), "chance": 0.2537},
                    },
                },
            },
            "controls": make_controls(),
            "timing": {"scoring_s": 30.5, "total_s": 33.1, "overhead_ratio": 1.085},
        }
    )
    return out


def make_pools(with_gold: bool = True) -> dict[str, Any]:
    """A ``rewardhedge.eval`` pools result: three aggregations, length baselines."""
    aggs: dict[str, Any] = {}
    for key, label, gold, win in (
        ("mean", "mean", 0.4123, 0.6611),
        ("wco", "WCO", 0.4788, 0.6902),
        ("uwo", "UWO λ=0.5", 0.5234, 0.7105),
    ):
        agg: dict[str, Any] = {"label": label, "n_pools": 200, "n_pools_with_gold": 180}
        if with_gold:
            agg |= {
                "gold": _gold(gold),
                "regret": _gold(round(0.9312 - gold, 4), 0.04),
                "win_vs_random": _gold(win, 0.02),
                "random_gold": _gold(0.1021, 0.03),
                "best_gold": _gold(0.9312, 0.03),
            }
        else:
            agg["n_pools_with_gold"] = 0
        aggs[key] = agg
    starc = make_members()[1]  # no "members": pools have no accuracy per member
    pool_controls = make_controls()  # candidates only: no pairs to check for order flips
    pool_controls["batch_invariance"] |= {"n_order_flips": 0, "n_pairs_checked": 0, "passed": True}
    return {
        "kind": "rewardhedge.eval",
        "version": 1,
        "task": "pools",
        "n_pools": 200,
        "n_pools_with_gold": 180 if with_gold else 0,
        "aggregations": aggs,
        "length_baseline": {
            "longer": {
                "gold": _gold(0.2345),
                "regret": _gold(0.6967, 0.04),
                "win_vs_random": _gold(0.5812, 0.02),
            },
            "shorter": {
                "gold": _gold(-0.0567),
                "regret": _gold(0.9879, 0.04),
                "win_vs_random": _gold(0.4103, 0.02),
            },
        }
        if with_gold
        else {},
        "length_reward_corr": 0.3141,
        "controls": pool_controls,
        "starc": starc,
        "timing": {"scoring_s": 8.5, "total_s": 9.9, "overhead_ratio": 1.165},
        "model": "ensemble-minilm",
        "data": "pools.jsonl",
    }


@pytest.fixture(scope="session")
def eval_factory() -> SimpleNamespace:
    """Builders of the eval JSON with its optional blocks (see ``docs/eval-json.md``)."""
    return SimpleNamespace(
        make_eval=make_eval,
        make_eval_full=make_eval_full,
        make_one_to_many=make_one_to_many,
        make_pools=make_pools,
        make_controls=make_controls,
        SCRIPT=SCRIPT,
    )
