"""Mislabel audit: score every pair with an ensemble that never trained on it.

Wang et al. 2024 ("Secrets of RLHF in Large Language Models Part II: Reward
Modeling", arXiv:2401.06080) measure each pair's preference strength by the
votes of M reward models trained on the same data. A model that trained on a
pair has partly learnt its label, right or wrong, so here the votes are
cross-fitted: the pairs are split by prompt into K folds (seeded), an ensemble
with the user's :class:`~rewardhedge.config.EnsembleConfig` is trained on K − 1
folds and scores the held-out one. Pairs that share a prompt share a fold, so no
model sees a prompt it scores. The statistics themselves are pure functions in
:mod:`rewardhedge.evaluate.audit`; the definitions are in ``docs/audit.md``.

Example:
    >>> from rewardhedge import EnsembleConfig, EncoderConfig, PreferencePair
    >>> pairs = [PreferencePair(f"q{i}", f"good {i}", f"bad {i}") for i in range(30)]
    >>> cfg = EnsembleConfig(n_members=3, encoder=EncoderConfig(kind="hashing", dim=64))
    >>> result = audit_pairs(pairs, cfg, AuditConfig(folds=3))
    >>> len(result), result.held_out.n_members, sorted(set(result.fold.tolist()))
    (30, 3, [0, 1, 2])
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardhedge.config import EnsembleConfig, check_seed
from rewardhedge.encoders import Encoder, build_cached_encoder
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.base import RewardModelBase, check_pairs
from rewardhedge.evaluate.audit import (
    AuditAction,
    PreferenceStrength,
    apply_action,
    flag_suspects,
)
from rewardhedge.train.pair_targets import PairTargets
from rewardhedge.types import PreferencePair

__all__ = ["AuditConfig", "AuditResult", "audit_pairs", "check_audit_size", "prompt_folds"]


@dataclass(frozen=True)
class AuditConfig:
    """How the audit cross-fits, and what it does with the pairs it flags."""

    folds: int = 5
    """Cross-fitting folds K: the pairs are split by prompt into K parts, each scored
    by an ensemble trained on the other K − 1."""
    seed: int = 0
    """Seed of the split of the prompts into folds."""
    threshold: float = 0.5
    """Flag a pair when its suspicion, 1 − the held-out members' mean probability of
    its label, is above this (0.5: the held-out ensemble finds the other label more
    likely)."""
    action: AuditAction = AuditAction.FLAG
    """What the cleaned pairs do with a flagged pair: flag (keep it, only mark it in
    the audit file), drop, flip or soft-label."""

    def __post_init__(self) -> None:
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise ConfigError(f"audit.folds == {self.folds!r}, must be an integer >= 2.")
        check_seed("audit.seed", self.seed)
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0.0 <= t < 1.0:
            raise ConfigError(f"audit.threshold == {t!r}, must be a number in [0, 1).")
        object.__setattr__(self, "action", AuditAction.parse(self.action, "audit.action"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "folds": self.folds,
            "seed": self.seed,
            "threshold": self.threshold,
            "action": self.action.value,
        }


def prompt_folds(prompts: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """`(n,)` fold of each pair: pairs with the same prompt share a fold, folds as equal in
    size as the prompt groups allow (largest groups first, each to the smallest fold;
    ties in a seeded random order).

    Raises:
        ConfigError: fewer distinct prompts than folds.

    Example:
        >>> prompt_folds(["a", "b", "a", "c"], 2, seed=0).tolist()
        [0, 1, 0, 1]
    """
    group: dict[str, int] = {}
    ids = np.array([group.setdefault(p, len(group)) for p in prompts], dtype=np.int64)
    n_groups = len(group)
    if n_groups < folds:
        raise ConfigError(
            f"audit.folds == {folds}, but the pairs have only {n_groups} distinct prompts "
            f"(folds are split by prompt); use at most {n_groups} folds."
        )
    sizes = np.bincount(ids, minlength=n_groups)
    shuffled = np.random.default_rng([seed, 104729]).permutation(n_groups)
    order = shuffled[np.argsort(-sizes[shuffled], kind="stable")]
    heap = [(0, f) for f in range(folds)]
    fold_of = np.empty(n_groups, dtype=np.int64)
    for g in order:
        size, f = heapq.heappop(heap)
        fold_of[g] = f
        heapq.heappush(heap, (size + int(sizes[g]), f))
    return fold_of[ids]


def check_audit_size(
    pairs: Sequence[PreferencePair], folds: int, name: str = "audit.folds"
) -> None:
    """Refuse, before any work, more folds than distinct prompts (``name``: how the
    message calls the setting, e.g. ``--folds``)."""
    n_groups = len({p.prompt for p in pairs})
    if n_groups < folds:
        raise ConfigError(
            f"{name} {folds}: the pairs have only {n_groups} distinct prompts and folds are "
            f"split by prompt; use at most {n_groups} folds."
        )


@dataclass
class AuditResult:
    """Per-pair cross-fitted preference strength, the flags, and how they were made."""

    pairs: list[PreferencePair]
    held_out: PreferenceStrength
    """Each pair scored by the fold model that did not train on it."""
    fold: np.ndarray
    """`(n,)` the fold each pair was held out in."""
    train_index: list[np.ndarray]
    """Per fold, the positions of the pairs its model trained on."""
    config: AuditConfig
    in_sample: PreferenceStrength | None = None
    """The same statistics from a given model (which may have trained on the pairs)."""
    seconds: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def suspicion(self) -> np.ndarray:
        """`(n,)` 1 − the held-out members' mean probability of the given label."""
        return self.held_out.suspicion

    @property
    def flagged(self) -> np.ndarray:
        """`(n,)` bool: suspicion above ``config.threshold``."""
        return flag_suspects(self.suspicion, self.config.threshold)

    def cleaned(self, action: str | AuditAction | None = None) -> list[PreferencePair]:
        """The pairs after ``action`` (default ``config.action``) on the flagged ones."""
        return apply_action(
            self.pairs, self.flagged, action or self.config.action, self.held_out.prob
        )

    def rows(self) -> Iterator[dict[str, Any]]:
        """One JSON-ready dict per pair, in input order (the audit file)."""
        done = {
            AuditAction.FLAG: "flagged",
            AuditAction.DROP: "dropped",
            AuditAction.FLIP: "flipped",
            AuditAction.SOFT: "soft-labelled",
        }[self.config.action]
        flagged, suspicion = self.flagged, self.suspicion
        for i, pair in enumerate(self.pairs):
            row: dict[str, Any] = {"id": pair.id, "fold": int(self.fold[i])}
            row |= self.held_out.row(i)
            row["suspicion"] = float(suspicion[i])
            row["flagged"] = bool(flagged[i])
            row["action"] = done if flagged[i] else "kept"
            if self.in_sample is not None:
                row["in_sample"] = self.in_sample.row(i)
            yield row

    def summary(self) -> dict[str, Any]:
        """Counts and shares for a report: pairs flagged, the held-out agreement with the
        labels, what the action did."""
        n = len(self.pairs)
        flagged = self.flagged
        agree = float(np.mean(self.held_out.prob > 0.5))
        out: dict[str, Any] = {
            "n_pairs": n,
            "n_prompts": len({p.prompt for p in self.pairs}),
            "audit": self.config.to_dict(),
            "n_members": self.held_out.n_members,
            "n_flagged": int(flagged.sum()),
            "share_flagged": float(flagged.mean()),
            "held_out_agreement": agree,
            "mean_suspicion": float(self.suspicion.mean()),
            "n_clean": len(self.cleaned()),
            "seconds": dict(self.seconds),
        }
        if self.in_sample is not None:
            out["in_sample_agreement"] = float(np.mean(self.in_sample.prob > 0.5))
        return out


