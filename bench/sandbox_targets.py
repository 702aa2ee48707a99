"""Check the sandbox's own targets (issue 17 item 3) before any aggregation is compared.

The targets are fixed in advance and concern the *single* proxy only:

1. within-pool Spearman between the single proxy and gold over all N candidates (n = 1) ≥ 0.4;
2. held-out accuracy against the gold order ≥ the length-only baseline + 0.10;
3. the single model's gold reward along best-of-n rises to a peak and then falls.

No ensemble is trained and no aggregation is computed here, so a sandbox design cannot be
chosen for how well the conservative aggregations do on it.

    python bench/sandbox_targets.py [--seeds 5] [--out bench/results/sandbox_targets.json]

Also prints how much of the pools' within-prompt gold variance the latent properties that a
text encoder can perceive explain (a linear fit of gold on those properties, per family).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from rewardhedge.data.sandbox import generate_sandbox
from rewardhedge.encoders import build_cached_encoder
from rewardhedge.evaluate.pairwise import length_baseline_correct
from rewardhedge.lab.data import from_sandbox, polished_mask
from rewardhedge.lab.options import model_encoders
from rewardhedge.lab.overopt import LabConfig, _top_rank_corr
from rewardhedge.lab.proxies import no_stage
from rewardhedge.optimize.order_stats import expected_best_of_n
from rewardhedge.types import PreferencePair

INVISIBLE = ("subtle", "mismatch")
"""Errors a linear probe on the lab's features finds at near chance (see ``decodability``)."""


def perceivable_share(sandbox) -> dict[str, float]:
    """Share of the pools' within-prompt gold variance that what a reader can see explains.

    Everything but the two invisible errors shows in the text, so the best a reader of
    the text can do is E[gold | visible properties]; its within-pool R² against gold is
    the perceivable share.
    """

    def key(task, p):
        err = p["error"] if p["error"] not in INVISIBLE else ""
        visible = ("refused", "hedging", "polite", "formatted", "verbosity")
        return (task.harmful, err, p.get("restates"), *(p[k] for k in visible))

    keys, golds, pools = [], [], []
    for i, pool in enumerate(sandbox.pools):
        for r in pool.responses:
            keys.append(key(pool.task, r.props.to_dict()))
            golds.append(r.gold)
            pools.append(i)
    golds, pools = np.asarray(golds), np.asarray(pools)
    groups: dict = {}
    for k, g in zip(keys, golds, strict=True):
        groups.setdefault(k, []).append(g)
    pred = np.array([np.mean(groups[k]) for k in keys])

    def within(x):
        return x - np.bincount(pools, x)[pools] / np.bincount(pools)[pools]

    y, f = within(golds), within(pred)
    return {
        "r2_within_pool": float(1 - ((y - f) ** 2).mean() / y.var()),
        "gold_within_sd": float(y.std()),
    }


def polished_gap(sandbox) -> dict[str, float]:
    """Mean gold of the pools' polished (padded past training) candidates and of the rest."""
    polished = polished_mask(sandbox)
    gold = np.stack([p.gold for p in sandbox.pools])
    return {
        "polished": float(gold[polished].mean()),
        "rest": float(gold[~polished].mean()),
        "n_polished": int(polished.sum()),
    }


def _props(items) -> dict[str, np.ndarray]:
    out: dict[str, list[bool]] = {}
    for _task, r in items:
        p = r.props
        row = {
            "refused": p.refused,
            **{e: p.error == e for e in ("subtle", "contradiction", "evasive", "mismatch")},
            "restates": p.restates,
            "hedging": p.hedging,
            "polite": p.polite,
            "formatted": p.formatted,
            "padded (> 3 sentences)": p.verbosity > 3,
        }
        for k, v in row.items():
            out.setdefault(k, []).append(bool(v))
    return {k: np.asarray(v) for k, v in out.items()}


