"""Process reward models (``estimators/process.py``) on a real tiny ensemble (hashing
encoder) trained on hand-made step pairs: item layout, one score call per method call,
telescoping implicit rewards, credit order, and every uncertainty estimator wrapped."""

from __future__ import annotations

import doctest
from collections.abc import Sequence

import numpy as np
import pytest
import torch

import rewardhedge.estimators.process as process_mod
from rewardhedge.config import (
    EncoderConfig,
    EnsembleConfig,
    EstimatorKind,
    TrainConfig,
    UncertaintyConfig,
)
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.estimators.process import (
    ImplicitProcessRewardModel,
    ProcessRewardModel,
    credit_estimates,
)
from rewardhedge.types import PreferencePair, RewardEstimate, StepSolution, step_prompt
from rewardhedge.uncertainty.reward_rule import RewardRule


def chain(a: int, b: int, c: int, wrong: int = 0) -> tuple[str, list[str], list[str]]:
    """A two-operation task, its correct steps, and the same steps with each result off by one."""
    prompt = f"Start with {a}. Add {b}, then multiply by {c}."
    s, p = a + b, (a + b) * c
    good = [f"{a} + {b} = {s}", f"{s} * {c} = {p}", f"Answer: {p}"]
    bad = [f"{a} + {b} = {s + 1}", f"{s} * {c} = {p + c}", f"Answer: {p + 1}"]
    return prompt, good, bad


def step_pairs(n: int) -> list[PreferencePair]:
    """At every prefix of the correct solution: the correct next step over a wrong one."""
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(n):
        prompt, good, bad = chain(*(int(x) for x in rng.integers(1, 20, size=3)))
        for t in range(len(good)):
            pairs.append(
                PreferencePair(step_prompt(prompt, good[:t]), good[t], bad[t], id=f"{i}-{t}")
            )
    return pairs


def outcome_pairs(n: int) -> list[PreferencePair]:
    """Whole solutions ("\\n"-joined): the correct one over one with a wrong first step."""
    rng = np.random.default_rng(1)
    pairs = []
    for _ in range(n):
        prompt, good, bad = chain(*(int(x) for x in rng.integers(1, 20, size=3)))
        pairs.append(PreferencePair(prompt, "\n".join(good), "\n".join([bad[0], *good[1:]])))
    return pairs


def config(estimator: str = "ensemble", members: int = 3) -> EnsembleConfig:
    return EnsembleConfig(
        n_members=members,
        encoder=EncoderConfig(kind="hashing", dim=64),
        train=TrainConfig(epochs=15, val_fraction=0.0),
        uncertainty=UncertaintyConfig(
            estimator=estimator, mc_samples=4, laplace_samples=4, calibration_folds=0
        ),
    )


@pytest.fixture(scope="module")
def prm_model() -> EnsembleRewardModel:
    torch.manual_seed(0)
    return EnsembleRewardModel(config()).fit(step_pairs(16))


@pytest.fixture(scope="module")
def orm_model() -> EnsembleRewardModel:
    return EnsembleRewardModel(config()).fit(outcome_pairs(24))


class CountingModel:
    """A real model behind a counter of its ``score`` calls and their sizes."""

    def __init__(self, model: EnsembleRewardModel) -> None:
        self.model = model
        self.rule = model.rule
        self.sizes: list[int] = []

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> RewardEstimate:
        self.sizes.append(len(prompts))
        return self.model.score(prompts, responses)


def solutions() -> list[StepSolution]:
    p1, good1, bad1 = chain(3, 4, 2)
    p2, good2, _ = chain(5, 1, 3)
    return [
        StepSolution(p1, tuple(good1), (True, True, True)),
        StepSolution(p1, (bad1[0], "8 * 2 = 16", "Answer: 16"), (False, True, True)),
        StepSolution(p2, (good2[0], "Answer: 6"), (True, False)),
    ]


def test_step_items_follow_the_step_prompt_layout(prm_model) -> None:
    counted = CountingModel(prm_model)
    prm = ProcessRewardModel(counted)
    sols = solutions()
    ests = prm.step_scores(sols)
    assert [e.members.shape for e in ests] == [(3, 3), (3, 3), (3, 2)]
    assert counted.sizes == [8]  # one call, every step once
    # the items, written out by hand: question, blank line, numbered steps so far
    q = "Start with 3. Add 4, then multiply by 2."
    prompts = [q, f"{q}\n\nStep 1: 3 + 4 = 7", f"{q}\n\nStep 1: 3 + 4 = 7\nStep 2: 7 * 2 = 14"]
    direct = prm_model.score(prompts, ["3 + 4 = 7", "7 * 2 = 14", "Answer: 14"])
    np.testing.assert_array_equal(ests[0].members, direct.members)
    np.testing.assert_array_equal(ests[0].mean, direct.mean)
    np.testing.assert_array_equal(ests[0].epistemic, direct.epistemic)


