"""Reward-guided search over reasoning steps: best-of-n, step beam search, particle filtering.

Why: a process reward model (PRM) scores a partial solution, so a search can drop
a wrong step as soon as it is written instead of paying for whole wrong
solutions. Whether that beats plain best-of-n at the same number of reward calls
depends on the policy, the reward model and the budget, so the three methods
here share one interface and one budget unit and can be compared directly
(``bench/step_search.py``).

Everything is written against three plain callables, so the same code runs with
the sandbox's step generator on a CPU or with a real LM on a GPU:

- a :class:`StepProposer` ``propose(prompt, prefix, k, rng) -> list[str]``: ``k``
  candidate next steps for a partial solution (an LM's sampled continuations up
  to a step delimiter);
- a :class:`StepScorer` ``score(prompts, prefixes, steps) -> (n,)``: one reward
  per new step given its prefix (a PRM, with whatever ensemble aggregation the
  user chose: mean, a lower confidence bound, …);
- an :class:`OutcomeScorer` ``score(prompts, solutions) -> (n,)``: one reward per
  complete solution (an outcome reward model).

Budgets are in reward calls: one scored step, or one scored solution. The search
counts them itself and never exceeds ``budget``; :attr:`SearchResult.calls` says
how many it used. Proposals are free (they are the policy's cost, not the reward
model's). Searches are deterministic given ``rng`` (a seed or a generator) when
the proposer and scorer are.

Methods:

- :func:`best_of_n`: roll out ``n`` solutions one proposal per step, score each
  complete solution once, keep the best (finished solutions first).
- :func:`step_beam`: keep ``width`` partial solutions; extend each by ``expand``
  proposals, score the new steps and keep the best ``width`` paths by their
  running credit (``min`` over the path by default: PURE's min-form credit;
  ``last``, ``mean``, ``sum``, ``softmin`` too). Finished paths stay in the beam
  while they rank in the top ``width``.
- :func:`particle_filter`: Puri et al. (2025), "A Probabilistic Inference
  Approach to Inference-Time Scaling of LLMs using Particle-Based Monte Carlo
  Methods": ``particles`` partial solutions; each round every unfinished particle
  is extended by one proposal, weighted by ``softmax(step reward / temperature)``
  and resampled (multinomial or systematic); finished particles are kept as they
  are. The answer is the particle with the best final credit.

When the budget runs out before any path finishes, the best partial solution is
completed by the proposer alone (one proposal per step, unscored;
``complete=True``, the default) and :attr:`SearchResult.completed` counts those
steps.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from rewardhedge.errors import ConfigError, unknown_option
from rewardhedge.uncertainty.process import CreditKind, aggregate_steps

__all__ = [
    "RESAMPLERS",
    "BeamConfig",
    "BestOfNConfig",
    "OutcomeScorer",
    "ParticleConfig",
    "SearchResult",
    "StepProposer",
    "StepScorer",
    "StepsAsOutcome",
    "best_of_n",
    "is_answer_step",
    "particle_filter",
    "rollout",
    "step_beam",
]

RESAMPLERS: tuple[str, ...] = ("multinomial", "systematic")
"""How :func:`particle_filter` resamples: independent draws, or one stratified draw
(lower variance: a particle of weight ``w`` gets ``floor(n·w)`` or ``ceil(n·w)`` copies)."""


@runtime_checkable
class StepProposer(Protocol):
    """``k`` candidate next steps for ``prompt`` after the steps ``prefix``.

    Draws may repeat. Return fewer (or none) to say the prefix cannot be
    continued. Use ``rng`` for all randomness so that searches are reproducible.
    """

    def __call__(
        self, prompt: str, prefix: Sequence[str], k: int, rng: np.random.Generator
    ) -> list[str]: ...


@runtime_checkable
class StepScorer(Protocol):
    """`(n,)` rewards of ``steps[i]`` written after ``prefixes[i]`` for ``prompts[i]``.

    One scored step is one reward call.
    """

    def __call__(
        self, prompts: Sequence[str], prefixes: Sequence[Sequence[str]], steps: Sequence[str]
    ) -> np.ndarray: ...


@runtime_checkable
class OutcomeScorer(Protocol):
    """`(n,)` rewards of the complete ``solutions[i]`` (lists of steps) for ``prompts[i]``.

    One scored solution is one reward call, unless the scorer has a method
    ``cost(solution) -> int`` saying otherwise (:class:`StepsAsOutcome` does).
    """

    def __call__(
        self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]
    ) -> np.ndarray: ...


def is_answer_step(step: str) -> bool:
    """The default end of a solution: the step starts with ``"Answer:"``."""
    return step.lstrip().startswith("Answer:")


# ---------------------------------------------------------------------------------------
# Configs and result


def _check_int(owner: str, name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{owner}.{name} == {value!r}, must be an integer >= {minimum}.")
    return int(value)


def _check_bool(owner: str, name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}.{name} == {value!r}, must be True or False.")


@dataclass(frozen=True)
class BestOfNConfig:
    """Settings of :func:`best_of_n`."""

    n: int = 8
    """Solutions to roll out (at most; the budget may stop earlier)."""
    max_steps: int = 16
    """Longest solution: a rollout that has not finished by then stops unfinished."""
    dedupe: bool = True
    """Score each distinct solution once (a repeated rollout costs no reward call)."""

    def __post_init__(self) -> None:
        _check_int("best_of_n", "n", self.n, 1)
        _check_int("best_of_n", "max_steps", self.max_steps, 1)
        _check_bool("best_of_n", "dedupe", self.dedupe)


@dataclass(frozen=True)
class BeamConfig:
    """Settings of :func:`step_beam`."""

    width: int = 4
    """Paths kept after each round."""
    expand: int = 4
    """Proposals drawn for each kept path each round."""
    credit: CreditKind | str = CreditKind.MIN
    """How a path's step rewards rank it (a :class:`CreditKind` or its name)."""
    max_steps: int = 16
    """Deepest path; paths that have not finished by then stop unfinished."""
    dedupe: bool = True
    """Drop repeated proposals for the same path before scoring (no call wasted on them)."""
    complete: bool = True
    """If no path finished, complete the best one with the proposer alone (unscored)."""

    def __post_init__(self) -> None:
        _check_int("step_beam", "width", self.width, 1)
        _check_int("step_beam", "expand", self.expand, 1)
        _check_int("step_beam", "max_steps", self.max_steps, 1)
        object.__setattr__(self, "credit", CreditKind.parse(self.credit, "step_beam.credit"))
        _check_bool("step_beam", "dedupe", self.dedupe)
        _check_bool("step_beam", "complete", self.complete)


