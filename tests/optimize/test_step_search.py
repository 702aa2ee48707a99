"""Reward-guided step search on a counting task whose right steps are known.

The task: write ``1, 2, …, L`` one number per step, then ``Answer: <last number>``.
The toy proposer draws numbers at random; the exact scorers know the gold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardhedge.errors import ConfigError
from rewardhedge.optimize.step_search import (
    BeamConfig,
    BestOfNConfig,
    ParticleConfig,
    SearchResult,
    StepsAsOutcome,
    _resample,
    best_of_n,
    particle_filter,
    rollout,
    step_beam,
)

L = 4
V = 5
PROMPT = f"count from 1 to {L}"
RIGHT = ("1", "2", "3", "4", "Answer: 4")


def propose(prompt: str, prefix: Sequence[str], k: int, rng: np.random.Generator) -> list[str]:
    """Random numbers 1..V (repeats allowed); the answer restates the last number."""
    if len(prefix) == L:
        return [f"Answer: {prefix[-1]}"] * k
    return [str(v) for v in rng.integers(1, V + 1, size=k)]


def covering(prompt: str, prefix: Sequence[str], k: int, rng: np.random.Generator) -> list[str]:
    """Distinct numbers in random order: with k >= V the right one is always among them."""
    if len(prefix) == L:
        return [f"Answer: {prefix[-1]}"] * k
    return [str(v) for v in rng.permutation(np.arange(1, V + 1))[:k]]


def likely(prompt: str, prefix: Sequence[str], k: int, rng: np.random.Generator) -> list[str]:
    """The right number with probability 0.6, else a random one."""
    if len(prefix) == L:
        return [f"Answer: {prefix[-1]}"] * k
    right = rng.random(k) < 0.6
    draws = rng.integers(1, V + 1, k)
    return [str(len(prefix) + 1) if r else str(v) for r, v in zip(right, draws, strict=True)]


def step_ok(prefix: Sequence[str], step: str) -> bool:
    t = len(prefix)
    return step == (f"Answer: {L}" if t == L else str(t + 1))


def exact_steps(prompts, prefixes, steps) -> np.ndarray:
    return np.array([float(step_ok(p, s)) for p, s in zip(prefixes, steps, strict=True)])


def exact_outcome(prompts, solutions) -> np.ndarray:
    return np.array([float(tuple(s) == RIGHT) for s in solutions])


class Counted:
    """Wraps a scorer and counts the items it scored (one reward call each)."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.calls = 0

    def __call__(self, *args):
        self.calls += len(args[-1])
        return self.fn(*args)


# --- known answers -------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_beam_with_a_perfect_scorer_finds_the_right_solution(seed: int) -> None:
    res = step_beam(PROMPT, covering, exact_steps, BeamConfig(width=2, expand=V), rng=seed)
    assert res.steps == RIGHT
    assert res.finished and res.score == 1.0 and res.completed == 0
    assert res.rewards == (1.0,) * len(RIGHT)


@pytest.mark.parametrize("resample", ["multinomial", "systematic"])
@pytest.mark.parametrize("seed", range(5))
def test_particle_filter_with_a_perfect_scorer_finds_the_right_solution(
    seed: int, resample: str
) -> None:
    cfg = ParticleConfig(particles=48, temperature=0.05, resample=resample)
    res = particle_filter(PROMPT, propose, exact_steps, cfg, rng=seed)
    assert res.steps == RIGHT
    assert res.finished and res.score == 1.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40))
def test_best_of_n_with_a_perfect_outcome_scorer_finds_one_iff_a_rollout_is_right(
    seed: int, n: int
) -> None:
    rng = np.random.default_rng(seed)
    rollouts = [rollout(PROMPT, propose, rng) for _ in range(n)]
    res = best_of_n(PROMPT, propose, exact_outcome, BestOfNConfig(n=n), rng=seed)
    assert (res.steps == RIGHT) == (RIGHT in rollouts)
    assert res.steps in rollouts
    assert res.calls == len(set(rollouts))  # one call per distinct solution