def audit_pairs(
    pairs: Sequence[PreferencePair],
    config: EnsembleConfig | None = None,
    audit: AuditConfig | None = None,
    *,
    model: RewardModelBase | None = None,
    encoder: Encoder | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = False,
    on_fold: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Cross-fitted vote share, preference strength and suspicion for every pair.

    Args:
        pairs: the preference pairs to audit.
        config: the ensemble each fold trains (e.g. ``EnsembleRewardModel.load(p).config``);
            its calibration settings are not used (the fold models are not calibrated).
        audit: folds, seed, threshold and action.
        model: a fitted model whose own (in-sample) statistics to report beside the
            held-out ones; it is not used for the suspicion.
        encoder: an already built encoder for ``config.encoder`` (default: built, with
            the embedding cache in ``cache_dir`` unless ``use_cache`` is off).
        progress: show the encoding progress bar.
        on_fold: called after each fold as ``on_fold(fold, folds)``.

    Returns:
        The :class:`AuditResult`; ``result.rows()`` is the audit file.

    Raises:
        ConfigError: fewer distinct prompts than folds.
    """
    pairs = check_pairs(pairs, "audit")
    config = config if config is not None else EnsembleConfig()
    audit = audit if audit is not None else AuditConfig()
    prompts = [p.prompt for p in pairs]
    n = len(pairs)
    fold = prompt_folds(prompts, audit.folds, audit.seed)
    enc = (
        encoder
        if encoder is not None
        else build_cached_encoder(config.encoder, cache_dir, use_cache=use_cache)
    )
    t0 = time.perf_counter()
    feats = np.asarray(
        enc.encode(
            prompts + prompts,
            [p.chosen for p in pairs] + [p.rejected for p in pairs],
            progress=progress,
        ),
        dtype=np.float32,
    )  # (2n, d): chosen rows, then rejected rows
    xc, xr = feats[:n], feats[n:]
    t_encode = time.perf_counter() - t0
    targets = PairTargets.from_pairs(pairs, config)

    from rewardhedge.train.fitting import cross_fit

    train_index = [np.flatnonzero(fold != f) for f in range(audit.folds)]
    for f, train in enumerate(train_index):
        _check_held_out(pairs, train, np.flatnonzero(fold == f), f)
    t0 = time.perf_counter()
    held = cross_fit(xc, xr, config, folds=audit.folds, targets=targets, on_fold=on_fold, fold=fold)
    t_fit = time.perf_counter() - t0
    held_out = PreferenceStrength.from_estimates(held.chosen, held.rejected)
    in_sample = None
    if model is not None:
        est = model.compare(pairs)
        in_sample = PreferenceStrength.from_estimates(est.chosen, est.rejected)
    return AuditResult(
        pairs=pairs,
        held_out=held_out,
        fold=fold,
        train_index=train_index,
        config=audit,
        in_sample=in_sample,
        seconds={"encode": t_encode, "cross_fit": t_fit},
    )


def _check_held_out(
    pairs: Sequence[PreferencePair], train: np.ndarray, held: np.ndarray, f: int
) -> None:
    """The invariant the audit rests on: fold ``f``'s model trains on no pair, and no
    prompt, that it scores."""
    if held.size == 0 or np.intersect1d(train, held).size:
        raise RuntimeError(f"fold {f}: held-out pairs are empty or among the training pairs.")
    seen = {pairs[i].prompt for i in train}
    if any(pairs[i].prompt in seen for i in held):
        raise RuntimeError(f"fold {f}: a held-out prompt is among the training prompts.")
