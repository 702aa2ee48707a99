"""The overoptimisation lab: gold → noisy labels → proxies → best-of-n, gold vs KL.

The Gao et al. / Coste et al. experiment on the sandbox. For every seed the
labels are re-drawn and a single model (K=1) and an ensemble (K members,
bootstrap) are trained on the same texts (embedded once, cached). Best-of-n
is estimated for every n = 1, 2, 4, …, N from one pool of N candidates per
prompt with the unbiased order-statistics estimator, for the gold reward of
the pick and for the proxy (the aggregated score the optimiser maximised).
Curves are summarised by the interquartile mean over seeds of each seed's
mean over prompts, with a stratified bootstrap CI (seeds resampled within
each prompt, as rliable resamples runs within each task). Trimming between
seeds rather than between prompts matters: overoptimisation hits a minority
of prompts hard, and an IQM over prompts would trim exactly those away.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
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
    TrainConfig,
    UncertaintyConfig,
)
from rewardhedge.data.sandbox import Sandbox, SandboxConfig, SandboxPool, generate_sandbox
from rewardhedge.errors import ConfigError
from rewardhedge.evaluate.calibration import reliability_bins
from rewardhedge.evaluate.pairwise import bootstrap_ci, length_baseline_correct, log_loss
from rewardhedge.evaluate.statistics import iqm_of_run_means, stratified_bootstrap_ci
from rewardhedge.optimize.order_stats import expected_best_of_n, kl_best_of_n
from rewardhedge.optimize.scaling import fit_gao
from rewardhedge.reward_model import EnsembleRewardModel
from rewardhedge.types import PreferencePair
from rewardhedge.uncertainty import Aggregation

LAB_KIND = "rewardhedge.overopt"
LAB_VERSION = 1

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
    aggregations: tuple[Aggregation, ...] = DEFAULT_AGGREGATIONS
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(pooling="response_mean"))
    """MiniLM reading each response in the context of its prompt: one forward
    pass per text (the library default ``dual`` adds a second), which keeps
    the demo within minutes on two cores."""
    head: HeadConfig = field(default_factory=HeadConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    bootstrap_reps: int = 2000
    n_examples: int = 3

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("lab: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"lab: seeds repeat: {list(self.seeds)}")
        if self.members < 2:
            raise ConfigError(f"lab: the ensemble needs at least 2 members, got {self.members}")

    @property
    def ns(self) -> list[int]:
        """1, 2, 4, … up to the pool size (which is included even if not a power of 2)."""
        n_max = self.sandbox.pool_size
        ns = [2**i for i in range(int(math.log2(n_max)) + 1)]
        return ns if ns[-1] == n_max else [*ns, n_max]

    def ensemble_config(self, k: int, seed: int) -> EnsembleConfig:
        """Members for the lab: best-of-n needs rewards, not calibrated
        probabilities, so no cross-fitted temperature is fitted (it would
        multiply the training time by the number of folds and change no pick)."""
        train = replace(self.train, seed=seed, bootstrap=k > 1 and self.train.bootstrap)
        return EnsembleConfig(
            n_members=k,
            head=self.head,
            train=train,
            encoder=self.encoder,
            uncertainty=UncertaintyConfig(calibration_folds=0),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sandbox": self.sandbox.to_dict(),
            "seeds": list(self.seeds),
            "members": self.members,
            "aggregations": [a.to_dict() for a in self.aggregations],
            "encoder": EnsembleConfig(encoder=self.encoder).to_dict()["encoder"],
            "head": EnsembleConfig(head=self.head).to_dict()["head"],
            "train": EnsembleConfig(train=self.train).to_dict()["train"],
            "bootstrap_reps": self.bootstrap_reps,
            "n_pool_prompts": self.sandbox.pool_prompts,
            "pool_size": self.sandbox.pool_size,
            "flip_rate": self.sandbox.flip_rate,
            "temperature": self.sandbox.temperature,
        }


Stage = Callable[[str, int], Callable[[int], None]]
"""``stage(description, total)`` returns ``advance(k)``: how the lab reports progress."""


def _no_stage(description: str, total: int) -> Callable[[int], None]:
    return lambda k: None


@dataclass
class SeedRun:
    """What one seed produced: member rewards on the pools and the test pairs."""

    seed: int
    pool_members: dict[str, np.ndarray]
    """model name → `(K, P, N)` member rewards on the pools."""
    test_prob: dict[str, np.ndarray]
    """model name → `(n_test,)` P(first ≻ second) on the test comparisons."""
    models: dict[str, EnsembleRewardModel]


def _texts(sandbox: Sandbox) -> tuple[list[str], list[str]]:
    prompts, responses = [], []
    for c in (*sandbox.train, *sandbox.test):
        prompts += [c.task.prompt, c.task.prompt]
        responses += [c.a.text, c.b.text]
    for pool in sandbox.pools:
        prompts += [pool.task.prompt] * len(pool.responses)
        responses += [r.text for r in pool.responses]
    return prompts, responses


def run_seed(
    sandbox: Sandbox,
    config: LabConfig,
    seed: int,
    encoder: Any,
    on_model: Callable[[], None] = lambda: None,
) -> SeedRun:
    """Train the single model and the ensemble for one label seed and score pools and tests."""
    pairs = sandbox.labelled_pairs("train", seed)
    P, N = len(sandbox.pools), config.sandbox.pool_size
    pool_prompts = [p.task.prompt for p in sandbox.pools for _ in range(N)]
    pool_texts = [r.text for p in sandbox.pools for r in p.responses]
    test = [PreferencePair(c.task.prompt, c.a.text, c.b.text) for c in sandbox.test]
    runs: dict[str, np.ndarray] = {}
    probs: dict[str, np.ndarray] = {}
    models: dict[str, EnsembleRewardModel] = {}
    for name, k in (("single", 1), ("ensemble", config.members)):
        model = EnsembleRewardModel(config.ensemble_config(k, seed), encoder=encoder).fit(pairs)
        runs[name] = model.score(pool_prompts, pool_texts).members.reshape(k, P, N)
        probs[name] = model.compare(test).prob  # P(a ≻ b): "chosen" is just response a here
        models[name] = model
        on_model()
    return SeedRun(seed, runs, probs, models)


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
    prompts, its stratified-bootstrap CI (seeds resampled within each prompt), and the mean."""
    out: dict[str, list[float]] = {"iqm": [], "mean": [], "ci_low": [], "ci_high": []}
    for j in range(per_seed.shape[1]):
        est = stratified_bootstrap_ci(per_seed[:, j, :], iqm_of_run_means, reps=reps, seed=j)
        out["iqm"].append(float(est.point))
        out["mean"].append(float(per_seed[:, j, :].mean()))
        out["ci_low"].append(float(est.low))
        out["ci_high"].append(float(est.high))
    return out


