"""The full evaluation of a reward model on one data set: metrics, controls and statistics.

Why: a benchmark number alone is easy to fool (always choosing the longer
answer scores 100% on two RewardBench v1 subsets). Every result this module
writes therefore carries its controls — the length-only baselines, the
length–reward correlation, and batch-size invariance — next to the standard
numbers, with bootstrap CIs on every accuracy, the ensemble members'
spread (mean, IQM, stratified bootstrap CI), their STARC distance to the
ensemble mean, and optionally a paired test against a second model and
ranking consistency under prompt perturbations.

Three tasks share one JSON shape (``docs/eval-json.md``):

- ``pairs``: (prompt, chosen, rejected, subset?) rows; RewardBench v1 section
  scores when the subsets are RewardBench's;
- ``one_to_many``: (prompt, chosen, rejected[]) rows, scored as RewardMATH
  (chosen must beat every rejected), with MRR and RewardBench 2's best-of-n
  tie penalty; the expanded (chosen, rejected_j) pairs get every pair metric;
- ``pools``: best-of-n pools with gold rewards: gold of the pick, regret and
  win rate vs a random pick, for each aggregation.

Like ``reward_model.py`` this module sits at the end of the import chain.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rewardhedge.config import EvalConfig
from rewardhedge.data.perturb import load_perturbations, perturb_prompt
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.base import RewardModelBase
from rewardhedge.evaluate.consistency import perturbation_consistency
from rewardhedge.evaluate.invariance import batch_invariance
from rewardhedge.evaluate.length_controls import length_baselines, length_controls
from rewardhedge.evaluate.one_to_many import summarise_one_to_many
from rewardhedge.evaluate.paired import paired_bootstrap_test
from rewardhedge.evaluate.pairwise import pairwise_correct
from rewardhedge.evaluate.pairwise_summary import spearman_or_none
from rewardhedge.evaluate.process import step_metrics
from rewardhedge.evaluate.rewardbench import section_scores
from rewardhedge.evaluate.starc import starc_bootstrap_ci, starc_distance, starc_to_reference
from rewardhedge.evaluate.statistics import iqm, stratified_bootstrap_ci
from rewardhedge.optimize.bon import pick, score_pools, summarise_picks
from rewardhedge.types import (
    CandidatePool,
    OneToManyRow,
    PairwiseEstimate,
    PreferencePair,
    RewardEstimate,
    StepSolution,
    step_items,
)
from rewardhedge.uncertainty import Aggregation

__all__ = [
    "DEFAULT_AGGREGATIONS",
    "EVAL_KIND",
    "EVAL_VERSION",
    "evaluate_one_to_many",
    "evaluate_pairs",
    "evaluate_pools",
    "evaluate_steps",
]

EVAL_KIND = "rewardhedge.eval"
EVAL_VERSION = 1

DEFAULT_AGGREGATIONS: tuple[Aggregation, ...] = (
    Aggregation("mean"),
    Aggregation("wco"),
    Aggregation("uwo", lam=0.5),
    Aggregation("lcb", beta=1.0),
    Aggregation("brme", lam=0.5),
)
"""The aggregations best-of-n pools are evaluated with (plus the model's own, if different)."""

Clock = Callable[[], float]


def _header(task: str) -> dict[str, Any]:
    return {"kind": EVAL_KIND, "version": EVAL_VERSION, "task": task}


# -- shared blocks ------------------------------------------------------------------------
def _members_block(
    chosen: RewardEstimate, rejected: RewardEstimate, subsets: Sequence[str | None], cfg: EvalConfig
) -> dict[str, Any]:
    """Each member's accuracy per task (subset), summarised rliable-style over members."""
    names = sorted({s for s in subsets if s is not None})
    tasks = names if names else ["all"]
    labels = np.array([s if names else "all" for s in subsets], dtype=object)
    k = chosen.n_members
    per_member = np.stack(
        [pairwise_correct(chosen.members[j], rejected.members[j]) for j in range(k)]
    )
    matrix = np.array(
        [[per_member[j, labels == t].mean() for t in tasks] for j in range(k)], dtype=np.float64
    )
    mean = stratified_bootstrap_ci(matrix, np.mean, reps=cfg.reps, seed=cfg.seed)
    iq = stratified_bootstrap_ci(matrix, iqm, reps=cfg.reps, seed=cfg.seed)
    return {
        "n_members": int(k),
        "tasks": tasks,
        "accuracy": [float(a) for a in per_member.mean(axis=1)],
        "mean": mean.to_dict(),
        "iqm": iq.to_dict(),
        "reps": cfg.reps,
    }


def _starc_block(members: np.ndarray, mean: np.ndarray, groups: Sequence[str]) -> dict[str, Any]:
    """STARC distance of every member to the ensemble mean (0 = same preferences)."""
    d = starc_to_reference(members, mean, list(groups))
    finite = d[np.isfinite(d)]
    return {
        "member_to_mean": [None if not np.isfinite(x) else float(x) for x in d],
        "mean": float(finite.mean()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
    }


def _batch_block(
    model: RewardModelBase,
    prompts: Sequence[str],
    responses: Sequence[str],
    pairs: np.ndarray | None,
    cfg: EvalConfig,
) -> dict[str, Any]:
    small, large = cfg.batch_sizes
    ref = model.score_batched(prompts, responses, batch_size=small)
    other = model.score_batched(prompts, responses, batch_size=large)
    return batch_invariance(ref, other, batch_sizes=cfg.batch_sizes, pairs=pairs)


def _pair_batch_check(
    model: RewardModelBase, pairs: Sequence[PreferencePair], cfg: EvalConfig
) -> dict[str, Any] | None:
    n_pairs = min(len(pairs), cfg.batch_check_items // 2)
    if n_pairs == 0:
        return None
    sub = pairs[:n_pairs]
    prompts = [p.prompt for p in sub] * 2
    responses = [p.chosen for p in sub] + [p.rejected for p in sub]
    index = np.stack([np.arange(n_pairs), np.arange(n_pairs, 2 * n_pairs)], axis=1)
    return _batch_block(model, prompts, responses, index, cfg)


def _perturbation_block(
    model: RewardModelBase,
    pairs: Sequence[PreferencePair],
    base: PairwiseEstimate,
    cfg: EvalConfig,
    progress: bool,
) -> dict[str, Any] | None:
    """Re-score every pair with perturbed prompts; how often does its order survive?"""
    variants: dict[str, dict[int, str]] = {}
    for kind in cfg.perturbations:
        variants[kind] = {i: perturb_prompt(p.prompt, kind) for i, p in enumerate(pairs)}
    source = "generated"
    if cfg.perturbation_file is not None:
        source = "file" if not variants else "generated+file"
        for kind, table in load_perturbations(cfg.perturbation_file).items():
            hits = {i: table[p.prompt] for i, p in enumerate(pairs) if p.prompt in table}
            if hits:
                variants[f"file:{kind}" if kind in variants else kind] = hits
    if not variants:
        return None
    margin = base.chosen.mean - base.rejected.mean
    kinds: dict[str, Any] = {}
    for kind, table in variants.items():
        idx = np.array(sorted(table), dtype=np.int64)
        moved = [
            PreferencePair(table[i], pairs[i].chosen, pairs[i].rejected, subset=pairs[i].subset)
            for i in idx
        ]
        est = model.compare(moved, progress=progress)
        kinds[kind] = perturbation_consistency(
            margin[idx], est.chosen.mean - est.rejected.mean, reps=cfg.reps, seed=cfg.seed
        )
    return {
        "source": source,
        "n_pairs": len(pairs),
        "kinds": kinds,
    }


def _comparison_block(
    correct: np.ndarray,
    mean_reward: np.ndarray,
    other_name: str,
    other_est: PairwiseEstimate,
    groups: Sequence[str],
    cfg: EvalConfig,
    starc: bool = True,
) -> dict[str, Any]:
    """Paired bootstrap test of accuracy and STARC distance against a second model
    (``starc=False``: one of them has no scalar rewards; the distance is ``None``)."""
    other_correct = pairwise_correct(other_est.chosen.mean, other_est.rejected.mean)
    test = paired_bootstrap_test(correct, other_correct, reps=cfg.reps, seed=cfg.seed)
    other_reward = np.concatenate([other_est.chosen.mean, other_est.rejected.mean])
    dist = low = high = float("nan")
    if starc:
        dist = starc_distance(mean_reward, other_reward, list(groups))
        low, high = starc_bootstrap_ci(
            mean_reward, other_reward, list(groups), reps=min(cfg.reps, 1000), seed=cfg.seed
        )
    return {
        "other_model": other_name,
        "n_pairs": int(correct.shape[0]),
        "accuracy": float(correct.mean()),
        "other_accuracy": float(other_correct.mean()),
        "diff": test.diff,
        "ci_low": test.ci_low,
        "ci_high": test.ci_high,
        "p_value": test.p_value,
        "reps": test.reps,
        "starc_distance": None if not np.isfinite(dist) else float(dist),
        "starc_ci_low": None if not np.isfinite(low) else float(low),
        "starc_ci_high": None if not np.isfinite(high) else float(high),
    }


NO_SCALAR_REWARD = (
    "not applicable: the model gives no scalar reward per response (a general "
    "preference model compares pairs only), and this block needs one"
)
"""The note ``skipped`` holds for each block left out for a model without scalar rewards."""


def _has_scalar_rewards(model: RewardModelBase) -> bool:
    return bool(getattr(model, "scalar_rewards", True))


def _need_scalar_rewards(
    model: RewardModelBase,
    task: str,
    why: str = "rank each prompt's candidates by one; evaluate it on preference pairs instead",
) -> None:
    """Refuse, before any work, a task that needs one reward per response."""
    if not _has_scalar_rewards(model):
        raise ConfigError(
            f"{type(model).__name__} gives no scalar reward per response, and {task} {why}."
        )


# -- pairs ---------------------------------------------------------------------------------
def evaluate_pairs(
    model: RewardModelBase,
    pairs: Sequence[PreferencePair],
    *,
    config: EvalConfig | None = None,
    other: tuple[str, RewardModelBase] | None = None,
    calibration_pairs: Sequence[PreferencePair] | None = None,
    ood_pairs: Sequence[PreferencePair] | None = None,
    progress: bool = False,
    clock: Clock = time.perf_counter,
) -> dict[str, Any]:
    """Every metric, control and statistic of ``model`` on preference pairs, as plain JSON.

    Args:
        model: the reward model to evaluate.
        pairs: held-out preference pairs (``subset`` names RewardBench subsets
            to get RewardBench v1 section scores).
        config: bootstrap, control, perturbation and abstention settings.
        other: ``(name, model)`` to compare against on the same pairs.
        calibration_pairs: where ``config.abstain_alpha``'s rule is fitted (default:
            a seeded half of ``pairs``, the other half then being the test split).
        ood_pairs: pairs from another distribution, to report how well each
            uncertainty tells them apart.
        progress: show progress bars.
        clock: timer (tests pass a fake one).

    Returns:
        :meth:`EnsembleRewardModel.evaluate`'s dict plus ``kind``, ``version``,
        ``task`` = ``"pairs"``, ``members``, ``starc``, ``controls``, and
        when they apply ``rewardbench``, ``comparison``, ``perturbation``;
        ``timing`` holds the scoring time, the total and their ratio.
    """
    cfg = config or EvalConfig()
    abstention = {
        "abstain_alpha": cfg.abstain_alpha,
        "abstain_delta": cfg.abstain_delta,
        "abstain_on": cfg.abstain_on,
        "calibration_pairs": calibration_pairs,
        "ood_pairs": ood_pairs,
    }
    return _evaluate_pairs(model, pairs, cfg, other, progress, clock, abstention)[0]


def _evaluate_pairs(
    model: RewardModelBase,
    pairs: Sequence[PreferencePair],
    config: EvalConfig | None,
    other: tuple[str, RewardModelBase] | None,
    progress: bool,
    clock: Clock,
    abstention: dict[str, Any],
) -> tuple[dict[str, Any], PairwiseEstimate]:
    """``evaluate_pairs``; ``abstention`` holds ``model.evaluate``'s abstention and OOD
    arguments (empty for one-to-many rows)."""
    cfg = config or EvalConfig()
    t0 = clock()
    est = model.compare(pairs, progress=progress)
    t_score = clock() - t0
    metrics = model.evaluate(pairs, reps=cfg.reps, seed=cfg.seed, estimate=est, **abstention)
    subsets = [p.subset for p in pairs]
    correct = pairwise_correct(est.chosen.mean, est.rejected.mean)
    groups = [p.prompt for p in pairs] * 2
    members = np.concatenate([est.chosen.members, est.rejected.members], axis=1)
    mean_reward = np.concatenate([est.chosen.mean, est.rejected.mean])

    out = _header("pairs") | metrics
    rb = section_scores(correct, subsets, reps=cfg.reps, seed=cfg.seed)
    if rb is not None:
        out["rewardbench"] = rb
    out["members"] = _members_block(est.chosen, est.rejected, subsets, cfg)
    scalar = _has_scalar_rewards(model)
    skipped: dict[str, str] = {}
    if scalar:
        out["starc"] = _starc_block(members, mean_reward, groups)
    else:
        skipped["starc"] = NO_SCALAR_REWARD
    controls: dict[str, Any] = {}
    batch = _pair_batch_check(model, pairs, cfg) if scalar else None
    if batch is not None:
        controls["batch_invariance"] = batch
    elif not scalar and cfg.batch_check_items:
        skipped["controls.batch_invariance"] = NO_SCALAR_REWARD
    out["controls"] = controls
    if other is not None:
        name, other_model = other
        other_est = other_model.compare(pairs, progress=progress)
        both = scalar and _has_scalar_rewards(other_model)
        out["comparison"] = _comparison_block(
            correct, mean_reward, name, other_est, groups, cfg, starc=both
        )
        if not both:
            skipped["comparison.starc_distance"] = NO_SCALAR_REWARD
    if skipped:
        out["skipped"] = skipped
    perturbation = _perturbation_block(model, pairs, est, cfg, progress)
    if perturbation is not None:
        out["perturbation"] = perturbation
    total = clock() - t0
    out["timing"] = _timing(t_score, total)
    return out, est


def _timing(t_score: float, total: float) -> dict[str, float | None]:
    return {
        "scoring_s": float(t_score),
        "total_s": float(total),
        "overhead_ratio": float(total / t_score) if t_score > 0 else None,
    }


# -- one to many ---------------------------------------------------------------------------
def evaluate_one_to_many(
    model: RewardModelBase,
    rows: Sequence[OneToManyRow],
    *,
    config: EvalConfig | None = None,
    other: tuple[str, RewardModelBase] | None = None,
    progress: bool = False,
    clock: Clock = time.perf_counter,
) -> dict[str, Any]:
    """One chosen vs many rejected: RewardMATH accuracy, MRR, best-of-n with ties penalised,
    plus every pair metric on the expanded (chosen, rejected_j) pairs.

    Returns:
        :func:`evaluate_pairs` on the expanded pairs with ``task`` =
        ``"one_to_many"`` and a ``one_to_many`` block
        (:func:`rewardhedge.evaluate.one_to_many.summarise_one_to_many`).
    """
    cfg = config or EvalConfig()
    if not rows:
        raise ValueError("no one-to-many rows to evaluate.")
    _need_scalar_rewards(model, "one-to-many rows")
    t0 = clock()
    pairs = [pair for row in rows for pair in row.pairs()]
    out, est = _evaluate_pairs(model, pairs, cfg, other, progress, clock, {})
    # Row i's pairs are consecutive; its chosen reward is the same in each of them.
    bounds = np.cumsum([0] + [len(r.rejected) for r in rows])
    chosen = est.chosen.mean[bounds[:-1]]
    rejected = [est.rejected.mean[lo:hi] for lo, hi in itertools.pairwise(bounds)]
    out["task"] = "one_to_many"
    out["one_to_many"] = summarise_one_to_many(
        chosen,
        rejected,
        chosen_texts=[r.chosen for r in rows],
        rejected_texts=[list(r.rejected) for r in rows],
        subsets=[r.subset for r in rows],
        reps=cfg.reps,
        seed=cfg.seed,
    )
    out["timing"] = _timing(out["timing"]["scoring_s"], clock() - t0)
    return out


# -- pools ---------------------------------------------------------------------------------
def _aggregations(model: RewardModelBase) -> list[Aggregation]:
    aggs = list(DEFAULT_AGGREGATIONS)
    own = model.rule.aggregation
    if all(own.to_dict() != a.to_dict() for a in aggs):
        aggs.append(own)
    return aggs


def _agg_key(agg: Aggregation) -> str:
    params = "".join(f"_{k}{v:g}" for k, v in agg.params().items())
    return agg.name + params


def _length_picks(pools: Sequence[CandidatePool], prefer: str, seed: int) -> dict[str, Any]:
    """Best-of-n by length alone: the longest (or shortest) candidate of every pool."""
    sign = 1.0 if prefer == "longer" else -1.0
    picks = [
        pick(
            pool,
            RewardEstimate.from_members(
                sign * np.array([[len(c) for c in pool.candidates]], dtype=np.float64)
            ),
            Aggregation("mean"),
        )
        for pool in pools
    ]
    summary = summarise_picks(picks, seed=seed)
    return {k: summary[k] for k in ("gold", "regret", "win_vs_random") if k in summary}


def evaluate_pools(
    model: RewardModelBase,
    pools: Sequence[CandidatePool],
    *,
    config: EvalConfig | None = None,
    aggregations: Sequence[Aggregation] | None = None,
    progress: bool = False,
    clock: Clock = time.perf_counter,
) -> dict[str, Any]:
    """Best-of-n on pools with gold rewards, for each aggregation, with length controls.

    Returns:
        ``{"kind", "version", "task": "pools", "n_pools", "n_pools_with_gold",
        "aggregations": {key: {"label", ...summarise_picks}}, "length_baseline",
        "length_reward_corr", "starc", "controls", "timing"}``.
    """
    cfg = config or EvalConfig()
    if not pools:
        raise ValueError("no pools to evaluate.")
    _need_scalar_rewards(model, "best-of-n pools")
    t0 = clock()
    estimates = score_pools(model, pools, progress=progress)
    t_score = clock() - t0
    aggs = list(aggregations) if aggregations is not None else _aggregations(model)
    per_agg: dict[str, Any] = {}
    with_gold = [i for i, p in enumerate(pools) if p.gold is not None]
    gold_lengths = [
        np.array([len(c) for c in pools[i].candidates], dtype=np.float64) for i in with_gold
    ]
    golds = [np.asarray(pools[i].gold, dtype=np.float64) for i in with_gold]
    for agg in aggs:
        picks = [pick(p, e, agg) for p, e in zip(pools, estimates, strict=True)]
        per_agg[_agg_key(agg)] = {"label": agg.label(), "aggregation": agg.to_dict()} | (
            summarise_picks(picks, seed=cfg.seed)
        )
        if with_gold:
            per_agg[_agg_key(agg)]["length_controls"] = length_controls(
                [picks[i].index for i in with_gold], gold_lengths, golds, seed=cfg.seed
            )
    out = _header("pools") | {
        "n_pools": len(pools),
        "n_pools_with_gold": sum(p.gold is not None for p in pools),
        "aggregations": per_agg,
    }
    if out["n_pools_with_gold"]:
        out["length_baseline"] = {
            prefer: _length_picks(pools, prefer, cfg.seed) for prefer in ("longer", "shorter")
        }
        out["length_baselines"] = length_baselines(gold_lengths, golds)
    lengths = np.array([len(c) for p in pools for c in p.candidates], dtype=np.float64)
    rewards = np.concatenate([e.mean for e in estimates])
    out["length_reward_corr"] = spearman_or_none(lengths, rewards)
    groups = [p.prompt for p in pools for _ in p.candidates]
    members = np.concatenate([e.members for e in estimates], axis=1)
    out["starc"] = _starc_block(members, rewards, groups)
    controls: dict[str, Any] = {}
    if cfg.batch_check_items:
        prompts = [p.prompt for p in pools for _ in p.candidates][: cfg.batch_check_items]
        texts = [c for p in pools for c in p.candidates][: cfg.batch_check_items]
        controls["batch_invariance"] = _batch_block(model, prompts, texts, None, cfg)
    out["controls"] = controls
    out["timing"] = _timing(t_score, clock() - t0)
    return out


# -- steps --------------------------------------------------------------------------------
def evaluate_steps(
    model: RewardModelBase,
    solutions: Sequence[StepSolution],
    *,
    config: EvalConfig | None = None,
    threshold: float | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """A process reward model on labelled step solutions: per-step accuracy and AUROC,
    and ProcessBench's first-error detection (``evaluate.process.step_metrics``), as the
    ``"task": "steps"`` eval JSON (docs/eval-json.md).

    Every step is scored with the model's rule; rule transforms that centre per prompt
    group the steps by the *problem* prompt (every step of every solution to one
    problem), the step-level analogue of a prompt's candidates. ``threshold`` fixes the
    reward below which a step is called wrong (default: cross-fitted, see
    ``step_metrics``).
    """
    cfg = config or EvalConfig()
    _need_scalar_rewards(model, "step solutions", "need one per step")
    if not solutions:
        raise ValueError("evaluate_steps needs at least one StepSolution, got none.")
    items = [item for sol in solutions for item in step_items(sol.prompt, sol.steps)]
    groups = [sol.prompt for sol in solutions for _ in sol.steps]
    estimate = model.score([p for p, _ in items], [r for _, r in items], progress=progress)
    rewards = model.rule.apply(estimate, groups=groups)
    bounds = np.cumsum([0] + [len(s.steps) for s in solutions])
    per_solution = [rewards[a:b] for a, b in itertools.pairwise(bounds)]
    labels = [s.labels or () for s in solutions]
    metrics = step_metrics(per_solution, labels, threshold=threshold, reps=cfg.reps, seed=cfg.seed)
    rule = {"rule": model.rule.to_dict(), "rule_label": model.rule.label()}
    return _header("steps") | rule | metrics