def test_credit_decides_which_path_the_beam_returns() -> None:
    """Path a: rewards (0.2, 1.0); path b: (0.9, 0.5). By hand: last → a (1.0 > 0.5),
    min → b (0.5 > 0.2), mean → b (0.7 > 0.6), sum → b (1.4 > 1.2)."""

    def two_ways(prompt, prefix, k, rng):
        return ["a", "b"][:k] if not prefix else [f"Answer: {prefix[-1]}"] * k

    reward = {"a": 0.2, "b": 0.9, "Answer: a": 1.0, "Answer: b": 0.5}

    def table(prompts, prefixes, steps):
        return np.array([reward[s] for s in steps])

    picks = {
        credit: step_beam(PROMPT, two_ways, table, BeamConfig(width=2, expand=2, credit=credit))
        for credit in ("last", "min", "mean", "sum")
    }
    assert picks["last"].steps == ("a", "Answer: a") and picks["last"].score == 1.0
    assert picks["min"].steps == ("b", "Answer: b") and picks["min"].score == 0.5
    assert picks["mean"].score == pytest.approx(0.7)
    assert picks["sum"].score == pytest.approx(1.4)
    assert all(p.calls == 4 for p in picks.values())


def test_best_of_n_scored_by_steps_is_charged_one_call_per_step() -> None:
    counted = Counted(exact_steps)
    scorer = StepsAsOutcome(counted, credit="min")
    rng = np.random.default_rng(3)
    rollouts = {rollout(PROMPT, likely, rng) for _ in range(10)}
    assert RIGHT in rollouts
    res = best_of_n(PROMPT, likely, scorer, BestOfNConfig(n=10), rng=3)
    assert res.calls == counted.calls == len(RIGHT) * len(rollouts)  # distinct ones, all steps
    assert res.steps == RIGHT and res.score == 1.0


# --- budgets, counting, determinism ----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    budget=st.integers(1, 60),
    width=st.integers(1, 5),
    expand=st.integers(1, 6),
    seed=st.integers(0, 1000),
    dedupe=st.booleans(),
)
def test_beam_never_exceeds_its_budget_and_counts_exactly(
    budget: int, width: int, expand: int, seed: int, dedupe: bool
) -> None:
    counted = Counted(exact_steps)
    cfg = BeamConfig(width=width, expand=expand, dedupe=dedupe, max_steps=20)
    res = step_beam(PROMPT, propose, counted, cfg, budget=budget, rng=seed)
    assert res.calls == counted.calls <= budget
    if res.calls < budget:  # only a search that ended by itself leaves budget unused
        assert res.finished and res.completed == 0
    assert res.finished  # completed by the proposer otherwise
    assert len(res.rewards) == len(res.steps) - res.completed


