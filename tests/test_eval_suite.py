"""The evaluation suite on real (tiny) models: every block checked against a direct computation."""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import count

import numpy as np
import pytest

from rewardhedge import EnsembleConfig, EnsembleRewardModel
from rewardhedge.config import EncoderConfig, EvalConfig
from rewardhedge.encoders import HashingEncoder
from rewardhedge.estimators.evaluation import evaluate_one_to_many, evaluate_pairs, evaluate_pools
from rewardhedge.evaluate.one_to_many import one_to_many_correct
from rewardhedge.evaluate.pairwise import pairwise_correct
from rewardhedge.evaluate.rewardbench import section_scores
from rewardhedge.evaluate.starc import starc_distance
from rewardhedge.types import CandidatePool, OneToManyRow

CFG = EnsembleConfig(n_members=3, encoder=EncoderConfig(kind="hashing", dim=64))
FAST = EvalConfig(reps=200, batch_check_items=16)


def fit(pairs, cfg=CFG, **kw) -> EnsembleRewardModel:
    return EnsembleRewardModel(cfg, **kw).fit(pairs)


@pytest.fixture(scope="module")
def data(pair_factory):
    return pair_factory(60), pair_factory(40, seed=7)


@pytest.fixture(scope="module")
def model(data):
    return fit(data[0])


def flipped(pairs):
    return [replace(p, chosen=p.rejected, rejected=p.chosen) for p in pairs]


def test_pairs_blocks_agree_with_direct_computation(model, data):
    test = [
        replace(p, subset="alpacaeval-easy" if i % 2 else "mt-bench-easy")
        for i, p in enumerate(data[1])
    ]
    m = evaluate_pairs(model, test, config=FAST)
    assert (m["kind"], m["version"], m["task"]) == ("rewardhedge.eval", 1, "pairs")
    est = model.compare(test)
    correct = pairwise_correct(est.chosen.mean, est.rejected.mean)
    assert m["pairwise_accuracy"] == pytest.approx(correct.mean())
    expected = section_scores(correct, [p.subset for p in test], reps=FAST.reps, seed=FAST.seed)
    assert m["rewardbench"] == expected
    assert list(m["rewardbench"]["sections"]) == ["Chat"]
    # Members: one accuracy per member, and the stratified mean is the mean of the matrix.
    members = m["members"]
    assert members["n_members"] == 3 and len(members["accuracy"]) == 3
    assert members["tasks"] == ["alpacaeval-easy", "mt-bench-easy"]
    per_member = [
        pairwise_correct(est.chosen.members[k], est.rejected.members[k]).mean() for k in range(3)
    ]
    assert members["accuracy"] == pytest.approx(per_member)
    mean = members["mean"]
    assert mean["low"] <= mean["point"] <= mean["high"]
    assert 0.0 <= m["starc"]["mean"] <= m["starc"]["max"] <= 1.0
    bi = m["controls"]["batch_invariance"]
    assert bi["n_items"] == 16 and bi["n_pairs_checked"] == 8 and bi["passed"]
    assert "comparison" not in m and "perturbation" not in m
    json.dumps(m, allow_nan=False)  # plain, strict JSON


def test_pairs_without_rewardbench_subsets_have_no_sections(model, data):
    m = evaluate_pairs(model, data[1], config=FAST)
    assert "rewardbench" not in m
    assert m["members"]["tasks"] == ["even", "odd"]


def test_comparison_with_itself_and_with_its_opposite(model, data):
    same = evaluate_pairs(model, data[1], config=FAST, other=("itself", model))["comparison"]
    assert same["diff"] == 0.0 and same["p_value"] == 1.0
    assert same["starc_distance"] == pytest.approx(0.0, abs=1e-9)
    opposite = fit(flipped(data[0]))
    c = evaluate_pairs(model, data[1], config=FAST, other=("flipped", opposite))["comparison"]
    assert c["other_model"] == "flipped"
    assert c["diff"] == pytest.approx(c["accuracy"] - c["other_accuracy"])
    assert c["diff"] > 0.5 and c["p_value"] < 0.01 and c["ci_low"] > 0
    ea, eb = model.compare(data[1]), opposite.compare(data[1])
    groups = [p.prompt for p in data[1]] * 2
    expected = starc_distance(
        np.concatenate([ea.chosen.mean, ea.rejected.mean]),
        np.concatenate([eb.chosen.mean, eb.rejected.mean]),
        groups,
    )
    assert c["starc_distance"] == pytest.approx(expected) and 0.0 < expected <= 1.0
    assert c["starc_ci_low"] <= c["starc_ci_high"]


class BatchCentredEncoder:
    """A harness bug: features centred on their batch, so a reward depends on its batch-mates."""

    def __init__(self) -> None:
        self.inner = HashingEncoder(EncoderConfig(kind="hashing", dim=64))
        self.id, self.dim = "batch-centred", self.inner.dim

    def encode(self, prompts, responses, *, progress=False):
        x = self.inner.encode(prompts, responses)
        return x - x.mean(axis=0, keepdims=True) if len(x) > 1 else x