@dataclass(frozen=True)
class ParticleConfig:
    """Settings of :func:`particle_filter`."""

    particles: int = 8
    """Partial solutions carried along."""
    temperature: float = 1.0
    """Weights are ``softmax(step reward / temperature)``; smaller is greedier."""
    resample: str = "multinomial"
    """One of :data:`RESAMPLERS`."""
    credit: CreditKind | str = CreditKind.MIN
    """How the finished particles' step rewards pick the answer."""
    max_steps: int = 16
    """Deepest particle; particles that have not finished by then stop unfinished."""
    complete: bool = True
    """If no particle finished, complete the best one with the proposer alone (unscored)."""

    def __post_init__(self) -> None:
        _check_int("particle_filter", "particles", self.particles, 1)
        t = self.temperature
        if (
            isinstance(t, bool)
            or not isinstance(t, (int, float, np.floating))
            or not math.isfinite(t)
            or t <= 0
        ):
            raise ConfigError(f"particle_filter.temperature == {t!r}, must be a finite number > 0.")
        if self.resample not in RESAMPLERS:
            raise unknown_option("particle_filter.resample", self.resample, RESAMPLERS)
        object.__setattr__(self, "credit", CreditKind.parse(self.credit, "particle_filter.credit"))
        _check_int("particle_filter", "max_steps", self.max_steps, 1)
        _check_bool("particle_filter", "complete", self.complete)


