"""The step sandbox: exact references, local step validity, padding, determinism, config checks."""

from __future__ import annotations

import operator
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardhedge.data.sandbox import (
    ERROR_KINDS,
    Op,
    StepPolicy,
    StepSandboxConfig,
    StepTask,
    generate_step_sandbox,
    is_complete,
    make_step_task,
    make_step_tasks,
    pad_solution,
    solution_correct,
    solution_text,
    to_step_solution,
)
from rewardhedge.errors import ConfigError
from rewardhedge.types import StepSolution, step_prompt

SMALL = StepSandboxConfig(train_tasks=40, test_tasks=20, search_tasks=6)

CHAIN = StepTask(
    "t",
    "chain",
    "Start with 17. Add 8, then multiply by 3, then subtract 12. What is the result?",
    63.0,
    3,
    17.0,
    (Op("add", 8.0), Op("multiply", 3.0), Op("subtract", 12.0)),
)
UNITS = StepTask(
    "u",
    "units",
    "Convert 3 kilometres to metres, then to centimetres. How many centimetres is that?",
    300000.0,
    2,
    3.0,
    (
        Op("convert", 1000.0, "kilometres", "metres", 100.0),
        Op("convert", 100.0, "metres", "centimetres", 10.0),
    ),
    start_unit="kilometres",
)

_APPLY = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "divide": operator.truediv,
    "convert": operator.mul,
}


def recheck(task: StepTask, steps) -> list[bool]:
    """Validity recomputed from the stated values alone (the error kind only says how
    far a skip moved the progress)."""
    x, done, out = task.start, 0, []
    for s in steps:
        if s.kind == "answer":
            out.append(s.value == x and done == task.n_ops)
            continue
        if s.kind == "pad":
            out.append(s.value == x)
            continue
        op = task.ops[done]
        out.append(s.value == _APPLY[op.name](x, op.operand))
        done += 2 if s.error == "skip" else 1
        x = s.value
    return out


def test_step_prompt_format():
    assert step_prompt("Q?", []) == "Q?"
    assert step_prompt("Q?", ["a.", "b."]) == "Q?\n\nStep 1: a.\nStep 2: b."


def test_reference_solutions_are_correct_known_answers():
    ref = CHAIN.reference()
    assert [s.text for s in ref] == ["17 + 8 = 25.", "25 × 3 = 75.", "75 - 12 = 63.", "Answer: 63"]
    assert [s.kind for s in ref] == ["op", "op", "op", "answer"]
    assert all(s.valid for s in ref) and solution_correct(CHAIN, ref)
    assert [s.text for s in UNITS.reference()] == [
        "3 kilometres is 3000 metres.",
        "3000 metres is 300000 centimetres.",
        "Answer: 300000 centimetres",
    ]
    assert (
        solution_text([s.text for s in ref])
        == "17 + 8 = 25.\n25 × 3 = 75.\n75 - 12 = 63.\nAnswer: 63"
    )


@pytest.mark.parametrize("family", ["chain", "units"])
def test_generated_references_reach_the_answer(family):
    rng = np.random.default_rng(3)
    for i in range(50):
        task = make_step_task(family, rng, f"x{i}")
        ref = task.reference()
        assert solution_correct(task, ref) and recheck(task, ref) == [True] * len(ref)
        assert all(float(s.value).is_integer() for s in ref)
        assert 2 <= task.n_ops <= (4 if family == "chain" else 3)


@pytest.mark.parametrize("task", [CHAIN, UNITS], ids=["chain", "units"])
@pytest.mark.parametrize("kind", ERROR_KINDS)
def test_each_error_kind_is_invalid(task, kind):
    weights = tuple(1.0 if k == kind else 0.0 for k in ERROR_KINDS)
    policy = StepPolicy(p_error=1.0, error_weights=weights)
    rng = np.random.default_rng(0)
    ref = task.reference()
    for depth in range(task.n_ops):
        for step in policy.propose(task, ref[:depth], 20, rng):
            assert not step.valid and step.error == kind
            right = ref[depth].value
            assert step.value != right or step.kind == "answer"
            if kind == "unsure":
                assert any(w in step.text for w in ("Probably", "Not sure", "not certain"))
            if kind == "skip" and depth == task.n_ops - 1:
                assert step.kind == "answer"  # jumping past the last op answers too early


def test_answer_step_errors_are_slipped_values():
    policy = StepPolicy(p_error=1.0)
    ref = CHAIN.reference()
    for step in policy.propose(CHAIN, ref[:-1], 20, np.random.default_rng(1)):
        assert step.kind == "answer" and not step.valid and step.value != 63.0
        assert step.error == "slip"


def test_pad_steps_keep_the_value_and_are_valid():
    policy = StepPolicy(p_error=0.0, p_pad=1.0)
    ref = CHAIN.reference()
    for depth in range(CHAIN.n_ops):
        for step in policy.propose(CHAIN, ref[:depth], 10, np.random.default_rng(depth)):
            assert step.kind == "pad" and step.valid
            assert step.value == (ref[depth - 1].value if depth else CHAIN.start)


def test_pad_solution_keeps_correctness_and_adds_exactly_n_pad():
    rng = np.random.default_rng(0)
    for task in (CHAIN, UNITS):
        ref = task.reference()
        padded = pad_solution(task, ref, 5, rng)
        assert len(padded) == len(ref) + 5
        assert [s.kind for s in padded[-6:-1]] == ["pad"] * 5
        assert padded[-1] == ref[-1] and solution_correct(task, padded)
        assert all(s.valid for s in padded)
    # A wrong solution stays wrong and keeps its labels.
    wrong = (*CHAIN.reference()[:-1], replace(CHAIN.reference()[-1], value=64.0, valid=False))
    padded = pad_solution(CHAIN, wrong, 3, rng)
    assert not solution_correct(CHAIN, padded)
    assert to_step_solution(CHAIN, padded).labels == (True,) * 6 + (False,)
    with pytest.raises(ValueError, match="n_pad"):
        pad_solution(CHAIN, wrong, -1, rng)


