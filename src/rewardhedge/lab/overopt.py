"""The overoptimisation lab: gold → noisy labels → proxies → best-of-n, gold vs KL.

The Gao et al. / Coste et al. experiment, on the sandbox or on a user's pools
with gold (:mod:`rewardhedge.lab.data`: one code path, two entry
points). For every seed the
labels are re-drawn and a single model (K=1) and one K-member ensemble per
diversity option (bootstrap only, random subspaces, encoder views; see
:mod:`rewardhedge.lab.options`) are trained on the same texts
(embedded once, cached). Ensemble members are standardised on their training
items before any aggregation but the mean (``LabConfig.member_norm``). Best-of-n
is estimated for every n = 1, 2, 4, …, N from one pool of N candidates per
prompt with the unbiased order-statistics estimator, for the gold reward of
the pick and for the proxy (the aggregated score the optimiser maximised).
Curves are summarised by the interquartile mean over seeds of each seed's
mean over prompts, with a stratified bootstrap CI (seeds resampled within
each prompt, as rliable resamples runs within each task). Trimming between
seeds rather than between prompts matters: overoptimisation hits a minority
of prompts hard, and an IQM over prompts would trim exactly those away.

Each ensemble curve is also compared with the single model at the largest n,
paired: the mean over seeds and prompts of the difference in gold, with a CI
that resamples seeds and prompts together (:func:`paired_grid_test`), since
the curves share both.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata

from rewardhedge import __version__
from rewardhedge.config import (
    EncoderConfig,
    EnsembleConfig,
    HeadConfig,
    MemberNormKind,
    TrainConfig,
)
from rewardhedge.config_finetune import FinetuneConfig
from rewardhedge.data.sandbox import SandboxConfig, generate_sandbox
from rewardhedge.encoders import build_cached_encoder
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.base import RewardModelBase
from rewardhedge.evaluate.calibration import reliability_bins
from rewardhedge.evaluate.diversity import member_diversity
from rewardhedge.evaluate.length_controls import length_baselines, length_controls
from rewardhedge.evaluate.paired import paired_grid_test
from rewardhedge.evaluate.pairwise import bootstrap_ci, length_baseline_correct, log_loss
from rewardhedge.evaluate.statistics import iqm_of_run_means, stratified_bootstrap_ci
from rewardhedge.lab.data import LabData, LabPool, PoolSplit, from_sandbox
from rewardhedge.lab.data import polished_mask as polished_mask  # re-exported
from rewardhedge.lab.options import (
    DEFAULT_OPTIONS,
    check_options,
    lab_encoder_config,
    options_dict,
)
from rewardhedge.lab.proxies import (
    FinetunedProxies,
    FrozenProxies,
    ProxyFactory,
    Stage,
    no_stage,
)
from rewardhedge.optimize.order_stats import expected_best_of_n_padded, kl_best_of_n
from rewardhedge.optimize.scaling import fit_gao
from rewardhedge.types import PreferencePair
from rewardhedge.uncertainty import Aggregation

LAB_KIND = "rewardhedge.overopt"
LAB_VERSION = 2

DEFAULT_AGGREGATIONS = (
    Aggregation("mean"),
    Aggregation("wco"),
    Aggregation("uwo", lam=0.5),
    Aggregation("lcb", beta=1.0),
    Aggregation("brme", lam=0.5),
    Aggregation("softmin", beta=0.5),
)


@dataclass(frozen=True)
class LabConfig:
    """What the lab trains and how it summarises."""

    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    members: int = 5
    options: tuple[str, ...] | None = None
    """The ensembles to train beside the single model: diversity options of the
    frozen encoder (``bootstrap``, ``subspace``, ``views``; see ``lab_options``),
    or with ``finetune`` the fine-tuning kinds (``multihead``, ``lora``,
    ``independent``, ``mc_dropout``). ``None``: all three frozen options, or
    ``multihead`` when fine-tuning."""
    member_norm: MemberNormKind = MemberNormKind.STANDARDIZE
    """How ensemble members are put on one footing before aggregation."""
    aggregations: tuple[Aggregation, ...] = DEFAULT_AGGREGATIONS
    encoder: EncoderConfig = field(default_factory=lab_encoder_config)
    """A multi-view MiniLM: every view from one forward pass per text, each
    response read in the context of its prompt (the library default ``dual``
    adds a second pass), which keeps the demo within minutes on two cores.
    The single model and the one-view ensembles read the first view."""
    head: HeadConfig = field(default_factory=HeadConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    bootstrap_reps: int = 2000
    n_examples: int = 3
    pools: PoolSplit | None = None
    """How user pools were split and labelled (``overopt --pools``); ``None``: the sandbox."""
    finetune: FinetuneConfig | None = None
    """Fine-tune the proxies from this template (backbone, lengths, schedule, top
    layers …; the lab sets each model's kind, members, seed and member norm).
    ``None``: heads on the frozen ``encoder``."""

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("lab: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"lab: seeds repeat: {list(self.seeds)}")
        if self.members < 2:
            raise ConfigError(f"lab: the ensemble needs at least 2 members, got {self.members}")
        if self.options is None:
            default = ("multihead",) if self.finetune is not None else DEFAULT_OPTIONS
            object.__setattr__(self, "options", default)
        object.__setattr__(self, "options", tuple(self.options))
        if not self.options:
            raise ConfigError("lab: give at least one diversity option")
        if self.finetune is None:
            check_options(self.options, self.encoder, self.members)
        else:
            self.proxies()  # checks the options and every model's settings
        object.__setattr__(
            self, "member_norm", MemberNormKind.parse(self.member_norm, "lab.member_norm")
        )

    @property
    def ns(self) -> list[int]:
        """1, 2, 4, … up to the sandbox's pool size (see :func:`ns_up_to`)."""
        return ns_up_to(self.sandbox.pool_size)

    def proxies(self, encoder: Any = None) -> ProxyFactory:
        """The factory of this config's proxies: fine-tuned when ``finetune`` is set,
        else heads on ``encoder`` (the lab's multi-view encoder; needed then)."""
        if self.finetune is not None:
            return FinetunedProxies(self.finetune, self.options, self.members, self.member_norm)
        if encoder is None:
            raise ConfigError("lab: frozen-encoder proxies need the lab's encoder")
        return FrozenProxies(
            encoder, self.encoder, self.options, self.members, self.head, self.train,
            self.member_norm,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = (
            {"pools": self.pools.to_dict()}
            if self.pools is not None
            else {
                "sandbox": self.sandbox.to_dict(),
                "n_pool_prompts": self.sandbox.pool_prompts,
                "pool_size": self.sandbox.pool_size,
                "flip_rate": self.sandbox.flip_rate,
                "temperature": self.sandbox.temperature,
            }
        )
        models: dict[str, Any] = (
            {
                "options": options_dict(self.options),
                "encoder": EnsembleConfig(encoder=self.encoder).to_dict()["encoder"],
                "head": EnsembleConfig(head=self.head).to_dict()["head"],
                "train": EnsembleConfig(train=self.train).to_dict()["train"],
            }
            if self.finetune is None
            else {
                "options": [{"name": o, "finetuned": True} for o in self.options],
                "finetune": self.finetune.to_dict(),
            }
        )
        return data | {
            "seeds": list(self.seeds),
            "members": self.members,
            "proxies": "frozen" if self.finetune is None else "finetuned",
            "member_norm": self.member_norm.value,
            "aggregations": [a.to_dict() for a in self.aggregations],
            **models,
            "bootstrap_reps": self.bootstrap_reps,
        }


def ns_up_to(n_max: int) -> list[int]:
    """1, 2, 4, … up to ``n_max`` (which is included even if not a power of 2)."""
    ns = [2**i for i in range(int(math.log2(n_max)) + 1)]
    return ns if ns[-1] == n_max else [*ns, n_max]


@dataclass
class SeedRun:
    """What one seed produced: member rewards on the pools and the test pairs."""

    seed: int
    pool_members: dict[str, np.ndarray]
    """model name → `(K, P, N)` member rewards on the pools (normalised as the
    model's ``member_norm`` says); pools smaller than N are left-aligned, NaN after."""
    pool_mean: dict[str, np.ndarray]
    """model name → `(P, N)` the raw mean of the members: what "mean" maximises."""
    test_prob: dict[str, np.ndarray]
    """model name → `(n_test,)` P(first ≻ second) on the test comparisons."""
    models: dict[str, RewardModelBase]
    diversity: dict[str, dict[str, Any]] = field(default_factory=dict)
    """ensemble name → :func:`member_diversity` on test items (in distribution)
    and on the pools' polished candidates (padded past anything in training)."""

    def scores(self, model: str, agg: Aggregation) -> np.ndarray:
        """`(P, N)` what best-of-n maximises for ``model`` under ``agg``."""
        if agg.name == "mean":
            return self.pool_mean[model]
        return agg.apply(self.pool_members[model], axis=0)


def padded(pools: Sequence[LabPool], flat: np.ndarray) -> np.ndarray:
    """`(..., P, N_max)` from `(..., total)` values in pool order, NaN after each pool's end."""
    n_max = max(p.size for p in pools)
    out = np.full((*flat.shape[:-1], len(pools), n_max), np.nan)
    start = 0
    for i, pool in enumerate(pools):
        out[..., i, : pool.size] = flat[..., start : start + pool.size]
        start += pool.size
    return out


def pool_gold(data: LabData) -> np.ndarray:
    """`(P, N_max)` gold of the pools' candidates, NaN after each pool's end."""
    return padded(data.pools, np.concatenate([p.gold for p in data.pools]))


def run_seed(
    data: LabData,
    proxies: ProxyFactory,
    seed: int,
    stage: Stage = no_stage,
    on_model: Callable[[], None] = lambda: None,
) -> SeedRun:
    """Train every model of ``proxies`` (the single model first) for one label seed;
    score the pools and the test comparisons."""
    pairs = data.labelled_pairs("train", seed)
    pool_prompts = [p.prompt for p in data.pools for _ in range(p.size)]
    pool_texts = [c for p in data.pools for c in p.candidates]
    test = [PreferencePair(c.prompt, c.a, c.b) for c in data.test]
    test_groups = np.tile(np.arange(len(data.test)), 2)  # both sides of each comparison
    known = [p.shifted for p in data.pools]
    shifted = np.concatenate(known) if all(s is not None for s in known) else np.zeros(0, bool)
    run = SeedRun(seed, {}, {}, {}, {})
    for name, k in proxies.models():
        model = proxies.train(name, seed, pairs, stage)
        est = model.score(pool_prompts, pool_texts)
        run.pool_members[name] = padded(data.pools, est.members)
        run.pool_mean[name] = padded(data.pools, est.mean)
        pairwise = model.compare(test)
        run.test_prob[name] = pairwise.prob  # P(a ≻ b): "chosen" is just a here
        run.models[name] = model
        if k > 1:  # the test items' members, as compare scored them
            inside = np.hstack([pairwise.chosen.members, pairwise.rejected.members])
            run.diversity[name] = member_diversity(
                inside, test_groups, est.members[:, shifted] if shifted.any() else None
            )
        on_model()
    return run


def _top_rank_corr_padded(score: np.ndarray, gold: np.ndarray, n: int) -> float:
    """:func:`_top_rank_corr` over pools of unequal size (NaN-padded rows), each pool
    read at ``m = max(4, ceil(N_p / n))`` of its ``N_p`` candidates; pools weighted by count."""
    sizes = (~np.isnan(gold)).sum(axis=1)
    total, count = 0.0, 0
    for size in np.unique(sizes):
        rows = np.flatnonzero(sizes == size)
        m = min(max(4, math.ceil(size / n)), int(size))
        value = _top_rank_corr(score[rows, :size], gold[rows, :size], m)
        if not math.isnan(value):
            total, count = total + value * len(rows), count + len(rows)
    return total / count if count else float("nan")


def _top_rank_corr(score: np.ndarray, gold: np.ndarray, m: int) -> float:
    """Mean over pools of Spearman(score, gold) among each pool's top-``m`` candidates by score."""
    top = np.argsort(-score, axis=1, kind="stable")[:, :m]
    s = rankdata(np.take_along_axis(score, top, 1), axis=1)
    g = rankdata(np.take_along_axis(gold, top, 1), axis=1)
    s -= s.mean(1, keepdims=True)
    g -= g.mean(1, keepdims=True)
    denom = np.sqrt((s**2).sum(1) * (g**2).sum(1))
    ok = denom > 0
    return float(np.mean((s * g).sum(1)[ok] / denom[ok])) if ok.any() else float("nan")


def _summary(per_seed: np.ndarray, reps: int) -> dict[str, list[float]]:
    """Along n, for a `(seeds, ns, prompts)` array: the IQM over seeds of the mean over
    prompts, its stratified-bootstrap CI (seeds resampled within each prompt), and the mean.
    At each n only the prompts whose pools support it (not NaN) count."""
    out: dict[str, list[float]] = {"iqm": [], "mean": [], "ci_low": [], "ci_high": []}
    for j in range(per_seed.shape[1]):
        cols = ~np.isnan(per_seed[0, j, :])
        block = per_seed[:, j, cols]
        est = stratified_bootstrap_ci(block, iqm_of_run_means, reps=reps, seed=j)
        out["iqm"].append(float(est.point))
        out["mean"].append(float(block.mean()))
        out["ci_low"].append(float(est.low))
        out["ci_high"].append(float(est.high))
    return out


def paired_n_index(gold: np.ndarray, ns: list[int]) -> int:
    """Index of the largest n that at least half of the pools support: where the paired
    table and ``gold_at_max_n`` compare models (the last n when all pools are full)."""
    sizes = (~np.isnan(gold)).sum(axis=1)
    ok = [j for j, n in enumerate(ns) if (sizes >= n).mean() >= 0.5]
    return ok[-1] if ok else 0


def _curve(
    runs: Sequence[SeedRun],
    model: str,
    agg: Aggregation,
    gold: np.ndarray,
    ns: list[int],
    reps: int,
) -> dict[str, Any]:
    golds, proxies, corrs = [], [], []
    for run in runs:
        score = run.scores(model, agg)  # (P, N), NaN after a smaller pool's end
        golds.append(expected_best_of_n_padded(score, gold, ns))
        proxies.append(expected_best_of_n_padded(score, score, ns))
        corrs.append([_top_rank_corr_padded(score, gold, n) for n in ns])
    gold_ns = np.stack(golds)  # (seeds, ns, P)
    at = paired_n_index(gold, ns)
    gold_summary = _summary(gold_ns, reps)
    kl = kl_best_of_n(np.asarray(ns, dtype=np.float64))
    g = np.asarray(gold_summary["iqm"])
    fit = fit_gao(kl, g - g[0], baseline=float(g[0])) if len(ns) >= 3 else None
    peak = int(np.argmax(g))
    label = model + " · " + agg.label()
    return {
        "model": model,
        "aggregation": agg.name,
        "params": agg.params(),
        "label": label,
        "gold": gold_summary,
        "proxy": _summary(np.stack(proxies), reps),
        "per_seed_gold": np.nanmean(gold_ns, axis=2).tolist(),
        "rank_corr": np.nanmean(np.asarray(corrs), axis=0).tolist(),
        "fit": fit.to_dict() if fit is not None else None,
        "peak_n_observed": ns[peak],
        "gold_at_max_n": {
            "n": ns[at],
            "iqm": gold_summary["iqm"][at],
            "ci_low": gold_summary["ci_low"][at],
            "ci_high": gold_summary["ci_high"][at],
        },
        # (seeds, P'): the pools supporting that n, for the paired table; not written
        "_gold_max_n": gold_ns[:, at, ~np.isnan(gold_ns[0, at])],
    }


def _paired_rows(curves: Sequence[dict[str, Any]], reps: int) -> list[dict[str, Any]]:
    """Each ensemble curve minus the single model in gold at the largest n, paired by
    seed and prompt, with a CI that resamples both (see the module docstring)."""
    single = next(c for c in curves if c["model"] == "single")
    rows = []
    for i, c in enumerate(curves):
        if c is single:
            continue
        test = paired_grid_test(c["_gold_max_n"], single["_gold_max_n"], reps=reps, seed=i)
        verdict = "helps" if test.ci_low > 0 else "hurts" if test.ci_high < 0 else "no difference"
        rows.append(
            {
                "model": c["model"],
                "aggregation": c["aggregation"],
                "params": c["params"],
                "label": c["label"],
                "gold": float(c["_gold_max_n"].mean()),
                "single_gold": float(single["_gold_max_n"].mean()),
                **test.to_dict(),
                "verdict": verdict,
            }
        )
    return rows


def _shown_models(models: Sequence[tuple[str, int]]) -> list[tuple[str, str]]:
    return [("single", "single (K=1)")] + [(o, f"{o} ensemble (K={k})") for o, k in models[1:]]


def _accuracy_rows(
    data: LabData, runs: Sequence[SeedRun], models: Sequence[tuple[str, int]]
) -> list[dict[str, Any]]:
    """Held-out accuracy against the true gold order (ties in gold left out), averaged over seeds."""
    gap = np.array([c.gold_a - c.gold_b for c in data.test])
    keep = gap != 0
    sign = np.sign(gap[keep])
    rows = []
    for name, shown in _shown_models(models):
        probs = np.stack([r.test_prob[name][keep] for r in runs])  # (seeds, n)
        correct = ((probs - 0.5) * sign > 0) + 0.5 * (probs == 0.5)
        per_pair = correct.mean(axis=0)
        low, high = bootstrap_ci(per_pair)
        p_gold = np.where(sign > 0, probs, 1 - probs)
        rows.append(
            {
                "name": shown,
                "accuracy": float(per_pair.mean()),
                "ci_low": low,
                "ci_high": high,
                "log_loss": float(np.mean([log_loss(p) for p in p_gold])),
                "n": int(keep.sum()),
            }
        )
    ordered = [
        (c.a, c.b) if c.gold_a > c.gold_b else (c.b, c.a)
        for c, k in zip(data.test, keep, strict=True)
        if k
    ]
    chosen, rejected = [a for a, _ in ordered], [b for _, b in ordered]
    for rule in ("longer", "shorter"):
        correct = length_baseline_correct(chosen, rejected, prefer=rule)
        low, high = bootstrap_ci(correct)
        rows.append(
            {
                "name": f"length baseline ({rule})",
                "accuracy": float(np.mean(correct)),
                "ci_low": low,
                "ci_high": high,
                "log_loss": None,
                "n": len(ordered),
            }
        )
    return rows


def _reliability(
    data: LabData, runs: Sequence[SeedRun], models: Sequence[tuple[str, int]]
) -> list[dict[str, Any]]:
    """Predicted P(a ≻ b) on test comparisons vs labels drawn like the training labels."""
    rows = []
    wins = np.concatenate([data.label_wins("test", run.seed) for run in runs]).astype(float)
    for name, shown in _shown_models(models):
        probs = np.concatenate([run.test_prob[name] for run in runs])
        rows.append({"name": shown, **reliability_bins(probs, wins)})
    return rows


def _examples(
    data: LabData, run: SeedRun, model: str, agg: Aggregation, n_examples: int
) -> list[dict[str, Any]]:
    """Pools where the single model's top pick and ``model``'s (under ``agg``) differ most in gold."""
    single = run.pool_mean["single"]
    ensemble = run.scores(model, agg)
    found = []
    for p, pool in enumerate(data.pools):
        i = int(np.argmax(single[p, : pool.size]))
        j = int(np.argmax(ensemble[p, : pool.size]))
        if i != j:
            found.append((pool.gold[j] - pool.gold[i], p, i, j))
    found.sort(key=lambda t: -abs(t[0]))
    # Show both directions when they exist: where the ensemble did better and where it did worse.
    better = [f for f in found if f[0] > 0][: max(1, n_examples - 1)]
    worse = [f for f in found if f[0] < 0][:1]
    out = []
    for _, p, i, j in (better + worse)[:n_examples]:
        pool = data.pools[p]
        best = int(np.argmax(pool.gold))
        out.append(
            {
                "prompt": pool.prompt,
                "family": pool.subset,
                "n": pool.size,
                "model": model,
                "aggregation": agg.name,
                "single": _example_pick(pool, i, float(single[p, i])),
                "ensemble": _example_pick(pool, j, float(ensemble[p, j])),
                "best": {"response": pool.candidates[best], "gold": float(pool.gold[best])},
            }
        )
    return out


def _example_pick(pool: LabPool, k: int, proxy: float) -> dict[str, Any]:
    text = pool.candidates[k]
    props = (
        pool.properties[k]
        if pool.properties is not None
        else {"length_words": len(text.split()), "length_chars": len(text)}
    )
    return {"response": text, "gold": float(pool.gold[k]), "proxy": proxy, "properties": props}


def _length_block(
    data: LabData, runs: Sequence[SeedRun], specs: Sequence[tuple[str, Aggregation]]
) -> dict[str, Any]:
    """Length controls of each curve's best-of-N picks (whole pools), seeds averaged per pool."""
    lengths = [np.array([len(c) for c in p.candidates], dtype=np.float64) for p in data.pools]
    gold = [p.gold for p in data.pools]
    rows = []
    for model, agg in specs:
        picks = np.array(
            [
                [
                    int(np.argmax(row[: p.size]))
                    for row, p in zip(run.scores(model, agg), data.pools, strict=True)
                ]
                for run in runs
            ]
        )
        rows.append(
            {"model": model, "aggregation": agg.name, "params": agg.params(),
             "label": model + " · " + agg.label()} | length_controls(picks, lengths, gold)
        )  # fmt: skip
    return {"baselines": length_baselines(lengths, gold), "rows": rows}


def _diversity_rows(
    runs: Sequence[SeedRun], models: Sequence[tuple[str, int]]
) -> list[dict[str, Any]]:
    """Per ensemble, the seeds' mean of each :func:`member_diversity` number."""
    rows = []
    for option, k in models[1:]:
        per_seed = [run.diversity[option] for run in runs if option in run.diversity]
        row: dict[str, Any] = {"model": option, "n_members": k}
        for key in (
            "starc_pairwise_mean",
            "disagreement_in",
            "disagreement_shift",
            "shift_ratio",
        ):
            values = [d[key] for d in per_seed if d.get(key) is not None]
            row[key] = float(np.mean(values)) if values else None
        rows.append(row)
    return rows


def _lab_result(
    cfg: LabConfig,
    data: LabData,
    proxies: ProxyFactory,
    runs: Sequence[SeedRun],
    stage: Stage,
) -> dict[str, Any]:
    """The lab JSON (without timing and machine) from the seeds' runs: one best-of-n
    curve per model × aggregation, the paired table, and the per-model tables."""
    models = proxies.models()
    gold = pool_gold(data)  # (P, N), NaN after a smaller pool's end
    ns = ns_up_to(data.max_pool_size)
    sizes = np.array([p.size for p in data.pools])
    specs = [("single", Aggregation("mean"))] + [
        (o, a) for o, _ in models[1:] for a in cfg.aggregations
    ]
    advance = stage("best-of-n curves", len(specs))
    curves = []
    for model, agg in specs:
        curves.append(_curve(runs, model, agg, gold, ns, cfg.bootstrap_reps))
        advance(1)
    paired = _paired_rows(curves, cfg.bootstrap_reps)
    for c in curves:
        del c["_gold_max_n"]
    conservative = next((a for a in cfg.aggregations if a.name == "uwo"), cfg.aggregations[0])
    return {
        "kind": LAB_KIND,
        "version": LAB_VERSION,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rewardhedge_version": __version__,
        "config": cfg.to_dict(),
        "encoder_id": proxies.reads,
        "proxies": proxies.to_dict(),
        "ns": ns,
        "n_prompts": [int((sizes >= n).sum()) for n in ns],
        "paired_n": ns[paired_n_index(gold, ns)],
        "data": data.summary,
        "kl": [float(x) for x in kl_best_of_n(np.asarray(ns, dtype=np.float64))],
        "pool_gold": {
            "mean": float(np.nanmean(gold)),
            "best": float(np.nanmax(gold, axis=1).mean()),
        },
        "curves": curves,
        "paired": paired,
        "diversity": _diversity_rows(runs, models),
        "length_controls": _length_block(data, runs, specs),
        "accuracy": _accuracy_rows(data, runs, models),
        "reliability": _reliability(data, runs, models),
        "examples": _examples(data, runs[0], models[-1][0], conservative, cfg.n_examples),
    }


def run_lab(
    config: LabConfig | None = None,
    *,
    data: LabData | None = None,
    encoder: Any = None,
    proxies: ProxyFactory | None = None,
    cache_dir: str | Path | None = None,
    stage: Stage = no_stage,
    progress: bool = False,
) -> tuple[dict[str, Any], list[SeedRun]]:
    """Run the whole lab; returns the lab JSON (see docs/lab-json.md) and the per-seed runs.

    Args:
        config: sizes, seeds, aggregations, model settings.
        data: the comparisons and pools to run on (:func:`~rewardhedge.lab.data.from_pools`);
            by default the sandbox ``config.sandbox`` describes.
        encoder: the frozen proxies' encoder (e.g. a :class:`CachedEncoder`); by
            default the one ``config.encoder`` describes, with the disk cache.
        proxies: what trains the models (any :class:`ProxyFactory`); by default
            ``config.proxies(encoder)``: frozen-encoder heads, or fine-tuned
            models when ``config.finetune`` is set.
        cache_dir: that disk cache's folder (default: ``default_cache_dir()``).
        stage: progress reporter for the training stages.
        progress: show the encoder's progress bar.
    """
    cfg = config or LabConfig()
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    if data is None:
        data = from_sandbox(generate_sandbox(cfg.sandbox))
    timing["generate_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    if proxies is None:
        if encoder is None and cfg.finetune is None:
            encoder = build_cached_encoder(cfg.encoder, cache_dir)
        proxies = cfg.proxies(encoder)
    models = proxies.models()
    if models[0] != ("single", 1):
        raise ConfigError(f"lab: the first proxy must be ('single', 1), got {models[0]}")
    prompts, responses = data.texts()
    proxies.prepare(prompts, responses, progress)
    timing["encode_s"] = time.perf_counter() - t

    t = time.perf_counter()
    advance = stage("train proxies", len(models) * len(cfg.seeds))
    runs = [run_seed(data, proxies, seed, stage, lambda: advance(1)) for seed in cfg.seeds]
    timing["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    result = _lab_result(cfg, data, proxies, runs, stage)
    timing["bon_s"] = time.perf_counter() - t
    timing["total_s"] = time.perf_counter() - t0
    result["timing"] = timing
    result["machine"] = machine_description()
    return result, runs


def machine_description() -> str:
    return (
        f"{os.cpu_count()}-core CPU ({platform.machine()}), Python {platform.python_version()}, "
        f"torch {torch.__version__}"
    )