def _curve(
    runs: Sequence[SeedRun],
    model: str,
    agg: Aggregation,
    gold: np.ndarray,
    ns: list[int],
    reps: int,
) -> dict[str, Any]:
    golds, proxies, corrs = [], [], []
    N = gold.shape[1]
    for run in runs:
        score = agg.apply(run.pool_members[model], axis=0)  # (P, N)
        golds.append(expected_best_of_n(score, gold, ns))
        proxies.append(expected_best_of_n(score, score, ns))
        corrs.append([_top_rank_corr(score, gold, max(4, math.ceil(N / n))) for n in ns])
    gold_ns = np.stack(golds)  # (seeds, ns, P)
    gold_summary = _summary(gold_ns, reps)
    kl = kl_best_of_n(np.asarray(ns, dtype=np.float64))
    g = np.asarray(gold_summary["iqm"])
    fit = fit_gao(kl, g - g[0], baseline=float(g[0])) if len(ns) >= 3 else None
    peak = int(np.argmax(g))
    label = ("single" if model == "single" else "ensemble") + " · " + agg.label()
    return {
        "model": model,
        "aggregation": agg.name,
        "params": agg.params(),
        "label": label,
        "gold": gold_summary,
        "proxy": _summary(np.stack(proxies), reps),
        "per_seed_gold": gold_ns.mean(axis=2).tolist(),
        "rank_corr": np.nanmean(np.asarray(corrs), axis=0).tolist(),
        "fit": fit.to_dict() if fit is not None else None,
        "peak_n_observed": ns[peak],
        "gold_at_max_n": {
            "iqm": gold_summary["iqm"][-1],
            "ci_low": gold_summary["ci_low"][-1],
            "ci_high": gold_summary["ci_high"][-1],
        },
    }


def _shown_models(members: int) -> tuple[tuple[str, str], ...]:
    return (("single", "single (K=1)"), ("ensemble", f"ensemble (K={members})"))


def _accuracy_rows(sandbox: Sandbox, runs: Sequence[SeedRun], members: int) -> list[dict[str, Any]]:
    """Held-out accuracy against the true gold order (ties in gold left out), averaged over seeds."""
    gap = np.array([c.a.gold - c.b.gold for c in sandbox.test])
    keep = gap != 0
    sign = np.sign(gap[keep])
    rows = []
    for name, shown in _shown_models(members):
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
        (c.a.text, c.b.text) if c.a.gold > c.b.gold else (c.b.text, c.a.text)
        for c, k in zip(sandbox.test, keep, strict=True)
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


