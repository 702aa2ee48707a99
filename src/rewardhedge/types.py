"""The shapes every stage shares: records in, reward estimates out.

Numpy and the standard library only, so that metrics and selection rules can
be tested without torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class PreferencePair:
    """One human (or synthetic) judgement: ``chosen`` is preferred to ``rejected``.

    Texts are the response only; the shared context is ``prompt``. For the
    Anthropic HH-RLHF format the data layer splits the dialogue at the last
    ``"\\n\\nAssistant:"`` to fill these fields.
    """

    prompt: str
    chosen: str
    rejected: str
    margin: float | None = None
    """How strongly chosen is preferred, in reward units; used by the BT loss
    ``-log σ(r_c − r_r − margin)``. ``None`` means 0."""
    subset: str | None = None
    """Benchmark subset or category, for per-subset accuracy."""
    source: str | None = None
    """Where the pair came from (a file, a data set name)."""
    id: str | None = None
    """A stable identifier; the loader fills ``"<file>:<line>"`` if absent."""
    chosen_score: float | None = None
    """An absolute rating of ``chosen`` (HelpSteer2-style), the target of the
    regression objectives; ``None`` when the data has none."""
    rejected_score: float | None = None
    """An absolute rating of ``rejected``."""
    soft_label: float | None = None
    """A soft label: the probability, in [0, 1], that ``chosen`` is preferred (``None``:
    1, a hard label). The BT loss becomes the cross-entropy against it; the audit's
    ``soft`` action writes it for suspect pairs."""


@dataclass(frozen=True)
class OneToManyRow:
    """One chosen response against several rejected ones for the same prompt.

    RewardMATH-style evaluation rows: the row counts as correct only when the
    chosen response outscores every rejected one.
    """

    prompt: str
    chosen: str
    rejected: tuple[str, ...]
    subset: str | None = None
    source: str | None = None
    id: str | None = None

    def pairs(self) -> list[PreferencePair]:
        """The row as (chosen, rejected_j) preference pairs, one per rejected response."""
        return [
            PreferencePair(
                self.prompt,
                self.chosen,
                r,
                subset=self.subset,
                source=self.source,
                id=f"{self.id}#{j}" if self.id is not None else None,
            )
            for j, r in enumerate(self.rejected)
        ]


@dataclass(frozen=True)
class ScoreItem:
    """One (prompt, response) to score."""

    prompt: str
    response: str
    id: str | None = None


@dataclass(frozen=True)
class RatedItem:
    """One response with an absolute rating (HelpSteer-style item rows), the training
    data of the ``regression`` and ``hl_gauss`` objectives when there are no pairs."""

    prompt: str
    response: str
    score: float
    id: str | None = None


@dataclass(frozen=True)
class CandidatePool:
    """Best-of-n candidates for one prompt; ``gold`` holds reference rewards when known."""

    prompt: str
    candidates: tuple[str, ...]
    gold: tuple[float, ...] | None = None
    id: str | None = None
    subset: str | None = None
    split: str | None = None
    """``"train"`` or ``"test"``: a fixed prompt split for the overoptimisation lab."""

    def __post_init__(self) -> None:
        if self.gold is not None and len(self.gold) != len(self.candidates):
            raise ValueError(
                f"pool {self.id!r}: {len(self.gold)} gold scores for {len(self.candidates)} candidates"
            )


@dataclass(frozen=True)
class RewardEstimate:
    """Rewards for ``n`` items from an ``m``-member model, with their spread.

    Attributes:
        mean: `(n,)` mean reward over the raw (un-normalised) members.
        epistemic: `(n,)` **variance** (reward units squared) of the member
            means, ``members.var(axis=0)`` (ddof=0): disagreement between
            members, which more data would reduce.
        aleatoric: `(n,)` **variance** of the noise the members predict,
            averaged over members; zeros for plain Bradley-Terry heads, which
            model no noise.
        members: `(m, n)` every member's reward, as aggregations see it: with
            a fitted member normalisation (``models/member_norm.py``) each
            member is centred and scaled on the training items, so
            ``members.mean(axis=0)`` may differ from ``mean``.

    Example:
        >>> est = RewardEstimate.from_members(np.array([[1.0, 2.0], [3.0, 2.0]]))
        >>> est.mean.tolist(), est.epistemic.tolist()
        ([2.0, 2.0], [1.0, 0.0])
    """

    mean: np.ndarray
    epistemic: np.ndarray
    aleatoric: np.ndarray
    members: np.ndarray

    def __post_init__(self) -> None:
        n = self.mean.shape[0]
        if self.mean.ndim != 1 or self.epistemic.shape != (n,) or self.aleatoric.shape != (n,):
            raise ValueError(
                "RewardEstimate fields mean, epistemic and aleatoric must all have "
                f"shape (n,), got {self.mean.shape}, {self.epistemic.shape}, "
                f"{self.aleatoric.shape}."
            )
        if self.members.ndim != 2 or self.members.shape[1] != n:
            raise ValueError(
                f"RewardEstimate.members must have shape (m, {n}), got {self.members.shape}."
            )

    @classmethod
    def from_members(
        cls, members: np.ndarray, aleatoric: np.ndarray | None = None
    ) -> RewardEstimate:
        """Build from `(m, n)` member rewards (and optional `(m, n)` noise variances)."""
        members = np.asarray(members, dtype=np.float64)
        if members.ndim != 2:
            raise ValueError(f"members must have shape (m, n), got {members.shape}.")
        alea = (
            np.zeros(members.shape[1])
            if aleatoric is None
            else np.asarray(aleatoric, dtype=np.float64).mean(axis=0)
        )
        return cls(
            mean=members.mean(axis=0),
            epistemic=members.var(axis=0),
            aleatoric=alea,
            members=members,
        )

    def __len__(self) -> int:
        return int(self.mean.shape[0])

    @property
    def n_members(self) -> int:
        return int(self.members.shape[0])

    @property
    def std(self) -> np.ndarray:
        """`(n,)` epistemic standard deviation (reward units)."""
        return np.sqrt(self.epistemic)

    @property
    def total(self) -> np.ndarray:
        """`(n,)` total predictive variance: epistemic + aleatoric."""
        return self.epistemic + self.aleatoric

    def lower(self, k: float = 1.0) -> np.ndarray:
        """`(n,)` lower confidence bound ``mean − k·std`` (epistemic std)."""
        return self.mean - k * self.std

    def take(self, index: np.ndarray | Sequence[int]) -> RewardEstimate:
        """The estimate restricted to (or reordered by) ``index``."""
        idx = np.asarray(index, dtype=np.int64)
        return RewardEstimate(
            self.mean[idx], self.epistemic[idx], self.aleatoric[idx], self.members[:, idx]
        )

    def to_dict(self) -> dict[str, list[Any]]:
        """Plain lists, for JSON."""
        return {
            "mean": self.mean.tolist(),
            "epistemic": self.epistemic.tolist(),
            "aleatoric": self.aleatoric.tolist(),
            "members": self.members.tolist(),
        }


@dataclass(frozen=True)
class PairwiseEstimate:
    """P(chosen ≻ rejected) for ``n`` pairs, per member and for the ensemble.

    Attributes:
        prob: `(n,)` ensemble probability, the mean of member probabilities
            (Bayesian model averaging, not σ of the mean margin), after the
            temperature.
        members: `(m, n)` each member's probability (see
            :func:`pairwise_from_estimates`).
        margin: `(n,)` mean reward difference r_c − r_r (of ``mean``).
        chosen, rejected: the two `RewardEstimate`s the pair was built from.
        temperature: the temperature the probabilities were divided by.
        raw_prob: `(n,)` ``prob`` at temperature 1 (``None`` when that is ``prob``).
    """

    prob: np.ndarray
    members: np.ndarray
    margin: np.ndarray
    chosen: RewardEstimate
    rejected: RewardEstimate
    temperature: float = 1.0
    raw_prob: np.ndarray | None = None

    @property
    def prob_std(self) -> np.ndarray:
        """`(n,)` spread of the member probabilities."""
        return self.members.std(axis=0)

    def __len__(self) -> int:
        return int(self.prob.shape[0])


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


PROBIT_SCALE = math.pi / 8.0


def member_logits(chosen: RewardEstimate, rejected: RewardEstimate) -> np.ndarray:
    """`(m, n)` each member's logit of P(chosen ≻ rejected) at temperature 1.

    ``r_c − r_r``, divided by ``sqrt(1 + π/8·(σ_c² + σ_r²))`` when the model
    predicts noise variances (``aleatoric``): MacKay's probit approximation of
    σ integrated over Gaussian reward noise, PEARL's preference probability.
    With zero aleatoric variance it is the plain Bradley-Terry logit.
    """
    if chosen.members.shape != rejected.members.shape:
        raise ValueError(
            "chosen and rejected estimates differ in shape: "
            f"{chosen.members.shape} vs {rejected.members.shape}."
        )
    diff = chosen.members - rejected.members  # (m, n)
    noise = chosen.aleatoric + rejected.aleatoric  # (n,)
    if np.any(noise):
        diff = diff / np.sqrt(1.0 + PROBIT_SCALE * noise)
    return diff


def pairwise_from_estimates(
    chosen: RewardEstimate, rejected: RewardEstimate, temperature: float = 1.0
) -> PairwiseEstimate:
    """Combine rewards of chosen and rejected responses into preference probabilities.

    Member ``k``'s probability is ``σ(logit_k / T)`` with the logit of
    :func:`member_logits`; the ensemble's is their mean.
    """
    logits = member_logits(chosen, rejected)
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature == {temperature!r}, must be a finite number > 0.")
    member_prob = sigmoid(logits / temperature)
    raw = None if temperature == 1.0 else sigmoid(logits).mean(axis=0)
    return PairwiseEstimate(
        prob=member_prob.mean(axis=0),
        members=member_prob,
        margin=chosen.mean - rejected.mean,
        chosen=chosen,
        rejected=rejected,
        temperature=float(temperature),
        raw_prob=raw,
    )


@runtime_checkable
class RewardModel(Protocol):
    """Anything that scores (prompt, response) items with uncertainty."""

    def score(
        self, prompts: Sequence[str], responses: Sequence[str]
    ) -> RewardEstimate:  # pragma: no cover - protocol
        ...


@dataclass
class LoadReport:
    """What a loader kept and what it rejected (nothing is dropped silently)."""

    path: str
    n_read: int = 0
    n_kept: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)
    rejects_path: str | None = None
    n_duplicates: int = 0
    """Kept rows that repeat an earlier row (pairs: same prompt, chosen and rejected
    once whitespace is collapsed); they are kept, only counted."""

    @property
    def n_rejected(self) -> int:
        return len(self.rejects)


def step_prompt(prompt: str, prefix: Sequence[str]) -> str:
    """The text a process reward model reads as its prompt for the next step.

    A PRM is an ordinary reward model that scores ``(step_prompt(prompt,
    steps[:t]), steps[t])``: the question, then the steps so far, numbered, so
    the same encoder and heads serve outcome and process rewards.

    Example:
        >>> step_prompt("Start with 2. Add 3.", ["2 + 3 = 5."])
        'Start with 2. Add 3.\\n\\nStep 1: 2 + 3 = 5.'
        >>> step_prompt("Q?", [])
        'Q?'
    """
    if not prefix:
        return prompt
    return prompt + "\n\n" + "\n".join(f"Step {i}: {s}" for i, s in enumerate(prefix, 1))


def step_items(prompt: str, steps: Sequence[str]) -> list[tuple[str, str]]:
    """The ``(prompt, response)`` items a process reward model scores for a solution:
    step ``t`` after the steps before it, ``(step_prompt(prompt, steps[:t]), steps[t])``.

    Example:
        >>> step_items("Q?", ["a", "b"])
        [('Q?', 'a'), ('Q?\\n\\nStep 1: a', 'b')]
    """
    return [(step_prompt(prompt, steps[:t]), step) for t, step in enumerate(steps)]


@dataclass(frozen=True)
class StepSolution:
    """A solution split into steps, with the gold validity of each step when known.

    ``labels[t]`` says whether step ``t`` is correct given the steps before it.
    ProcessBench-style data gives only the index of the first wrong step, so the
    validity of the steps after it is unknown: those labels are ``None``. A
    ``None`` label may therefore only follow a ``False`` one; sandbox solutions
    always carry a bool for every step.
    """

    prompt: str
    steps: tuple[str, ...]
    labels: tuple[bool | None, ...] | None = None
    """Gold validity per step (``None`` for the whole tuple: unknown)."""
    id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise ValueError(f"step solution {self.id!r}: needs at least one step, got none.")
        if self.labels is None:
            return
        labels = tuple(None if v is None else bool(v) for v in self.labels)
        object.__setattr__(self, "labels", labels)
        if len(labels) != len(self.steps):
            raise ValueError(
                f"step solution {self.id!r}: {len(labels)} labels for {len(self.steps)} steps; "
                "give one label per step."
            )
        first_false = next((i for i, v in enumerate(labels) if v is False), len(labels))
        unknown = [i for i, v in enumerate(labels) if v is None]
        if unknown and unknown[0] < first_false:
            raise ValueError(
                f"step solution {self.id!r}: label {unknown[0]} is unknown (None) before the "
                "first wrong step; only steps after the first error may be unknown."
            )

    @property
    def first_error(self) -> int | None:
        """Index of the first step labelled wrong, ``None`` if every step is valid."""
        if self.labels is None:
            raise ValueError(f"step solution {self.id!r} has no labels, so no first error.")
        return next((i for i, v in enumerate(self.labels) if v is False), None)
