"""Build the sandbox: training and test comparisons, best-of-n pools, noisy labels.

Texts are fixed by ``SandboxConfig.seed``; labels are sampled separately for
each label seed, so several proxy seeds share one set of texts (and one
embedding cache) and differ only in their labels and head initialisation.
Labels follow Bradley-Terry on the gold reward, ``P(a ≻ b) = σ((g_a − g_b)/T)``,
then each label is flipped with probability ``flip_rate`` (Coste et al. use
25%).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from rewardhedge.data.sandbox.gold import GoldWeights, gold_reward
from rewardhedge.data.sandbox.responses import (
    PADDING,
    ResponseProps,
    SamplerConfig,
    render,
    sample_props,
)
from rewardhedge.data.sandbox.tasks import FAMILIES, Task, make_tasks
from rewardhedge.errors import ConfigError
from rewardhedge.types import CandidatePool, PreferencePair, sigmoid

SPLITS = ("train", "test")


@dataclass(frozen=True)
class SandboxConfig:
    """Sizes and noise of the sandbox task."""

    seed: int = 0
    """Seed of the texts (tasks, responses and their gold)."""
    train_prompts: int = 3000
    """One comparison (two responses) per training prompt."""
    test_prompts: int = 1000
    """Held-out comparisons (accuracy and calibration against the gold order)."""
    pool_prompts: int = 100
    """Best-of-n prompts, one pool each; more give tighter CIs."""
    pool_size: int = 32
    """Candidates per best-of-n pool (the largest n of the lab)."""
    temperature: float = 1.0
    """Bradley-Terry temperature of the labels; 0 means the better response
    always wins (before flips)."""
    flip_rate: float = 0.25
    """Share of training labels flipped after the Bradley-Terry draw."""
    families: tuple[str, ...] = FAMILIES
    gold: GoldWeights = field(default_factory=GoldWeights)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"sandbox: seed must be an integer >= 0, got {self.seed!r}")
        for name in ("train_prompts", "test_prompts", "pool_prompts"):
            if getattr(self, name) < 1:
                raise ConfigError(f"sandbox: {name} must be at least 1, got {getattr(self, name)}")
        if self.pool_size < 2:
            raise ConfigError(f"sandbox: pool_size must be at least 2, got {self.pool_size}")
        if not 0.0 <= self.flip_rate <= 0.5:
            raise ConfigError(f"sandbox: flip_rate must be in [0, 0.5], got {self.flip_rate}")
        if self.temperature < 0:
            raise ConfigError(f"sandbox: temperature must be ≥ 0, got {self.temperature}")
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown or not self.families:
            raise ConfigError(
                f"sandbox: families must be among {', '.join(FAMILIES)}; got {unknown or 'none'}"
            )
        top = self.sampler.max_verbosity
        if top > len(PADDING):
            raise ConfigError(
                f"sandbox: verbosity above {len(PADDING)} is not supported, got {top}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Response:
    text: str
    props: ResponseProps
    gold: float


@dataclass(frozen=True)
class Comparison:
    """Two responses to one prompt, before a label is drawn."""

    id: str
    task: Task
    a: Response
    b: Response

    def to_pair(self, a_wins: bool, split: str) -> PreferencePair:
        """The comparison as a preference pair, ``a`` chosen when ``a_wins``."""
        chosen, rejected = (self.a, self.b) if a_wins else (self.b, self.a)
        return PreferencePair(
            prompt=self.task.prompt,
            chosen=chosen.text,
            rejected=rejected.text,
            subset=self.task.family,
            source=f"sandbox:{split}",
            id=self.id,
        )


@dataclass(frozen=True)
class SandboxPool:
    """Best-of-n candidates for one prompt, with their gold rewards and properties."""

    id: str
    task: Task
    responses: tuple[Response, ...]

    def to_pool(self) -> CandidatePool:
        return CandidatePool(
            prompt=self.task.prompt,
            candidates=tuple(r.text for r in self.responses),
            gold=tuple(r.gold for r in self.responses),
            id=self.id,
            subset=self.task.family,
        )

    @property
    def gold(self) -> np.ndarray:
        return np.array([r.gold for r in self.responses])


@dataclass(frozen=True)
class Sandbox:
    """Everything the overoptimisation lab needs, generated from one config."""

    config: SandboxConfig
    train: tuple[Comparison, ...]
    test: tuple[Comparison, ...]
    pools: tuple[SandboxPool, ...]

    def label_wins(self, split: str, label_seed: int) -> np.ndarray:
        """`(n,)` bool: whether response ``a`` wins each ``split`` comparison under ``label_seed``."""
        comparisons = self._split(split)
        rng = np.random.default_rng([self.config.seed, label_seed, SPLITS.index(split), 7])
        gaps = np.array([c.a.gold - c.b.gold for c in comparisons])
        return label_draws(gaps, self.config.temperature, self.config.flip_rate, rng)

    def labelled_pairs(self, split: str, label_seed: int) -> list[PreferencePair]:
        """The ``split`` comparisons with labels sampled for ``label_seed``."""
        wins = self.label_wins(split, label_seed)
        return [c.to_pair(bool(w), split) for c, w in zip(self._split(split), wins, strict=True)]

    def decided(self, split: str) -> list[Comparison]:
        """The ``split`` comparisons whose gold rewards differ (exact ties left out)."""
        return [c for c in self._split(split) if c.a.gold != c.b.gold]

    def gold_pairs(self, split: str) -> list[PreferencePair]:
        """The ``split`` comparisons ordered by the gold reward; exact ties left out."""
        return [c.to_pair(c.a.gold > c.b.gold, split) for c in self.decided(split)]

    def _split(self, split: str) -> tuple[Comparison, ...]:
        if split not in SPLITS:
            raise ConfigError(f"sandbox split must be one of {', '.join(SPLITS)}, got {split!r}")
        return self.train if split == "train" else self.test


def label_draws(
    gaps: np.ndarray, temperature: float, flip_rate: float, rng: np.random.Generator
) -> np.ndarray:
    """Whether ``a`` wins each comparison with gold gap ``g_a − g_b``: BT draw, then flips."""
    gaps = np.asarray(gaps, dtype=np.float64)
    if temperature > 0:
        p_a = sigmoid(gaps / temperature)
    else:
        p_a = np.where(gaps > 0, 1.0, np.where(gaps < 0, 0.0, 0.5))
    a_wins = rng.random(gaps.shape) < p_a
    flips = rng.random(gaps.shape) < flip_rate
    return a_wins ^ flips


def _response(task: Task, rng: np.random.Generator, cfg: SandboxConfig, mode: str) -> Response:
    props = sample_props(task, rng, replace(cfg.sampler, mode=mode))
    return Response(render(task, props, rng), props, gold_reward(task, props, cfg.gold))


def _comparisons(
    tasks: list[Task], rng: np.random.Generator, cfg: SandboxConfig, split: str
) -> tuple[Comparison, ...]:
    out = []
    for i, task in enumerate(tasks):
        a = _response(task, rng, cfg, "train")
        b = _response(task, rng, cfg, "train")
        for _ in range(50):
            if b.text != a.text:
                break
            b = _response(task, rng, cfg, "train")
        out.append(Comparison(f"sandbox-{split}-{i}", task, a, b))
    return tuple(out)


def generate_sandbox(config: SandboxConfig | None = None) -> Sandbox:
    """Generate the sandbox's texts and gold rewards (deterministic for ``config.seed``)."""
    cfg = config or SandboxConfig()
    rng = np.random.default_rng([cfg.seed, 20261123])
    train = _comparisons(make_tasks(cfg.train_prompts, rng, cfg.families), rng, cfg, "train")
    test = _comparisons(make_tasks(cfg.test_prompts, rng, cfg.families), rng, cfg, "test")
    pools = []
    for i, task in enumerate(make_tasks(cfg.pool_prompts, rng, cfg.families)):
        responses = tuple(_response(task, rng, cfg, "pool") for _ in range(cfg.pool_size))
        pools.append(SandboxPool(f"sandbox-pool-{i}", task, responses))
    return Sandbox(cfg, train, test, tuple(pools))