def _reliability(sandbox: Sandbox, runs: Sequence[SeedRun], members: int) -> list[dict[str, Any]]:
    """Predicted P(a ≻ b) on test comparisons vs labels drawn like the training labels."""
    rows = []
    wins = np.concatenate([sandbox.label_wins("test", run.seed) for run in runs]).astype(float)
    for name, shown in _shown_models(members):
        probs = np.concatenate([run.test_prob[name] for run in runs])
        rows.append({"name": shown, **reliability_bins(probs, wins)})
    return rows


def _examples(
    sandbox: Sandbox, run: SeedRun, agg: Aggregation, n_examples: int
) -> list[dict[str, Any]]:
    """Pools where the single model's top pick and the ensemble's (under ``agg``) differ most in gold."""
    single = run.pool_members["single"][0]
    ensemble = agg.apply(run.pool_members["ensemble"], axis=0)
    found = []
    for p, pool in enumerate(sandbox.pools):
        i, j = int(np.argmax(single[p])), int(np.argmax(ensemble[p]))
        if i != j:
            found.append((pool.responses[j].gold - pool.responses[i].gold, p, i, j))
    found.sort(key=lambda t: -abs(t[0]))
    # Show both directions when they exist: where the ensemble did better and where it did worse.
    better = [f for f in found if f[0] > 0][: max(1, n_examples - 1)]
    worse = [f for f in found if f[0] < 0][:1]
    out = []
    for _, p, i, j in (better + worse)[:n_examples]:
        pool = sandbox.pools[p]
        best = max(pool.responses, key=lambda r: r.gold)

        out.append(
            {
                "prompt": pool.task.prompt,
                "family": pool.task.family,
                "n": len(pool.responses),
                "aggregation": agg.name,
                "single": _example_pick(pool, i, float(single[p, i])),
                "ensemble": _example_pick(pool, j, float(ensemble[p, j])),
                "best": {"response": best.text, "gold": best.gold},
            }
        )
    return out


def _example_pick(pool: SandboxPool, k: int, proxy: float) -> dict[str, Any]:
    r = pool.responses[k]
    props = r.props.to_dict() | {"length_words": len(r.text.split())}
    return {"response": r.text, "gold": r.gold, "proxy": proxy, "properties": props}


def run_lab(
    config: LabConfig | None = None,
    *,
    encoder: Any = None,
    cache_dir: str | Path | None = None,
    stage: Stage = _no_stage,
    progress: bool = False,
) -> tuple[dict[str, Any], list[SeedRun]]:
    """Run the whole lab; returns the lab JSON (see docs/lab-json.md) and the per-seed runs.

    Args:
        config: sizes, seeds, aggregations, model settings.
        encoder: an encoder to use (e.g. a :class:`CachedEncoder`); by
            default the one ``config.encoder`` describes, with the disk cache.
        cache_dir: that disk cache's folder (default: ``default_cache_dir()``).
        stage: progress reporter for the training stage.
        progress: show the encoder's progress bar.
    """
    cfg = config or LabConfig()
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    sandbox = generate_sandbox(cfg.sandbox)
    timing["generate_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    if encoder is None:
        encoder = EnsembleRewardModel(
            EnsembleConfig(encoder=cfg.encoder), cache_dir=cache_dir
        ).encoder
    prompts, responses = _texts(sandbox)
    encoder.encode(prompts, responses, progress=progress)  # fills the cache once for all seeds
    timing["encode_s"] = time.perf_counter() - t

    t = time.perf_counter()
    advance = stage("train proxies", 2 * len(cfg.seeds))
    runs = [run_seed(sandbox, cfg, seed, encoder, lambda: advance(1)) for seed in cfg.seeds]
    timing["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    gold = np.stack([p.gold for p in sandbox.pools])  # (P, N)
    ns = cfg.ns
    specs = [("single", Aggregation("mean"))] + [("ensemble", a) for a in cfg.aggregations]
    advance = stage("best-of-n curves", len(specs))
    curves = []
    for model, agg in specs:
        curves.append(_curve(runs, model, agg, gold, ns, cfg.bootstrap_reps))
        advance(1)
    conservative = next((a for a in cfg.aggregations if a.name == "uwo"), cfg.aggregations[0])
    result = {
        "kind": LAB_KIND,
        "version": LAB_VERSION,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rewardhedge_version": __version__,
        "config": cfg.to_dict(),
        "encoder_id": encoder.id,
        "ns": ns,
        "kl": [float(x) for x in kl_best_of_n(np.asarray(ns, dtype=np.float64))],
        "pool_gold": {"mean": float(gold.mean()), "best": float(gold.max(axis=1).mean())},
        "curves": curves,
        "accuracy": _accuracy_rows(sandbox, runs, cfg.members),
        "reliability": _reliability(sandbox, runs, cfg.members),
        "examples": _examples(sandbox, runs[0], conservative, cfg.n_examples),
    }
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