def decodability(sandbox, features: np.ndarray) -> dict[str, float]:
    """Balanced accuracy of a linear probe that reads each property from the features.

    Trained on the training responses, tested on the pools' candidates: how well the
    lab's encoder can see each property at all, whatever the labels say.
    """
    from sklearn.linear_model import LogisticRegression

    n_train = 2 * len(sandbox.train)
    start = 2 * (len(sandbox.train) + len(sandbox.test))
    train = _props([(c.task, r) for c in sandbox.train for r in (c.a, c.b)])
    pool = _props([(p.task, r) for p in sandbox.pools for r in p.responses])
    out = {}
    for name, y in train.items():
        yp = pool[name]
        if y.all() or not y.any() or yp.all() or not yp.any():
            continue
        probe = LogisticRegression(C=3.0, max_iter=3000).fit(features[:n_train], y)
        pred = probe.predict(features[start:])
        out[name] = float(0.5 * (pred[yp].mean() + (~pred[~yp]).mean()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--l2", type=float, default=None, help="head L2 (default: the lab's)")
    ap.add_argument("--head", default=None, help="head kind (default: the lab's)")
    args = ap.parse_args()
    cfg = LabConfig(seeds=tuple(range(args.seeds)))
    if args.l2 is not None:
        cfg = replace(cfg, train=replace(cfg.train, l2=args.l2))
    if args.head is not None:
        cfg = replace(cfg, head=replace(cfg.head, kind=args.head))
    t0 = time.perf_counter()
    sandbox = generate_sandbox(cfg.sandbox)
    share = perceivable_share(sandbox)
    print("perceivable share:", share, flush=True)
    proxies = cfg.proxies(build_cached_encoder(cfg.encoder))
    encoder = model_encoders(proxies.encoder, cfg.encoder)[0]  # the single model's view
    prompts, responses = from_sandbox(sandbox).texts()
    features = encoder.encode(prompts, responses, progress=False)
    t_enc = time.perf_counter() - t0
    decode = decodability(sandbox, features)
    print("decodability:", json.dumps(decode), flush=True)
    P, N = len(sandbox.pools), cfg.sandbox.pool_size
    pool_prompts = [p.task.prompt for p in sandbox.pools for _ in range(N)]
    pool_texts = [r.text for p in sandbox.pools for r in p.responses]
    gold = np.stack([p.gold for p in sandbox.pools])
    gap = np.array([c.a.gold - c.b.gold for c in sandbox.test])
    keep = gap != 0
    test = [PreferencePair(c.task.prompt, c.a.text, c.b.text) for c in sandbox.test]
    ns = cfg.ns
    corr, acc, curves = [], [], []
    for seed in cfg.seeds:
        model = proxies.train("single", seed, sandbox.labelled_pairs("train", seed), no_stage)
        score = model.score(pool_prompts, pool_texts).mean.reshape(P, N)
        corr.append(_top_rank_corr(score, gold, N))
        prob = model.compare(test).prob[keep]
        acc.append(float(np.mean((prob - 0.5) * np.sign(gap[keep]) > 0)))
        curves.append(expected_best_of_n(score, gold, ns).mean(axis=1))
    ordered = [
        (c.a.text, c.b.text) if c.a.gold > c.b.gold else (c.b.text, c.a.text)
        for c, k in zip(sandbox.test, keep, strict=True)
        if k
    ]
    length_acc = float(
        np.mean(length_baseline_correct([a for a, _ in ordered], [b for _, b in ordered]))
    )
    curve = np.mean(curves, axis=0)
    peak = int(np.argmax(curve))
    result = {
        "within_pool_spearman_n1": float(np.mean(corr)),
        "accuracy": float(np.mean(acc)),
        "length_baseline": length_acc,
        "accuracy_margin": float(np.mean(acc)) - length_acc,
        "ns": ns,
        "single_gold_curve": curve.tolist(),
        "peak_n": ns[peak],
        "fall_after_peak": float(curve[peak] - curve[-1]),
        "pool_best_gold": float(gold.max(axis=1).mean()),
        "pool_mean_gold": float(gold.mean()),
        "perceivable": share,
        "decodability": decode,
        "polished_vs_rest_gold": polished_gap(sandbox),
        "encode_s": t_enc,
        "total_s": time.perf_counter() - t0,
        "l2": args.l2,
        "head": args.head,
    }
    result["targets"] = {
        "spearman_ge_0.4": result["within_pool_spearman_n1"] >= 0.4,
        "accuracy_ge_length_plus_0.10": result["accuracy_margin"] >= 0.10,
        "peaks_then_falls": 0 < peak < len(ns) - 1 and result["fall_after_peak"] > 0,
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    assert not math.isnan(result["accuracy"])


if __name__ == "__main__":
    main()