def test_first_error_on_built_solutions():
    ref = CHAIN.reference()
    assert to_step_solution(CHAIN, ref).first_error is None
    slip = StepPolicy(p_error=1.0, error_weights=(1.0, 0.0, 0.0, 0.0))
    (bad,) = slip.propose(CHAIN, ref[:1], 1, np.random.default_rng(0))
    rest = StepPolicy(p_error=0.0, p_pad=0.0).rollout(
        CHAIN, np.random.default_rng(0), (*ref[:1], bad)
    )
    sol = to_step_solution(CHAIN, rest)
    assert sol.first_error == 1
    assert sol.labels == (True, False, True, True)  # later steps are locally right
    assert not solution_correct(CHAIN, rest)


def test_step_solution_validation():
    with pytest.raises(ValueError, match="2 labels for 3 steps"):
        StepSolution("p", ("a", "b", "c"), (True, False))
    with pytest.raises(ValueError, match="at least one step"):
        StepSolution("p", ())
    with pytest.raises(ValueError, match="only steps after the first error may be unknown"):
        StepSolution("p", ("a", "b"), (None, False))
    assert StepSolution("p", ("a", "b", "c"), (True, False, None)).first_error == 1
    with pytest.raises(ValueError, match="no labels"):
        _ = StepSolution("p", ("a",)).first_error


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    family=st.sampled_from(["chain", "units"]),
    p_error=st.floats(0.0, 1.0),
    p_pad=st.floats(0.0, 0.9),
)
def test_rollout_labels_match_an_independent_recheck(seed, family, p_error, p_pad):
    rng = np.random.default_rng(seed)
    task = make_step_task(family, rng, "h")
    steps = StepPolicy(p_error=p_error, p_pad=p_pad).rollout(task, rng)
    assert [s.valid for s in steps] == recheck(task, steps)
    assert solution_correct(task, steps) == (is_complete(steps) and steps[-1].value == task.answer)
    if is_complete(steps) and all(s.valid for s in steps):
        assert solution_correct(task, steps)
    assert len(steps) <= task.n_ops + 1 + StepPolicy().max_extra_steps
    assert all(s.kind != "answer" for s in steps[:-1])


def test_sandbox_pairs_and_solutions():
    sb = generate_step_sandbox(SMALL)
    assert (len(sb.train), len(sb.test), len(sb.search)) == (40, 20, 6)
    pairs = sb.step_pairs("train")
    assert len(pairs) >= 30
    for p in pairs:
        assert p.subset in ERROR_KINDS and p.source == "steps:train" and p.chosen != p.rejected
    by_id = {t.id: t for t in sb.train}
    assert all(p.prompt.startswith(by_id[p.id.split("@")[0]].prompt) for p in pairs)
    outcome = sb.outcome_pairs("train")
    assert len(outcome) >= 30
    for p in outcome:
        task = by_id[p.id]
        assert p.chosen.splitlines()[-1] == task.answer_text(task.answer)
        assert p.rejected.splitlines()[-1] != p.chosen.splitlines()[-1]
    sols = sb.solutions("test")
    assert len(sols) >= 20
    firsts = [s.first_error for s in sols]
    assert any(f is None for f in firsts) and any(f is not None for f in firsts)


def test_sandbox_is_deterministic_in_the_seed():
    a, b = generate_step_sandbox(SMALL), generate_step_sandbox(SMALL)
    assert a == b
    assert a.step_pairs("train") == b.step_pairs("train")
    assert a.solutions("test") == b.solutions("test")
    other = generate_step_sandbox(replace(SMALL, seed=1))
    assert [t.prompt for t in other.train] != [t.prompt for t in a.train]
    bigger = generate_step_sandbox(replace(SMALL, train_tasks=50))
    assert bigger.test == a.test and bigger.search == a.search


def test_make_step_tasks_cycles_families():
    tasks = make_step_tasks(6, np.random.default_rng(0), ("chain", "units"))
    assert [t.family for t in tasks] == ["chain", "units"] * 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_tasks": 0}, "step_sandbox.train_tasks == 0, must be >= 1."),
        ({"seed": -1}, "step_sandbox.seed == -1, must be an integer >= 0."),
        ({"families": ("poems",)}, "must be among chain, units"),
        ({"reference_share": 1.5}, "step_sandbox.reference_share == 1.5, must be in [0, 1]."),
        ({"rollout_tries": 1}, "step_sandbox.rollout_tries == 1, must be >= 2."),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        StepSandboxConfig(**kwargs)


def test_policy_validation_and_bad_split():
    with pytest.raises(ConfigError, match=r"step_policy\.p_error == 1\.5"):
        StepPolicy(p_error=1.5)
    with pytest.raises(ConfigError, match="error_weights"):
        StepPolicy(error_weights=(0.0, 0.0, 0.0, 0.0))
    with pytest.raises(ConfigError, match="split == 'dev'"):
        generate_step_sandbox(SMALL).step_pairs("dev")
    with pytest.raises(ConfigError, match="step family"):
        make_step_task("poems", np.random.default_rng(0), "x")
    with pytest.raises(ValueError, match="already ends with an answer"):
        StepPolicy().propose(CHAIN, CHAIN.reference(), 1, np.random.default_rng(0))