def test_the_batch_control_catches_a_batch_dependent_model(data):
    leaky = fit(data[0], encoder=BatchCentredEncoder())
    bi = evaluate_pairs(leaky, data[1], config=FAST)["controls"]["batch_invariance"]
    assert not bi["within_tolerance"] and not bi["passed"]
    assert bi["max_abs_diff"] > 1e-3


def test_generated_and_file_perturbations(model, data, tmp_path):
    test = data[1][:10]
    rows = [{"prompt": test[0].prompt, "perturbed": "Q: " + test[0].prompt, "kind": "prefix"}]
    path = tmp_path / "perturb.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = replace(FAST, perturbations=("uppercase", "template"), perturbation_file=str(path))
    p = evaluate_pairs(model, test, config=cfg)["perturbation"]
    assert p["source"] == "generated+file" and p["n_pairs"] == 10
    assert list(p["kinds"]) == ["uppercase", "template", "prefix"]
    assert p["kinds"]["uppercase"]["n_pairs"] == 10 and p["kinds"]["prefix"]["n_pairs"] == 1
    # The hashing encoder lowercases words, so case changes nothing.
    upper = p["kinds"]["uppercase"]
    assert upper["consistency"]["value"] == 1.0 and upper["mean_abs_margin_shift"] == 0.0


def test_timing_uses_the_given_clock(model, data):
    ticks = count()
    m = evaluate_pairs(model, data[1], config=FAST, clock=lambda: float(next(ticks)))
    # compare (one tick) then everything else (one more tick).
    assert m["timing"] == {"scoring_s": 1.0, "total_s": 2.0, "overhead_ratio": 2.0}


def test_one_to_many_rows(model, data):
    rows = [
        OneToManyRow(p.prompt, p.chosen, (p.rejected, q.rejected, q.chosen), subset=p.subset)
        for p, q in zip(data[1][:20], data[1][20:], strict=True)
    ]
    m = evaluate_one_to_many(model, rows, config=FAST)
    assert m["task"] == "one_to_many" and m["n_pairs"] == 60
    block = m["one_to_many"]
    assert block["n_rows"] == 20 and block["candidates_per_row"] == {
        "min": 4,
        "max": 4,
        "mean": 4.0,
    }
    est = model.score(
        [r.prompt for r in rows for _ in range(4)],
        [t for r in rows for t in (r.chosen, *r.rejected)],
    )
    scores = est.mean.reshape(20, 4)
    strict = one_to_many_correct(scores[:, 0], list(scores[:, 1:]))
    assert block["accuracy"]["value"] == pytest.approx(strict.mean())
    assert block["best_of_4"]["n_rows"] == 20 and block["best_of_4"]["chance"] == 0.25
    assert set(block["subsets"]) == {"even", "odd"}


def pools_with_gold(model: EnsembleRewardModel, n: int = 12) -> list[CandidatePool]:
    rng = np.random.default_rng(0)
    pools = []
    for i in range(n):
        cands = tuple(
            f"answer {w} number {i} {'x' * int(rng.integers(1, 9))}"
            for w in ("correct", "wrong", "clear", "vague", "rude")
        )
        gold = tuple(float(g) for g in model.score([f"q{i}"] * 5, list(cands)).mean)
        pools.append(CandidatePool(f"q{i}", cands, gold=gold, id=f"pool{i}"))
    return pools


def test_pools_per_aggregation_with_an_oracle_gold(model):
    pools = pools_with_gold(model)
    m = evaluate_pools(model, pools, config=FAST)
    assert (m["task"], m["n_pools"], m["n_pools_with_gold"]) == ("pools", 12, 12)
    assert list(m["aggregations"]) == ["mean", "wco", "uwo_lam0.5", "lcb_beta1", "brme_lam0.5"]
    mean = m["aggregations"]["mean"]
    # Gold is the model's own mean reward, so picking by the mean is optimal: zero regret.
    assert mean["label"] == "mean" and mean["regret"]["mean"] == pytest.approx(0.0)
    assert mean["gold"]["mean"] == pytest.approx(mean["best_gold"]["mean"])
    for agg in m["aggregations"].values():
        assert agg["regret"]["mean"] >= -1e-12
        assert 0.0 <= agg["win_vs_random"]["mean"] <= 1.0
    longer = m["length_baseline"]["longer"]
    expected = np.mean([p.gold[int(np.argmax([len(c) for c in p.candidates]))] for p in pools])
    assert longer["gold"]["mean"] == pytest.approx(expected)
    assert -1.0 <= m["length_reward_corr"] <= 1.0
    assert m["controls"]["batch_invariance"]["n_items"] == 16
    json.dumps(m, allow_nan=False)


def test_pools_add_the_models_own_aggregation(data):
    from rewardhedge.uncertainty import Aggregation
    from rewardhedge.uncertainty.reward_rule import RewardRule

    m = fit(data[0], rule=RewardRule(aggregation=Aggregation("softmin", beta=2.0)))
    out = evaluate_pools(m, pools_with_gold(m, 3), config=replace(FAST, batch_check_items=0))
    assert "softmin_beta2" in out["aggregations"] and out["controls"] == {}
    assert out["aggregations"]["softmin_beta2"]["label"] == "soft-min β=2"