@dataclass(frozen=True)
class SearchResult:
    """The solution a search returned and what it cost."""

    steps: tuple[str, ...]
    score: float
    """Its reward: the outcome score (best-of-n) or the credit over its scored steps;
    NaN when nothing was scored."""
    calls: int
    """Reward calls used (never more than the budget)."""
    finished: bool
    """Whether the last step is a final one (``is_final``)."""
    rewards: tuple[float, ...] = ()
    """Step rewards of the scored steps (step methods; empty for outcome scoring)."""
    completed: int = 0
    """Trailing steps the proposer added unscored because the budget or depth ran out."""


@dataclass(frozen=True)
class _Path:
    steps: tuple[str, ...] = ()
    rewards: tuple[float, ...] = ()
    finished: bool = False
    stuck: bool = False
    """The proposer had nothing to continue it with."""

    @property
    def open(self) -> bool:
        return not (self.finished or self.stuck)

    def extend(self, step: str, reward: float, final: bool) -> _Path:
        return _Path((*self.steps, step), (*self.rewards, float(reward)), final)


# ---------------------------------------------------------------------------------------
# Checked calls into user code


def _as_rng(rng: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)):
        raise TypeError(f"rng must be a numpy Generator or an integer seed, got {rng!r}.")
    return np.random.default_rng(int(rng))


def _check_budget(budget: int | None) -> None:
    if budget is not None:
        _check_int("search", "budget", budget, 1)


def _propose(
    propose: StepProposer, prompt: str, prefix: tuple[str, ...], k: int, rng: np.random.Generator
) -> list[str]:
    out = propose(prompt, prefix, k, rng)
    if isinstance(out, str) or not isinstance(out, Sequence):
        raise TypeError(f"the proposer must return a list of strings, got {type(out).__name__}.")
    bad = [s for s in out if not isinstance(s, str)]
    if bad:
        raise TypeError(f"the proposer returned a non-string step: {bad[0]!r}.")
    return list(out)[:k]


def _scores(out: object, n: int, who: str) -> np.ndarray:
    r = np.asarray(out, dtype=np.float64)
    if r.shape != (n,):
        raise ValueError(f"the {who} returned shape {r.shape} for {n} items; it must be ({n},).")
    if not np.isfinite(r).all():
        raise ValueError(f"the {who} returned a non-finite reward: {r[~np.isfinite(r)][0]!r}.")
    return r


def _score_steps(
    score: StepScorer, prompt: str, parents: Sequence[_Path], steps: Sequence[str]
) -> np.ndarray:
    n = len(steps)
    out = score([prompt] * n, [p.steps for p in parents], list(steps))
    return _scores(out, n, "step scorer")


def _credit(paths: Sequence[_Path], kind: CreditKind) -> np.ndarray:
    """`(n,)` credit of each path over its scored steps (-inf for a path with none)."""
    out = np.full(len(paths), -np.inf)
    scored = [i for i, p in enumerate(paths) if p.rewards]
    if scored:
        out[scored] = aggregate_steps([np.array(paths[i].rewards) for i in scored], kind)
    return out


def _best(paths: Sequence[_Path], kind: CreditKind) -> int:
    """Index of the best path: finished before unfinished, then credit; first on ties."""
    credit = _credit(paths, kind)
    keys = [(p.finished, c, -i) for i, (p, c) in enumerate(zip(paths, credit, strict=True))]
    return max(range(len(paths)), key=keys.__getitem__)


def rollout(
    prompt: str,
    propose: StepProposer,
    rng: np.random.Generator | int = 0,
    *,
    prefix: Sequence[str] = (),
    max_steps: int = 16,
    is_final: Callable[[str], bool] = is_answer_step,
) -> tuple[str, ...]:
    """A solution from the proposer alone: one proposal per step from ``prefix`` on.

    Stops after a final step, when the proposer returns nothing, or at
    ``max_steps`` steps in all (the prefix included). No reward is used.

    Example:
        >>> def count(prompt, prefix, k, rng):
        ...     return ["Answer: 3"] * k if len(prefix) == 3 else [str(len(prefix) + 1)] * k
        >>> rollout("count to 3", count)
        ('1', '2', '3', 'Answer: 3')
    """
    _check_int("rollout", "max_steps", max_steps, 1)
    rng = _as_rng(rng)
    steps = tuple(prefix)
    if steps and is_final(steps[-1]):
        return steps
    while len(steps) < max_steps:
        step = _propose(propose, prompt, steps, 1, rng)
        if not step:
            break
        steps = (*steps, step[0])
        if is_final(step[0]):
            break
    return steps