def test_step_scores_equal_scoring_the_formatted_items_in_one_batch(prm_model) -> None:
    sols = solutions()
    items = [
        (step_prompt(s.prompt, s.steps[:t]), s.steps[t]) for s in sols for t in range(len(s.steps))
    ]
    direct = prm_model.score([p for p, _ in items], [r for _, r in items])
    ests = ProcessRewardModel(prm_model).step_scores(sols)
    np.testing.assert_array_equal(np.concatenate([e.members for e in ests], axis=1), direct.members)
    np.testing.assert_array_equal(np.concatenate([e.mean for e in ests]), direct.mean)


def test_the_two_accepted_forms_agree_and_calls_are_counted(prm_model) -> None:
    sols = solutions()
    prm = ProcessRewardModel(prm_model)
    a = prm.solution_rewards(sols)
    b = prm.solution_rewards(([s.prompt for s in sols], [list(s.steps) for s in sols]))
    np.testing.assert_array_equal(a, b)
    assert prm.score_calls_ == 2
    assert prm.calls_ == 16
    assert prm.step_scores([]) == [] and prm.solution_rewards([]).shape == (0,)
    assert prm.score_calls_ == 2  # nothing to score, no call


def test_implicit_rewards_telescope(orm_model) -> None:
    counted = CountingModel(orm_model)
    implicit = ImplicitProcessRewardModel(counted)
    sols = solutions()
    ests = implicit.step_scores(sols)
    # 3 + 3 + 2 prefixes plus the empty one per prompt (two prompts): one call, 10 items
    assert counted.sizes == [10] and implicit.calls_ == 10 and implicit.score_calls_ == 1
    full = orm_model.score([s.prompt for s in sols], ["\n".join(s.steps) for s in sols])
    empty = orm_model.score([s.prompt for s in sols], [""] * len(sols))
    for i, e in enumerate(ests):
        assert e.members.shape == (3, len(sols[i].steps))
        np.testing.assert_allclose(e.mean.sum(), full.mean[i] - empty.mean[i], rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            e.members.sum(axis=1), full.members[:, i] - empty.members[:, i], rtol=0, atol=1e-12
        )
        np.testing.assert_array_equal(e.epistemic, e.members.var(axis=0))
    # so sum credit is the outcome model's reward minus its per-prompt baseline
    np.testing.assert_allclose(
        implicit.solution_rewards(sols, credit="sum", rule="mean"),
        (full.members - empty.members).mean(axis=0),
        atol=1e-12,
    )


def test_implicit_first_step_is_measured_from_the_empty_response(orm_model) -> None:
    sol = solutions()[2]
    prefixes = ImplicitProcessRewardModel(orm_model).prefix_scores([sol])[0]
    direct = orm_model.score([sol.prompt] * 3, ["", sol.steps[0], "\n".join(sol.steps)])
    np.testing.assert_array_equal(prefixes.members, direct.members)


@pytest.mark.parametrize("make", [ProcessRewardModel, ImplicitProcessRewardModel])
def test_credit_order_and_consistency(make, prm_model, orm_model) -> None:
    model = make(prm_model if make is ProcessRewardModel else orm_model)
    sols = solutions()
    ests = model.step_scores(sols)
    for rule in ("mean", "wco"):
        lo = model.solution_rewards(sols, credit="min", rule=rule)
        mid = model.solution_rewards(sols, credit="mean", rule=rule)
        soft = model.solution_rewards(sols, credit="softmin", rule=rule, temperature=0.5)
        members_max = np.array([e.members.max(axis=1) for e in ests]).T  # (m, n)
        hi = members_max.mean(axis=0) if rule == "mean" else members_max.min(axis=0)
        assert np.all(lo <= soft + 1e-12) and np.all(soft <= mid + 1e-12)
        assert np.all(lo <= mid + 1e-12) and np.all(mid <= hi + 1e-12)
    steps = model.step_rewards(sols, rule="mean")
    np.testing.assert_allclose(
        [r.sum() for r in steps], model.solution_rewards(sols, credit="sum", rule="mean")
    )
    np.testing.assert_allclose(
        [r[-1] for r in steps], credit_estimates(ests, "last", "mean"), rtol=1e-12
    )


