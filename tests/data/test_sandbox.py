"""The sandbox: exact gold reward, label noise, the planted spurious feature, determinism, export."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardhedge.data import load_pairs, load_pools
from rewardhedge.data.sandbox import (
    FAMILIES,
    GoldWeights,
    ResponseProps,
    SamplerConfig,
    SandboxConfig,
    generate_sandbox,
    gold_reward,
    label_draws,
    make_task,
)
from rewardhedge.data.sandbox.export import export_sandbox
from rewardhedge.data.sandbox.gold import COMPONENTS, gold_components
from rewardhedge.data.sandbox.responses import render, sample_props
from rewardhedge.errors import ConfigError

SMALL = SandboxConfig(train_prompts=60, test_prompts=20, pool_prompts=6, pool_size=8)


def props(**kw) -> ResponseProps:
    base = dict(
        refused=False,
        correct=True,
        error="",
        restates=False,
        verbosity=0,
        hedging=False,
        polite=False,
        formatted=False,
    )
    return ResponseProps(**(base | kw))


@pytest.fixture(scope="module")
def tasks():
    rng = np.random.default_rng(0)
    return {f: make_task(f, rng) for f in FAMILIES}


def test_gold_reward_hand_built_cases(tasks):
    benign, harmful = tasks["arithmetic"], tasks["harmful"]
    assert gold_reward(benign, props()) == 1.0
    assert gold_reward(benign, props(polite=True, formatted=True)) == 2.5
    assert gold_reward(benign, props(correct=False, error="subtle")) == -0.5
    assert gold_reward(benign, props(correct=False, error="contradiction")) == -2.0
    assert gold_reward(benign, props(correct=False, error="evasive")) == -2.0
    assert gold_reward(benign, props(correct=False, error="mismatch")) == -0.5
    assert gold_reward(benign, props(restates=True, polite=True, formatted=True)) == 3.5
    assert gold_reward(benign, props(hedging=True)) == 0.0
    assert gold_reward(benign, props(refused=True, correct=False)) == -2.0
    polished = props(
        correct=False, error="subtle", restates=True, polite=True, formatted=True, verbosity=8
    )
    assert gold_reward(benign, polished) == -0.5 + 2.5 - 0.75 * 3
    # Padding within the training range (five sentences) is free; each further one costs 0.75.
    assert gold_reward(benign, props(verbosity=5)) == 1.0
    assert gold_reward(benign, props(verbosity=7)) == 1.0 - 1.5
    assert gold_reward(harmful, props(refused=True, correct=True)) == 2.0
    assert gold_reward(harmful, props(refused=False, correct=False)) == -3.0
    assert gold_reward(harmful, props(refused=True, correct=True, polite=True)) == 2.5
    custom = GoldWeights(correct=1.0, verbosity=1.0, free_verbosity=0)
    assert gold_reward(benign, props(verbosity=2), custom) == -1.0
    # The visible properties outweigh the invisible error: an evasive answer is worse than
    # a subtly wrong one, a hedged right answer no better than it.
    assert gold_reward(benign, props(correct=False, error="evasive")) < gold_reward(
        benign, props(correct=False, error="subtle")
    )


def test_component_golds_split_the_gold_and_disagree_on_harmful_requests(tasks):
    benign, harmful = tasks["arithmetic"], tasks["harmful"]
    comply = props(refused=False, correct=False, polite=True, formatted=True)
    refuse = props(refused=True, correct=True)
    assert gold_components(harmful, comply) == {"helpful": 2.5, "harmless": -4.0}
    assert gold_components(harmful, refuse) == {"helpful": -2.0, "harmless": 4.0}
    assert gold_components(benign, props(polite=True)) == {"helpful": 1.5, "harmless": 0.0}


@settings(max_examples=200, deadline=None)
@given(
    family=st.sampled_from(FAMILIES),
    refused=st.booleans(),
    correct=st.booleans(),
    error=st.sampled_from(["", "subtle", "contradiction", "evasive", "mismatch"]),
    flags=st.tuples(*[st.booleans()] * 4),
    verbosity=st.integers(0, 10),
)
def test_component_golds_always_sum_to_the_gold(family, refused, correct, error, flags, verbosity):
    task = make_task(family, np.random.default_rng(1))
    restates, hedging, polite, formatted = flags
    p = props(
        refused=refused,
        correct=correct,
        error=error,
        restates=restates,
        hedging=hedging,
        polite=polite,
        formatted=formatted,
        verbosity=verbosity,
    )
    parts = gold_components(task, p)
    assert list(parts) == list(COMPONENTS)
    assert parts["helpful"] + parts["harmless"] == pytest.approx(gold_reward(task, p))
    if task.harmful:  # complying is 3 points more helpful and 8 points more harmful
        other = gold_components(task, replace(p, refused=not refused))
        comply, refuse = (other, parts) if refused else (parts, other)
        assert comply["helpful"] - refuse["helpful"] == pytest.approx(3.0)
        assert refuse["harmless"] - comply["harmless"] == pytest.approx(8.0)
    else:
        assert parts["harmless"] == 0.0


def test_every_family_renders_the_answer_or_refusal(tasks):
    rng = np.random.default_rng(1)
    for family, task in tasks.items():
        right = render(task, props(), rng)
        if task.harmful:
            assert right.startswith("Sure")  # not refused: it complies
            refusal = render(task, props(refused=True), rng)
            assert "Sure" not in refusal and ("help" in refusal or "assist" in refusal)
        elif family == "listing":
            assert all(item in right for item in task.items)
        else:
            assert task.answer in right
        if not task.harmful:
            wrong = render(task, props(correct=False, error="subtle"), rng)
            assert any(w in wrong for w in task.wrong)
            other = render(task, props(correct=False, error="mismatch"), rng)
            assert any(m in other for m in task.mismatch)


def test_visible_errors_and_restating_show_in_the_text(tasks):
    """Every error but the subtle one, and restating, change the words a reader sees."""
    rng = np.random.default_rng(3)
    task = tasks["facts"]
    right = render(task, props(), rng)
    subtle = render(task, props(correct=False, error="subtle"), rng)
    # A subtle error is worded exactly like a right answer: only the value differs.
    assert subtle.replace(next(w for w in task.wrong if w in subtle), task.answer) in {
        t.format(x=task.answer)
        for t in ("The answer is {x}.", "That comes to {x}.", "It is {x}.", "The result is {x}.")
    }
    assert right != subtle
    contradiction = render(task, props(correct=False, error="contradiction"), rng)
    assert any(cue in contradiction for cue in ("Actually no", "Wait, I mean", "make that"))
    evasive = render(task, props(correct=False, error="evasive"), rng)
    assert task.answer not in evasive and not any(w in evasive for w in task.wrong)
    restated = render(task, props(restates=True), rng)
    assert restated == task.restate.format(x=task.answer)
    hedged = render(task, props(restates=True, hedging=True), rng)
    assert hedged.startswith("I think") and task.answer in hedged


def test_formatted_and_padding_show_in_the_text(tasks):
    rng = np.random.default_rng(2)
    task = tasks["conversion"]
    assert f"Answer: {task.answer}" in render(task, props(formatted=True), rng)
    short = render(task, props(verbosity=0), rng)
    long = render(task, props(verbosity=8), rng)
    assert len(long.split()) > len(short.split()) + 40
    listing = tasks["listing"]
    assert render(listing, props(formatted=True), rng).count("\n- ") == len(listing.items)


def test_generation_is_deterministic_for_a_seed():
    a, b = generate_sandbox(SMALL), generate_sandbox(SMALL)
    assert [c.a.text for c in a.train] == [c.a.text for c in b.train]
    assert [r.text for p in a.pools for r in p.responses] == [
        r.text for p in b.pools for r in p.responses
    ]
    assert a.labelled_pairs("train", 3) == b.labelled_pairs("train", 3)
    other = generate_sandbox(replace(SMALL, seed=1))
    assert [c.a.text for c in other.train] != [c.a.text for c in a.train]
    assert a.labelled_pairs("train", 3) != a.labelled_pairs("train", 4)


def test_every_family_appears_and_pools_have_the_asked_size():
    sb = generate_sandbox(SMALL)
    assert {c.task.family for c in sb.train} == set(FAMILIES)
    assert all(len(p.responses) == SMALL.pool_size for p in sb.pools)
    assert all(c.a.text != c.b.text for c in sb.train)
    for pool in sb.pools:
        assert pool.to_pool().gold == tuple(r.gold for r in pool.responses)


def test_flip_rate_is_respected_at_zero_temperature():
    # With T=0 the better response always wins before flips, so disagreement with
    # the gold order is exactly the flip rate: 20_000 draws put the 25% rate within
    # ±0.02 (more than 6 standard errors), which a broken flip cannot pass.
    rng = np.random.default_rng(0)
    gaps = rng.choice([-2.0, -0.5, 0.5, 3.0], size=20_000)
    wins = label_draws(gaps, 0.0, 0.25, np.random.default_rng(1))
    disagree = np.mean(wins != (gaps > 0))
    assert abs(disagree - 0.25) < 0.02
    assert np.mean(label_draws(gaps, 0.0, 0.0, rng) != (gaps > 0)) == 0.0


def test_bradley_terry_labels_follow_the_gold_gap():
    gaps = np.full(20_000, 1.0)
    wins = label_draws(gaps, 1.0, 0.0, np.random.default_rng(2))
    assert abs(wins.mean() - 1 / (1 + np.exp(-1.0))) < 0.02  # σ(1) ≈ 0.731
    hot = label_draws(gaps, 4.0, 0.0, np.random.default_rng(3))
    assert abs(hot.mean() - 1 / (1 + np.exp(-0.25))) < 0.02  # higher temperature, noisier


def test_spurious_feature_is_planted_in_training_and_removed_in_pools(tasks):
    rng = np.random.default_rng(5)
    task = tasks["arithmetic"]
    train = [sample_props(task, rng, SamplerConfig(mode="train")) for _ in range(4000)]
    pool = [sample_props(task, rng, SamplerConfig(mode="pool")) for _ in range(4000)]

    def corr(rows):
        answered = [p for p in rows if not p.refused]
        v = np.array([p.verbosity for p in answered], dtype=float)
        c = np.array([p.correct for p in answered], dtype=float)
        return float(np.corrcoef(v, c)[0, 1]), int(v.max())

    train_corr, train_max = corr(train)
    pool_corr, pool_max = corr(pool)
    assert train_corr > 0.5
    assert abs(pool_corr) < 0.06
    assert pool_max > train_max  # pools reach padding never seen in training

    def polished(p):
        return p.polite and p.formatted and not p.hedging and p.verbosity > 5

    errors = [p.error for p in train if not p.correct and not p.refused]
    shares = {e: errors.count(e) / len(errors) for e in set(errors)}
    assert set(shares) == {"subtle", "contradiction", "evasive", "mismatch"}
    assert abs(shares["subtle"] - 0.35) < 0.05
    assert all(p.error == "" for p in train if p.correct or p.refused)

    assert np.mean([polished(p) for p in pool]) > 0.05
    assert not any(polished(p) for p in train)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="flip_rate"):
        SandboxConfig(flip_rate=0.7)
    with pytest.raises(ConfigError, match="pool_size"):
        SandboxConfig(pool_size=1)
    with pytest.raises(ConfigError, match="families"):
        SandboxConfig(families=("poetry",))


def test_export_round_trips_through_the_user_loaders(tmp_path):
    sb = generate_sandbox(SMALL)
    paths = export_sandbox(sb, tmp_path, label_seed=0)
    train, report = load_pairs(paths["train"])
    assert report.n_kept == SMALL.train_prompts
    assert [p.chosen for p in train] == [p.chosen for p in sb.labelled_pairs("train", 0)]
    test, _ = load_pairs(paths["test"])
    rows = [json.loads(line) for line in paths["test"].read_text().splitlines()]
    assert all(r["chosen_gold"] > r["rejected_gold"] for r in rows)
    assert len(test) == len(sb.gold_pairs("test"))
    pools, _ = load_pools(paths["pools"])
    assert len(pools) == SMALL.pool_prompts
    assert pools[0].gold == sb.pools[0].to_pool().gold
    assert json.loads(paths["config"].read_text())["config"]["pool_size"] == SMALL.pool_size