def _result(
    path: _Path,
    calls: int,
    kind: CreditKind,
    complete: bool,
    prompt: str,
    propose: StepProposer,
    rng: np.random.Generator,
    max_steps: int,
    is_final: Callable[[str], bool],
) -> SearchResult:
    steps = path.steps
    if complete and path.open:
        steps = rollout(prompt, propose, rng, prefix=steps, max_steps=max_steps, is_final=is_final)
    score = float(_credit([path], kind)[0]) if path.rewards else math.nan
    return SearchResult(
        steps=steps,
        score=score,
        calls=calls,
        finished=bool(steps) and is_final(steps[-1]),
        rewards=path.rewards,
        completed=len(steps) - len(path.steps),
    )


# ---------------------------------------------------------------------------------------
# Outcome-level best-of-n


@dataclass(frozen=True)
class StepsAsOutcome:
    """An :class:`OutcomeScorer` made from a :class:`StepScorer`: every step of a
    solution scored, reduced to one reward by ``credit``.

    It costs one reward call per step (its :meth:`cost`), so a best-of-n scored by a
    PRM is charged what it really uses.

    Example:
        >>> def parity(prompts, prefixes, steps):
        ...     return np.array([1.0 if s.endswith("even") else -1.0 for s in steps])
        >>> score = StepsAsOutcome(parity, credit="min")
        >>> score(["q", "q"], [["2 even", "4 even"], ["2 even", "3 even?"]]).tolist()
        [1.0, -1.0]
        >>> score.cost(["2 even", "4 even"])
        2
    """

    score_step: StepScorer
    credit: CreditKind | str = field(default=CreditKind.MIN)

    def __post_init__(self) -> None:
        object.__setattr__(self, "credit", CreditKind.parse(self.credit, "credit"))

    def cost(self, solution: Sequence[str]) -> int:
        return len(solution)

    def __call__(self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]) -> np.ndarray:
        if any(len(s) == 0 for s in solutions):
            raise ValueError("StepsAsOutcome cannot score a solution with no steps.")
        flat_prompts = [p for p, sol in zip(prompts, solutions, strict=True) for _ in sol]
        prefixes = [tuple(sol[:t]) for sol in solutions for t in range(len(sol))]
        steps = [s for sol in solutions for s in sol]
        r = _scores(self.score_step(flat_prompts, prefixes, steps), len(steps), "step scorer")
        bounds = np.cumsum([0, *(len(s) for s in solutions)])
        rows = [r[lo:hi] for lo, hi in itertools.pairwise(bounds)]
        return aggregate_steps(rows, self.credit)  # type: ignore[arg-type]