@settings(max_examples=60, deadline=None)
@given(
    budget=st.integers(1, 60),
    particles=st.integers(1, 10),
    seed=st.integers(0, 1000),
    resample=st.sampled_from(["multinomial", "systematic"]),
)
def test_particle_filter_never_exceeds_its_budget_and_counts_exactly(
    budget: int, particles: int, seed: int, resample: str
) -> None:
    counted = Counted(exact_steps)
    cfg = ParticleConfig(particles=particles, resample=resample)
    res = particle_filter(PROMPT, propose, counted, cfg, budget=budget, rng=seed)
    assert res.calls == counted.calls <= budget
    # All particles move in lockstep here, so a round costs `particles` calls.
    assert res.calls == particles * min(budget // particles, len(RIGHT))
    assert res.finished


@settings(max_examples=60, deadline=None)
@given(budget=st.integers(1, 60), n=st.integers(1, 20), seed=st.integers(0, 1000))
def test_best_of_n_never_exceeds_its_budget_and_counts_exactly(
    budget: int, n: int, seed: int
) -> None:
    counted = Counted(exact_steps)
    res = best_of_n(
        PROMPT, propose, StepsAsOutcome(counted), BestOfNConfig(n=n), budget=budget, rng=seed
    )
    assert res.calls == counted.calls <= budget
    outcome = Counted(exact_outcome)
    res = best_of_n(PROMPT, propose, outcome, BestOfNConfig(n=n), budget=budget, rng=seed)
    assert res.calls == outcome.calls <= min(budget, n)


def test_a_budget_below_one_solution_returns_it_unscored() -> None:
    res = best_of_n(PROMPT, propose, StepsAsOutcome(exact_steps), budget=3, rng=0)
    assert res.calls == 0 and np.isnan(res.score) and res.completed == len(res.steps)


def test_an_exhausted_beam_is_completed_by_the_proposer_or_left_open() -> None:
    cfg = BeamConfig(width=2, expand=V)
    done = step_beam(PROMPT, covering, exact_steps, cfg, budget=2 * V, rng=0)
    assert done.calls == 2 * V  # the root's V proposals, then the best path's V
    assert done.finished and done.completed == len(done.steps) - 2
    assert done.steps[:2] == ("1", "2")  # the scored part followed the scorer
    cfg = BeamConfig(width=2, expand=V, complete=False)
    left = step_beam(PROMPT, covering, exact_steps, cfg, budget=2 * V, rng=0)
    assert not left.finished and left.steps == ("1", "2") and left.completed == 0


@pytest.mark.parametrize(
    "search, scorer, cfg",
    [
        (best_of_n, exact_outcome, BestOfNConfig(n=6)),
        (step_beam, exact_steps, BeamConfig(width=3, expand=2)),
        (particle_filter, exact_steps, ParticleConfig(particles=6)),
    ],
)
def test_searches_are_deterministic_given_a_seed(search, scorer, cfg) -> None:
    runs = [search(PROMPT, propose, scorer, cfg, budget=20, rng=seed) for seed in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert isinstance(runs[0], SearchResult)
    gen = [
        search(PROMPT, propose, scorer, cfg, budget=20, rng=np.random.default_rng(7))
        for _ in range(2)
    ]
    assert gen[0] == gen[1] == runs[0]


def test_rollout_stops_at_max_steps_or_when_the_proposer_gives_up() -> None:
    assert len(rollout(PROMPT, propose, 0, max_steps=2)) == 2
    assert rollout(PROMPT, lambda p, prefix, k, rng: [] if prefix else ["x"], 0) == ("x",)
    assert rollout(PROMPT, propose, 0, prefix=RIGHT) == RIGHT


@settings(max_examples=60, deadline=None)
@given(
    w=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=12).filter(lambda w: sum(w) > 0),
    seed=st.integers(0, 1000),
)
def test_systematic_resampling_gives_floor_or_ceil_copies(w: list[float], seed: int) -> None:
    p = np.array(w) / sum(w)
    idx = _resample(p, "systematic", np.random.default_rng(seed))
    counts = np.bincount(idx, minlength=len(w))
    n = len(w)
    assert counts.sum() == n
    assert np.all(counts >= np.floor(n * p - 1e-9)) and np.all(counts <= np.ceil(n * p + 1e-9))
    assert np.all(counts[p == 0] == 0)


# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BeamConfig(width=0), "step_beam.width == 0, must be an integer >= 1."),
        (lambda: BeamConfig(expand=True), "step_beam.expand == True, must be an integer >= 1."),
        (lambda: BeamConfig(credit="minimum"), "Did you mean 'min'?"),
        (lambda: BeamConfig(dedupe=1), "step_beam.dedupe == 1, must be True or False."),
        (lambda: BestOfNConfig(n=0), "best_of_n.n == 0, must be an integer >= 1."),
        (lambda: BestOfNConfig(max_steps=2.5), "best_of_n.max_steps == 2.5"),
        (lambda: ParticleConfig(particles=-1), "particle_filter.particles == -1"),
        (lambda: ParticleConfig(temperature=0.0), "temperature == 0.0, must be a finite"),
        (lambda: ParticleConfig(temperature=float("nan")), "temperature == nan"),
        (lambda: ParticleConfig(resample="systemic"), "Did you mean 'systematic'?"),
        (lambda: StepsAsOutcome(exact_steps, credit="max"), "credit == 'max'"),
    ],
)
def test_bad_configs_raise_config_errors(make, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?")):
        make()


def test_bad_budget_proposer_and_scorer_output_are_named() -> None:
    with pytest.raises(ConfigError, match=r"search\.budget == 0"):
        step_beam(PROMPT, propose, exact_steps, budget=0)
    with pytest.raises(TypeError, match="list of strings, got str"):
        step_beam(PROMPT, lambda *a: "1", exact_steps)
    with pytest.raises(TypeError, match="non-string step: 1"):
        particle_filter(PROMPT, lambda *a: [1], exact_steps)
    with pytest.raises(ValueError, match=r"step scorer returned shape \(1, 4\) for 4 items"):
        step_beam(PROMPT, propose, lambda p, x, s: np.zeros((1, len(s))))
    with pytest.raises(ValueError, match="outcome scorer returned a non-finite reward"):
        best_of_n(PROMPT, propose, lambda p, s: np.full(len(s), np.nan))
    assert BeamConfig(credit="last").credit == "last"  # names become CreditKind members
