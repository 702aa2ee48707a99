"""What the overoptimisation lab reads, from the sandbox or from a user's pools.

One code path, two entry points: :func:`from_sandbox` wraps the generated
sandbox, :func:`from_pools` turns a user's best-of-n pools with gold values
into the same thing. Either way the lab gets training comparisons (labelled per
seed from the gold gap), held-out comparisons (scored against the gold order)
and test pools (best-of-n against gold).

From pools, prompts are split (seeded) into a train and a test part, so no
prompt's candidates reach both (or as the file's ``split`` column says); comparisons are pairs of candidates of one
prompt whose gold values are both known; candidates with missing gold (null)
are dropped from every pool and counted.

Labels follow Bradley–Terry on the gold gap, ``P(a ≻ b) = σ((g_a − g_b) / T)``,
then each is flipped with probability ``flip_rate``. ``T`` is in the units of
the gold as ``label_scale`` presents it:

- ``raw``: the gold as given (``T`` in gold units; a 1–10 judge score and a
  reward-model logit need different ``T``);
- ``standardize``: gold divided by its standard deviation over the training
  candidates (``T`` in standard deviations: scale-free);
- ``rank``: each candidate's within-prompt rank, scaled to [0, 1] (``T`` in
  fractions of a pool's range: scale- and shape-free).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
from scipy.stats import rankdata

from rewardhedge.config import Option, check_seed
from rewardhedge.data.sandbox.generate import label_draws
from rewardhedge.errors import ConfigError
from rewardhedge.types import CandidatePool, PreferencePair

SPLITS = ("train", "test")


class LabelScale(Option):
    RAW = "raw"
    """Gold as given: the temperature is in gold units."""
    STANDARDIZE = "standardize"
    """Gold over its standard deviation on the training candidates."""
    RANK = "rank"
    """Within-prompt rank of the gold, scaled to [0, 1]."""


@dataclass(frozen=True)
class LabelModel:
    """How noisy training labels are drawn from gold."""

    temperature: float = 1.0
    """Bradley–Terry temperature in the units ``scale`` gives the gold; 0: the better
    candidate always wins before flips."""
    flip_rate: float = 0.25
    """Share of labels flipped after the Bradley-Terry draw."""
    scale: LabelScale = LabelScale.RAW
    """What the temperature is measured in: raw (gold units), standardize (gold standard
    deviations) or rank (fractions of a pool's rank range)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", LabelScale.parse(self.scale, "labels.scale"))
        if not 0.0 <= self.flip_rate <= 0.5:
            raise ConfigError(f"labels.flip_rate == {self.flip_rate!r}, must be in [0, 0.5].")
        if not np.isfinite(self.temperature) or self.temperature < 0:
            raise ConfigError(f"labels.temperature == {self.temperature!r}, must be >= 0.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "flip_rate": self.flip_rate,
            "scale": self.scale.value,
        }


@dataclass(frozen=True)
class LabComparison:
    """Two responses to one prompt with their gold values (and the label gap)."""

    id: str
    prompt: str
    a: str
    b: str
    gold_a: float
    gold_b: float
    label_gap: float
    """``g_a − g_b`` on the label scale (what the Bradley–Terry draw reads)."""
    subset: str | None = None


@dataclass(frozen=True)
class LabPool:
    """A test prompt's candidates with known gold (missing-gold candidates dropped)."""

    id: str
    prompt: str
    candidates: tuple[str, ...]
    gold: np.ndarray
    subset: str | None = None
    shifted: np.ndarray | None = None
    """Bool per candidate: inputs past anything in training (sandbox only)."""
    properties: tuple[dict[str, Any], ...] | None = None
    """Per candidate: what made it (sandbox only; shown in the report's examples)."""

    @property
    def size(self) -> int:
        return len(self.candidates)


@dataclass(frozen=True)
class LabData:
    """Everything one lab run reads."""

    source: str
    train: tuple[LabComparison, ...]
    test: tuple[LabComparison, ...]
    pools: tuple[LabPool, ...]
    labels: LabelModel
    seed: int = 0
    """Seeds the label draws with each label seed."""
    summary: dict[str, Any] = field(default_factory=dict)
    """How the data were built (split sizes, dropped candidates, …), for the lab JSON."""

    def _split(self, split: str) -> tuple[LabComparison, ...]:
        if split not in SPLITS:
            raise ConfigError(f"lab split must be one of {', '.join(SPLITS)}, got {split!r}")
        return self.train if split == "train" else self.test

    def label_wins(self, split: str, label_seed: int) -> np.ndarray:
        """`(n,)` bool: whether ``a`` wins each ``split`` comparison under ``label_seed``."""
        rng = np.random.default_rng([self.seed, label_seed, SPLITS.index(split), 7])
        gaps = np.array([c.label_gap for c in self._split(split)])
        return label_draws(gaps, self.labels.temperature, self.labels.flip_rate, rng)

    def labelled_pairs(self, split: str, label_seed: int) -> list[PreferencePair]:
        """The ``split`` comparisons with labels sampled for ``label_seed``."""
        wins = self.label_wins(split, label_seed)
        out = []
        for c, w in zip(self._split(split), wins, strict=True):
            chosen, rejected = (c.a, c.b) if w else (c.b, c.a)
            out.append(
                PreferencePair(
                    prompt=c.prompt,
                    chosen=chosen,
                    rejected=rejected,
                    subset=c.subset,
                    source=f"{self.source}:{split}",
                    id=c.id,
                )
            )
        return out

    @property
    def max_pool_size(self) -> int:
        return max(p.size for p in self.pools)

    def texts(self) -> tuple[list[str], list[str]]:
        """``(prompts, responses)`` of every comparison side and pool candidate."""
        prompts, responses = [], []
        for c in (*self.train, *self.test):
            prompts += [c.prompt, c.prompt]
            responses += [c.a, c.b]
        for pool in self.pools:
            prompts += [pool.prompt] * pool.size
            responses += list(pool.candidates)
        return prompts, responses


def polished_mask(sandbox: Any) -> np.ndarray:
    """`(P, N)` bool: the sandbox pools' candidates padded past anything in training
    (the shifted inputs)."""
    top = sandbox.config.sampler.verbosity_heavy[0]
    return np.array([[r.props.verbosity >= top for r in p.responses] for p in sandbox.pools])


def from_sandbox(sandbox: Any) -> LabData:
    """The generated sandbox as lab data (labels drawn exactly as ``Sandbox.label_wins``)."""
    cfg = sandbox.config
    shifted = polished_mask(sandbox)

    def comparisons(items: Sequence[Any]) -> tuple[LabComparison, ...]:
        return tuple(
            LabComparison(
                c.id,
                c.task.prompt,
                c.a.text,
                c.b.text,
                c.a.gold,
                c.b.gold,
                c.a.gold - c.b.gold,
                c.task.family,
            )
            for c in items
        )

    pools = tuple(
        LabPool(
            id=p.id,
            prompt=p.task.prompt,
            candidates=tuple(r.text for r in p.responses),
            gold=p.gold,
            subset=p.task.family,
            shifted=shifted[i],
            properties=tuple(
                r.props.to_dict() | {"length_words": len(r.text.split())} for r in p.responses
            ),
        )
        for i, p in enumerate(sandbox.pools)
    )
    labels = LabelModel(temperature=cfg.temperature, flip_rate=cfg.flip_rate)
    return LabData(
        source="sandbox",
        train=comparisons(sandbox.train),
        test=comparisons(sandbox.test),
        pools=pools,
        labels=labels,
        seed=cfg.seed,
        summary={
            "kind": "sandbox",
            "n_train_comparisons": len(sandbox.train),
            "n_test_comparisons": len(sandbox.test),
            "n_pools": len(pools),
        },
    )


@dataclass(frozen=True)
class PoolSplit:
    """How user pools become lab data."""

    train_fraction: float = 0.5
    """Share of the prompts (with at least two known-gold candidates) used for training."""
    pairs_per_prompt: int = 16
    """Comparisons drawn per prompt (a seeded sample of its candidate pairs); 0: all pairs."""
    seed: int = 0
    """Seed of the prompt split and of the comparisons drawn (``--data-seed``)."""
    labels: LabelModel = field(default_factory=LabelModel)
    """How noisy labels are drawn from the gold."""

    def __post_init__(self) -> None:
        check_seed("pools.seed", self.seed)
        if not 0.0 < self.train_fraction < 1.0:
            raise ConfigError(
                f"pools.train_fraction == {self.train_fraction!r}, must be in (0, 1)."
            )
        if self.pairs_per_prompt < 0:
            raise ConfigError(
                f"pools.pairs_per_prompt == {self.pairs_per_prompt!r}, must be >= 0 (0: all)."
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_fraction": self.train_fraction,
            "pairs_per_prompt": self.pairs_per_prompt,
            "seed": self.seed,
            "labels": self.labels.to_dict(),
        }


def split_prompts(prompts: Sequence[str], train_fraction: float, seed: int) -> np.ndarray:
    """Bool per pool: in the train part. Pools that share a prompt text go to one side."""
    distinct = sorted(set(prompts))
    order = np.random.default_rng([seed, 4021]).permutation(len(distinct))
    n_train = min(max(1, round(train_fraction * len(distinct))), len(distinct) - 1)
    train = {distinct[i] for i in order[:n_train]}
    return np.array([p in train for p in prompts])


def _sides(pools: Sequence[CandidatePool], split: PoolSplit, source: str) -> np.ndarray:
    """Bool per pool, in the train part: the file's ``split`` column when it has one,
    else a seeded split by prompt."""
    given = [p.split for p in pools]
    if all(g is None for g in given):
        return split_prompts([p.prompt for p in pools], split.train_fraction, split.seed)
    if any(g is None for g in given):
        missing = sum(g is None for g in given)
        raise ConfigError(
            f"{source}: {missing} usable pool(s) have no 'split' while the others do; give "
            "every pool a split ('train' or 'test') or none."
        )
    sides = np.array([g == "train" for g in given])
    if sides.all() or not sides.any():
        raise ConfigError(f"{source}: the 'split' column puts every pool on one side.")
    return sides


def _valid(pool: CandidatePool) -> tuple[tuple[str, ...], np.ndarray]:
    gold = np.array([np.nan if g is None else g for g in pool.gold or ()], dtype=np.float64)
    keep = np.isfinite(gold)
    return tuple(c for c, k in zip(pool.candidates, keep, strict=True) if k), gold[keep]


def _label_values(gold: np.ndarray, scale: LabelScale, sd: float) -> np.ndarray:
    if scale is LabelScale.STANDARDIZE:
        return gold / sd
    if scale is LabelScale.RANK:
        return (rankdata(gold) - 1) / max(len(gold) - 1, 1)
    return gold


def _pair_indices(n: int, cap: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    pairs = list(combinations(range(n), 2))
    if cap and len(pairs) > cap:
        pick = np.sort(rng.choice(len(pairs), size=cap, replace=False))
        pairs = [pairs[i] for i in pick]
    # File order within each pair: labels are drawn from the gold gap, so which side is
    # "a" changes no label's distribution, and a file holding a sandbox's comparisons as
    # two-candidate pools then gets the very label draws the built-in lab makes.
    return pairs


def from_pools(pools: Sequence[CandidatePool], split: PoolSplit, source: str = "pools") -> LabData:
    """User pools with gold values as lab data (see the module docstring)."""
    kept, dropped_candidates, unusable = [], 0, 0
    for pool in pools:
        if pool.gold is None:
            unusable += 1
            continue
        candidates, gold = _valid(pool)
        dropped_candidates += len(pool.candidates) - len(candidates)
        if len(candidates) < 2:
            unusable += 1
            continue
        kept.append((pool, candidates, gold))
    if len(kept) < 2:
        raise ConfigError(
            f"{source}: {len(kept)} pool(s) with at least two candidates of known gold; the lab "
            "needs at least 2 (one to train on, one to test)."
        )
    in_train = _sides([p for p, _, _ in kept], split, source)
    train_gold = np.concatenate([g for (_, _, g), t in zip(kept, in_train, strict=True) if t])
    sd = float(train_gold.std())
    if split.labels.scale is LabelScale.STANDARDIZE and not sd > 0:
        raise ConfigError(f"{source}: the training candidates' gold is constant; nothing to learn.")
    rng = np.random.default_rng([split.seed, 8117])
    train, test, test_pools = [], [], []
    for idx, ((pool, candidates, gold), is_train) in enumerate(zip(kept, in_train, strict=True)):
        pid = pool.id or f"pool-{idx}"
        values = _label_values(gold, split.labels.scale, sd)
        comps = [
            LabComparison(
                f"{pid}:{i}-{j}",
                pool.prompt,
                candidates[i],
                candidates[j],
                float(gold[i]),
                float(gold[j]),
                float(values[i] - values[j]),
                pool.subset,
            )
            for i, j in _pair_indices(len(candidates), split.pairs_per_prompt, rng)
            if candidates[i] != candidates[j]
        ]
        (train if is_train else test).extend(comps)
        if not is_train:
            test_pools.append(LabPool(pid, pool.prompt, candidates, gold, pool.subset))
    sizes = np.array([p.size for p in test_pools])
    return LabData(
        source=source,
        train=tuple(train),
        test=tuple(test),
        pools=tuple(test_pools),
        labels=split.labels,
        seed=split.seed,
        summary={
            "kind": "pools",
            "source": source,
            "split": split.to_dict(),
            "n_pools_read": len(pools),
            "n_pools_unusable": unusable,
            "n_candidates_missing_gold": dropped_candidates,
            "split_from": "file" if kept[0][0].split is not None else "seeded",
            "n_train_prompts": int(in_train.sum()),
            "n_test_prompts": len(test_pools),
            "n_train_comparisons": len(train),
            "n_test_comparisons": len(test),
            "test_pool_sizes": {"min": int(sizes.min()), "max": int(sizes.max())},
            "gold_sd": sd,
        },
    )