def best_of_n(
    prompt: str,
    propose: StepProposer,
    score: OutcomeScorer,
    config: BestOfNConfig | None = None,
    *,
    budget: int | None = None,
    rng: np.random.Generator | int = 0,
    is_final: Callable[[str], bool] = is_answer_step,
) -> SearchResult:
    """Roll out up to ``config.n`` solutions, score each once, return the best.

    Rollouts are drawn one at a time; the first one whose scoring would push the
    calls past ``budget`` stops the drawing. All kept solutions are scored in one
    call of ``score``. Finished solutions rank above unfinished ones; ties go to the
    first drawn. If not even the first solution fits the budget it is returned
    unscored (``score`` NaN, ``calls`` 0).

    Example:
        >>> def count(prompt, prefix, k, rng):
        ...     done = len(prefix) == 2
        ...     return [f"Answer: {rng.integers(3)}" if done else "step"] * k
        >>> def exact(prompts, solutions):
        ...     return np.array([float(s[-1] == "Answer: 2") for s in solutions])
        >>> best_of_n("q", count, exact, BestOfNConfig(n=8), rng=0).steps
        ('step', 'step', 'Answer: 2')
    """
    config = config or BestOfNConfig()
    _check_budget(budget)
    rng = _as_rng(rng)
    cost = getattr(score, "cost", None)
    chosen: list[tuple[str, ...]] = []
    seen: set[tuple[str, ...]] = set()
    calls = 0
    first: tuple[str, ...] | None = None
    for _ in range(config.n):
        sol = rollout(prompt, propose, rng, max_steps=config.max_steps, is_final=is_final)
        first = sol if first is None else first
        if not sol or (config.dedupe and sol in seen):
            continue
        c = 1 if cost is None else int(cost(sol))
        if budget is not None and calls + c > budget:
            break
        seen.add(sol)
        chosen.append(sol)
        calls += c
    if not chosen:
        steps = first or ()
        done = bool(steps) and is_final(steps[-1])
        return SearchResult(steps, math.nan, 0, done, completed=len(steps))
    r = _scores(score([prompt] * len(chosen), chosen), len(chosen), "outcome scorer")
    done = [is_final(s[-1]) for s in chosen]
    i = max(range(len(chosen)), key=lambda j: (done[j], r[j], -j))
    return SearchResult(chosen[i], float(r[i]), calls, done[i])


# ---------------------------------------------------------------------------------------
# Step-level beam search


def step_beam(
    prompt: str,
    propose: StepProposer,
    score: StepScorer,
    config: BeamConfig | None = None,
    *,
    budget: int | None = None,
    rng: np.random.Generator | int = 0,
    is_final: Callable[[str], bool] = is_answer_step,
) -> SearchResult:
    """Beam search over steps, ranked by the running credit of each path.

    Each round, the open paths of the beam (best first) draw ``expand`` proposals
    each; the new steps are scored in one call of ``score``, and the beam becomes
    the best ``width`` paths among the new ones and the finished paths already in
    it. It stops when every path in the beam is finished, at ``max_steps``, or when
    the budget is spent: a round that would exceed it scores only the proposals
    that fit, best paths first, so the budget is used exactly unless the search
    ends first. The answer is the best finished path seen, else the best open
    one (completed by the proposer if ``config.complete``).

    Example:
        >>> def count(prompt, prefix, k, rng):
        ...     if len(prefix) == 3:
        ...         return ["Answer: 3"] * k
        ...     return [str(v) for v in rng.permutation(4)[:k]]
        >>> def exact(prompts, prefixes, steps):
        ...     return np.array([
        ...         1.0 if s == str(len(p) + 1) or (s.startswith("Answer") and len(p) == 3) else 0.0
        ...         for p, s in zip(prefixes, steps)
        ...     ])
        >>> step_beam("count to 3", count, exact, BeamConfig(width=2, expand=4)).steps
        ('1', '2', '3', 'Answer: 3')
    """
    config = config or BeamConfig()
    _check_budget(budget)
    rng = _as_rng(rng)
    kind = CreditKind(config.credit)  # parsed by BeamConfig
    beam: list[_Path] = [_Path()]
    finished: list[_Path] = []
    calls = 0
    for _ in range(config.max_steps):
        open_paths = [p for p in beam if p.open]
        if not open_paths:
            break
        room = math.inf if budget is None else budget - calls
        parents: list[_Path] = []
        steps: list[str] = []
        for path in open_paths:
            if room - len(steps) <= 0:
                break
            proposals = _propose(propose, prompt, path.steps, config.expand, rng)
            if config.dedupe:
                proposals = list(dict.fromkeys(proposals))
            proposals = proposals[: int(min(len(proposals), room - len(steps)))]
            parents += [path] * len(proposals)
            steps += proposals
        if not steps:
            break
        r = _score_steps(score, prompt, parents, steps)
        calls += len(steps)
        new = [p.extend(s, ri, is_final(s)) for p, s, ri in zip(parents, steps, r, strict=True)]
        finished += [p for p in new if p.finished]
        pool = [p for p in beam if p.finished] + new
        order = np.argsort(-_credit(pool, kind), kind="stable")
        beam = [pool[i] for i in order[: config.width]]
        if budget is not None and calls >= budget:
            break
    pick = finished[_best(finished, kind)] if finished else beam[_best(beam, kind)]
    return _result(
        pick, calls, kind, config.complete, prompt, propose, rng, config.max_steps, is_final
    )


