"""Process rewards: a reward per step of a solution, from a step-level or an outcome model.

Two ways to get step rewards, with one interface so they can be compared and
used by search:

* :class:`ProcessRewardModel` wraps a reward model trained on *step* pairs
  (e.g. ``StepSandbox.step_pairs``): step ``t`` of a solution is the item
  ``(step_prompt(prompt, steps[:t]), steps[t])`` — the question and the steps so
  far as the prompt, the next step as the response.
* :class:`ImplicitProcessRewardModel` wraps an *outcome* model (trained on whole
  solutions) and reads step rewards off it as differences of consecutive
  prefixes ("Free Process Rewards without Process Labels", Yuan et al.; PRIME):
  ``r_t = s(prompt, render(steps[:t+1])) − s(prompt, render(steps[:t]))``.
  The empty prefix is scored as the response ``render(())`` (``""`` for the
  default rendering, ``"\\n".join``): the outcome model's reward of saying
  nothing yet, one baseline per prompt. Its step rewards telescope — their sum
  is ``s(full) − s(empty)`` — so ``sum`` credit ranks a prompt's solutions
  exactly as the outcome model does, and only other credits (``min``) differ.

Both score all items of a call in **one** ``score`` call (distinct
``(prompt, text)`` items once each) and count them in ``calls_``, so a search
can be compared with another at equal reward calls.

Order of operations in :meth:`~StepRewardModel.solution_rewards`: credit over
the steps first, member by member (each member's own `(T,)` step rewards give
that member's solution reward), then the rule's aggregation over the members.
Aggregating the members first and crediting after would throw away *which*
member doubts the solution: with ``min`` credit, ``min_t mean_k r_kt`` can take
its minimum at a step no single member finds worst; crediting member-wise keeps
each member's view of the whole solution, so the ensemble's disagreement about
the solution (not about isolated steps) is what a conservative aggregation
(WCO, LCB, …) penalises.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rewardhedge.data.sandbox.steps import solution_text
from rewardhedge.errors import ConfigError
from rewardhedge.types import RewardEstimate, RewardModel, StepSolution, step_items, step_prompt
from rewardhedge.uncertainty.aggregation import Aggregation
from rewardhedge.uncertainty.process import (
    DEFAULT_SOFTMIN_TEMPERATURE,
    CreditKind,
    aggregate_steps,
)
from rewardhedge.uncertainty.reward_rule import RewardRule

__all__ = [
    "ImplicitProcessRewardModel",
    "ProcessRewardModel",
    "Solutions",
    "StepRewardModel",
    "as_prompts_and_steps",
    "credit_estimates",
]

Solutions = Sequence[StepSolution] | tuple[Sequence[str], Sequence[Sequence[str]]]
"""Solutions to score: ``StepSolution`` records, or ``(prompts, step lists)``."""

RuleLike = RewardRule | Aggregation | str


def as_prompts_and_steps(solutions: Solutions) -> tuple[list[str], list[tuple[str, ...]]]:
    """The prompts and step tuples of ``solutions`` (either accepted form), checked.

    Raises:
        TypeError: neither form, or a step that is not a string.
        ValueError: prompts and step lists of different lengths, or a solution with no steps.
    """
    items = list(solutions)
    if items and all(isinstance(s, StepSolution) for s in items):
        prompts, steps = [s.prompt for s in items], [tuple(s.steps) for s in items]
    elif not items:
        return [], []
    elif len(items) == 2 and not any(isinstance(s, StepSolution) for s in items):
        raw_prompts, raw_steps = items
        if isinstance(raw_prompts, str) or isinstance(raw_steps, str):
            raise TypeError("solutions as (prompts, step lists) needs two lists, not strings.")
        prompts, steps = list(raw_prompts), [_step_tuple(s, i) for i, s in enumerate(raw_steps)]
        if len(prompts) != len(steps):
            raise ValueError(
                f"solutions: {len(prompts)} prompts but {len(steps)} step lists; "
                "give one step list per prompt."
            )
    else:
        raise TypeError(
            "solutions must be a sequence of StepSolution records or a pair (prompts, step lists)."
        )
    for i, (p, s) in enumerate(zip(prompts, steps, strict=True)):
        if not isinstance(p, str):
            raise TypeError(f"solution {i}: prompt is {type(p).__name__}, not str.")
        if not s:
            raise ValueError(f"solution {i} has no steps; a process reward scores steps.")
        bad = next((j for j, t in enumerate(s) if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"solution {i}: step {bad} is {type(s[bad]).__name__}, not str.")
    return prompts, steps


def _step_tuple(steps: Any, i: int) -> tuple[str, ...]:
    if isinstance(steps, str) or not isinstance(steps, Sequence):
        raise TypeError(
            f"solution {i}: steps must be a list of strings, got {type(steps).__name__}."
        )
    return tuple(steps)


def _aggregation(rule: RuleLike) -> Aggregation:
    """The ensemble aggregation of ``rule``; transforms need groups a step does not have."""
    if isinstance(rule, Aggregation):
        return rule
    if isinstance(rule, str):
        return Aggregation.parse(rule)
    if isinstance(rule, RewardRule):
        if rule.transform.name != "none":
            raise ConfigError(
                f"step rewards use only a rule's aggregation; transform "
                f"{rule.transform.name!r} needs per-prompt groups of whole responses. "
                "Pass RewardRule.parse(...) without a transform, or an Aggregation."
            )
        return rule.aggregation
    raise ConfigError(
        f"rule must be a RewardRule, an Aggregation or an aggregation name, got {rule!r}."
    )


def credit_estimates(
    estimates: Sequence[RewardEstimate],
    credit: CreditKind | str = CreditKind.MIN,
    rule: RuleLike = "mean",
    *,
    temperature: float = DEFAULT_SOFTMIN_TEMPERATURE,
) -> np.ndarray:
    """`(n,)` solution rewards from per-solution step estimates (``step_scores``'s output).

    Credit over each solution's steps member by member (`(m, T_i)` → `(m,)`),
    then ``rule``'s aggregation over the members (`(m, n)` → `(n,)`). Lets a
    caller score once and compare several credits and rules.
    """
    if not estimates:
        return np.zeros(0)
    members = aggregate_steps(
        [e.members for e in estimates], credit, temperature=temperature
    )  # (m, n)
    return _aggregation(rule).apply(members, axis=0)


class StepRewardModel(ABC):
    """The interface both process reward models share (scores per step, credit, counters).

    Attributes:
        model: the wrapped reward model (anything with ``score(prompts, responses)``).
        rule: the default rule for ``step_rewards`` and ``solution_rewards``; only
            its aggregation over members is used.
        calls_: distinct ``(prompt, text)`` items sent to ``model.score`` so far.
        score_calls_: ``model.score`` calls so far (one per scoring method call).
    """

    def __init__(self, model: RewardModel, *, rule: RuleLike | None = None) -> None:
        if not callable(getattr(model, "score", None)):
            raise TypeError(
                f"{type(self).__name__} wraps a reward model with a score method, "
                f"got {type(model).__name__}."
            )
        if getattr(model, "scalar_rewards", True) is False:
            raise TypeError(
                f"{type(model).__name__} only compares responses (no reward per response); "
                "a process reward needs a scalar reward model."
            )
        self.model = model
        if rule is None:
            rule = getattr(model, "rule", None) or "mean"
        self.rule = _aggregation(rule)
        self.calls_ = 0
        self.score_calls_ = 0

    @abstractmethod
    def _step_items(self, prompt: str, steps: tuple[str, ...]) -> list[tuple[str, str]]:
        """The ``(prompt, text)`` items the solution needs scored."""

    @abstractmethod
    def _last_items(self, prompt: str, prefix: tuple[str, ...], step: str) -> list[tuple[str, str]]:
        """The items ``step``'s reward after ``prefix`` needs (the tail of
        ``_step_items(prompt, (*prefix, step))``, without building the rest)."""

    @abstractmethod
    def _step_estimate(self, est: RewardEstimate) -> RewardEstimate:
        """The `(T,)` step estimate from the scores of ``_step_items`` (same order)."""

    def _score_unique(self, items: list[tuple[str, str]]) -> tuple[RewardEstimate, np.ndarray]:
        """Score the distinct items in one call; `index[i]` locates ``items[i]`` in it."""
        position: dict[tuple[str, str], int] = {}
        index = np.fromiter(
            (position.setdefault(item, len(position)) for item in items),
            dtype=np.int64,
            count=len(items),
        )
        unique = list(position)
        est = self.model.score([p for p, _ in unique], [t for _, t in unique])
        self.calls_ += len(unique)
        self.score_calls_ += 1
        return est, index

    def _item_scores(self, solutions: Solutions) -> list[RewardEstimate]:
        """Per solution, the estimate of its ``_step_items``, all scored in one call."""
        prompts, steps = as_prompts_and_steps(solutions)
        if not prompts:
            return []
        per_solution = [self._step_items(p, s) for p, s in zip(prompts, steps, strict=True)]
        est, index = self._score_unique([item for items in per_solution for item in items])
        out, start = [], 0
        for items in per_solution:
            out.append(est.take(index[start : start + len(items)]))
            start += len(items)
        return out

    def step_scores(self, solutions: Solutions) -> list[RewardEstimate]:
        """One :class:`RewardEstimate` per solution, with one item per step.

        Every item of every solution goes to the wrapped model in a single
        ``score`` call (distinct items once).

        Returns:
            ``n`` estimates; estimate ``i`` has `(T_i,)` fields and `(m, T_i)` members.
        """
        return [self._step_estimate(e) for e in self._item_scores(solutions)]

    def step_rewards(
        self, solutions: Solutions, *, rule: RuleLike | None = None
    ) -> list[np.ndarray]:
        """Per solution, the `(T_i,)` step rewards: ``rule``'s aggregation over the members.

        The aggregation reads ``members`` (as :class:`RewardEstimate` documents:
        normalised per member when the model fits a member normalisation), also
        for ``mean``, so that ``step_rewards(...)[i].sum()`` equals
        ``solution_rewards(..., credit="sum", rule="mean")[i]``.
        """
        agg = self.rule if rule is None else _aggregation(rule)
        return [agg.apply(e.members, axis=0) for e in self.step_scores(solutions)]

    def solution_rewards(
        self,
        solutions: Solutions,
        *,
        credit: CreditKind | str = CreditKind.MIN,
        rule: RuleLike | None = None,
        temperature: float = DEFAULT_SOFTMIN_TEMPERATURE,
    ) -> np.ndarray:
        """`(n,)` one reward per solution: credit over steps member-wise, then ``rule``
        over the members (see the module docstring for why in this order).

        Args:
            solutions: ``StepSolution`` records or ``(prompts, step lists)``.
            credit: how steps combine (``min`` by default, PURE's min-form).
            rule: aggregation over members (default: this model's ``rule``).
            temperature: ``softmin`` credit only, in reward units.
        """
        agg = self.rule if rule is None else _aggregation(rule)
        return credit_estimates(self.step_scores(solutions), credit, agg, temperature=temperature)

    def step_scorer(
        self, rule: RuleLike | None = None
    ) -> Callable[[Sequence[str], Sequence[Sequence[str]], Sequence[str]], np.ndarray]:
        """This model as the step scorer of :mod:`rewardhedge.optimize.step_search`:
        ``score(prompts, prefixes, steps)`` → the `(n,)` rewards of each new step after its
        prefix, ``rule``'s aggregation over the members (default: this model's rule), in
        one ``score`` call per search round, counted in ``calls_``.

        Example:
            >>> # best = step_beam(prompt, my_llm_proposer, prm.step_scorer("lcb"), BeamConfig())
        """
        agg = self.rule if rule is None else _aggregation(rule)

        def score(
            prompts: Sequence[str], prefixes: Sequence[Sequence[str]], steps: Sequence[str]
        ) -> np.ndarray:
            if not len(prompts) == len(prefixes) == len(steps):
                raise ValueError(
                    f"step scorer: {len(prompts)} prompts, {len(prefixes)} prefixes and "
                    f"{len(steps)} steps; give one of each per item."
                )
            if not len(steps):
                return np.zeros(0)
            per_step = [
                self._last_items(prompt, tuple(prefix), step)
                for prompt, prefix, step in zip(prompts, prefixes, steps, strict=True)
            ]
            est, index = self._score_unique([item for items in per_step for item in items])
            bounds = np.cumsum([0] + [len(items) for items in per_step])
            members = [
                self._step_estimate(est.take(index[a:b])).members
                for a, b in itertools.pairwise(bounds)
            ]
            return agg.apply(np.concatenate(members, axis=1), axis=0)

        return score


class ProcessRewardModel(StepRewardModel):
    """A reward model trained on step pairs, read as a process reward model.

    Step ``t`` of a solution is scored as ``(step_prompt(prompt, steps[:t]), steps[t])``,
    the layout ``StepSandbox.step_pairs`` trains on.

    Example:
        >>> from rewardhedge import EnsembleConfig, EncoderConfig
        >>> from rewardhedge.estimators.ensemble import EnsembleRewardModel
        >>> from rewardhedge.types import PreferencePair
        >>> pairs = [PreferencePair(step_prompt("2+3?", ()), "2 + 3 = 5", f"2 + 3 = {k}")
        ...          for k in range(6, 18)]
        >>> cfg = EnsembleConfig(n_members=2, encoder=EncoderConfig(kind="hashing", dim=32))
        >>> prm = ProcessRewardModel(EnsembleRewardModel(cfg).fit(pairs))
        >>> sol = StepSolution("2+3?", ("2 + 3 = 5", "Answer: 5"))
        >>> [e.members.shape for e in prm.step_scores([sol])], prm.calls_
        ([(2, 2)], 2)
    """

    def _step_items(self, prompt: str, steps: tuple[str, ...]) -> list[tuple[str, str]]:
        return step_items(prompt, steps)

    def _last_items(self, prompt: str, prefix: tuple[str, ...], step: str) -> list[tuple[str, str]]:
        return [(step_prompt(prompt, prefix), step)]

    def _step_estimate(self, est: RewardEstimate) -> RewardEstimate:
        return est


class ImplicitProcessRewardModel(StepRewardModel):
    """Step rewards from an outcome model: differences of consecutive prefix scores.

    ``r_t = s(prompt, render(steps[:t+1])) − s(prompt, render(steps[:t]))`` for each
    member, with the empty prefix scored as ``render(())`` (``""`` by default).
    A solution of T steps costs T + 1 items (its prompt's empty prefix is shared
    by every solution of that prompt in the call).

    The step estimate's ``mean`` is the difference of the model's raw means,
    ``members`` the member-wise differences, ``epistemic`` their variance
    across members, and ``aleatoric`` the sum of the two prefixes' noise
    variances (independent noise).

    Args:
        model: an outcome reward model, trained on whole solutions rendered by ``render``.
        rule: the default aggregation over members.
        render: how a list of steps becomes one response; must match the outcome
            model's training data (default: the sandbox's ``solution_text``).
    """

    def __init__(
        self,
        model: RewardModel,
        *,
        rule: RuleLike | None = None,
        render: Callable[[Sequence[str]], str] = solution_text,
    ) -> None:
        super().__init__(model, rule=rule)
        self.render = render

    def _step_items(self, prompt: str, steps: tuple[str, ...]) -> list[tuple[str, str]]:
        return [(prompt, self.render(steps[:t])) for t in range(len(steps) + 1)]

    def _last_items(self, prompt: str, prefix: tuple[str, ...], step: str) -> list[tuple[str, str]]:
        return [(prompt, self.render(prefix)), (prompt, self.render((*prefix, step)))]

    def _step_estimate(self, est: RewardEstimate) -> RewardEstimate:
        members = np.diff(est.members, axis=1)  # (m, T+1) -> (m, T)
        return RewardEstimate(
            mean=np.diff(est.mean),  # (T+1,) -> (T,)
            epistemic=members.var(axis=0),
            aleatoric=est.aleatoric[1:] + est.aleatoric[:-1],
            members=members,
        )

    def prefix_scores(self, solutions: Solutions) -> list[RewardEstimate]:
        """Per solution, the outcome model's `(T_i + 1,)` estimate of every prefix,
        the empty one first (one ``score`` call, counted in ``calls_``)."""
        return self._item_scores(solutions)