def test_credit_runs_member_wise_before_the_member_aggregation(prm_model) -> None:
    """LCB of each member's worst step (credit first), not the worst step's LCB."""
    prm = ProcessRewardModel(prm_model)
    sols = solutions()
    ests = prm.step_scores(sols)
    per_member_min = np.array([e.members.min(axis=1) for e in ests]).T  # (m, n)
    lcb = per_member_min.mean(axis=0) - per_member_min.std(axis=0)
    np.testing.assert_allclose(prm.solution_rewards(sols, credit="min", rule="lcb"), lcb)


def test_bad_inputs_are_refused(prm_model) -> None:
    with pytest.raises(TypeError, match="score method"):
        ProcessRewardModel(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="transform 'centered_logsigmoid'"):
        ProcessRewardModel(
            prm_model, rule=RewardRule.parse("mean", transform="centered_logsigmoid")
        )
    prm = ProcessRewardModel(prm_model)
    with pytest.raises(ValueError, match="solution 1 has no steps"):
        prm.step_scores((["q", "q"], [["a"], []]))
    with pytest.raises(ValueError, match="2 prompts but 1 step lists"):
        prm.step_scores((["q", "q"], [["a"]]))
    with pytest.raises(TypeError, match="steps must be a list of strings"):
        prm.step_scores((["q"], ["a step"]))
    with pytest.raises(ConfigError, match="credit == 'max'"):
        prm.solution_rewards(solutions(), credit="max")


@pytest.mark.parametrize("estimator", [k.value for k in EstimatorKind])
def test_every_estimator_fits_on_step_pairs_and_wraps(estimator: str) -> None:
    torch.manual_seed(0)
    model = EnsembleRewardModel(config(estimator, members=2)).fit(step_pairs(6))
    m = {"ensemble": 2, "gaussian": 2, "mc_dropout": 8, "laplace": 8}[estimator]
    sols = solutions()
    for wrapper in (ProcessRewardModel(model), ImplicitProcessRewardModel(model)):
        ests = wrapper.step_scores(sols)
        assert [e.members.shape for e in ests] == [(m, 3), (m, 3), (m, 2)]
        for e in ests:
            assert np.isfinite(e.members).all() and np.all(e.epistemic >= 0)
            assert np.all(e.aleatoric >= 0)
            assert np.any(e.aleatoric > 0) == (estimator == "gaussian")
        for credit in ("sum", "mean", "min", "softmin", "last"):
            r = wrapper.solution_rewards(sols, credit=credit, rule="lcb")
            assert r.shape == (3,) and np.isfinite(r).all()


def test_docstring_examples_run() -> None:
    result = doctest.testmod(process_mod)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("kind", ["trained", "implicit"])
def test_step_scorer_gives_the_last_step_reward_and_drives_a_search(
    kind, prm_model, orm_model
) -> None:
    """``step_scorer`` is ``step_rewards``' last entry for every (prefix, step), in one
    score call; and a beam search over a fixed proposer runs on it within its budget."""
    from rewardhedge.optimize.step_search import BeamConfig, step_beam

    model = ProcessRewardModel(prm_model) if kind == "trained" else None
    model = model or ImplicitProcessRewardModel(orm_model)
    sols = solutions()
    prompts = [s.prompt for s in sols]
    prefixes = [s.steps[:-1] for s in sols]
    last = [s.steps[-1] for s in sols]
    expected = [r[-1] for r in model.step_rewards(sols, rule="lcb")]
    calls = model.score_calls_
    got = model.step_scorer("lcb")(prompts, prefixes, last)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert model.score_calls_ == calls + 1
    with pytest.raises(ValueError, match="one of each per item"):
        model.step_scorer()(prompts, prefixes[:1], last)

    q, good, bad = chain(3, 4, 2)

    def propose(prompt, prefix, k, rng):
        t = len(prefix)
        return [good[t], bad[t]][:k] if t < len(good) else []

    result = step_beam(q, propose, model.step_scorer(), BeamConfig(width=2, expand=2), budget=6)
    assert result.calls <= 6 and len(result.steps) >= 1