# ---------------------------------------------------------------------------------------
# Particle filtering


def _resample(weights: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    """`(n,)` indices drawn in proportion to ``weights`` (which sum to 1)."""
    n = weights.shape[0]
    if how == "multinomial":
        return rng.choice(n, size=n, p=weights)
    edges = np.cumsum(weights)
    edges[-1] = 1.0  # guard the last edge against rounding
    u = (rng.random() + np.arange(n)) / n  # (n,) one stratified draw
    return np.searchsorted(edges, u, side="right")


def particle_filter(
    prompt: str,
    propose: StepProposer,
    score: StepScorer,
    config: ParticleConfig | None = None,
    *,
    budget: int | None = None,
    rng: np.random.Generator | int = 0,
    is_final: Callable[[str], bool] = is_answer_step,
) -> SearchResult:
    """Particle filtering over steps (Puri et al., 2025).

    Each round every open particle draws one proposal; the new steps are scored in
    one call of ``score`` (one reward call per particle), weighted by
    ``softmax(reward / temperature)`` and the open particles are resampled from
    them with ``config.resample``. Finished (and stuck) particles are kept as they
    are and no longer cost calls. It stops when no particle is open, at
    ``max_steps``, or before a round that would exceed ``budget`` (so it may use
    less than the budget; ``calls`` says how much). The answer is the finished
    particle with the best ``credit``, else the best open one (completed by the
    proposer if ``config.complete``).

    Example:
        >>> def count(prompt, prefix, k, rng):
        ...     if len(prefix) == 3:
        ...         return ["Answer: 3"] * k
        ...     return [str(v) for v in rng.integers(0, 4, size=k)]
        >>> def exact(prompts, prefixes, steps):
        ...     return np.array([
        ...         1.0 if s == str(len(p) + 1) or (s.startswith("Answer") and len(p) == 3) else 0.0
        ...         for p, s in zip(prefixes, steps)
        ...     ])
        >>> cfg = ParticleConfig(particles=16, temperature=0.1)
        >>> particle_filter("count to 3", count, exact, cfg).steps
        ('1', '2', '3', 'Answer: 3')
    """
    config = config or ParticleConfig()
    _check_budget(budget)
    rng = _as_rng(rng)
    kind = CreditKind(config.credit)  # parsed by ParticleConfig
    particles = [_Path()] * config.particles
    calls = 0
    for _ in range(config.max_steps):
        live = [i for i, p in enumerate(particles) if p.open]
        if not live or (budget is not None and calls + len(live) > budget):
            break
        parents: list[_Path] = []
        steps: list[str] = []
        slots: list[int] = []
        for i in live:
            step = _propose(propose, prompt, particles[i].steps, 1, rng)
            if not step:
                particles[i] = _Path(particles[i].steps, particles[i].rewards, stuck=True)
                continue
            parents.append(particles[i])
            steps.append(step[0])
            slots.append(i)
        if not steps:
            break
        r = _score_steps(score, prompt, parents, steps)
        calls += len(steps)
        new = [p.extend(s, ri, is_final(s)) for p, s, ri in zip(parents, steps, r, strict=True)]
        logits = r / config.temperature
        w = np.exp(logits - logits.max())  # (m,)
        idx = _resample(w / w.sum(), config.resample, rng)
        for slot, j in zip(slots, idx, strict=True):
            particles[slot] = new[j]
    finished = [p for p in dict.fromkeys(particles) if p.finished]
    pick = finished[_best(finished, kind)] if finished else particles[_best(particles, kind)]
    return _result(
        pick, calls, kind, config.complete, prompt, propose, rng, config.max_steps, is_final
    )
