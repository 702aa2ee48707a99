"""evaluate_pairwise on a hand-built 2-member ensemble (table: tests/report/test_terminal.py)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy.stats import rankdata

from rewardhedge.evaluate import bootstrap_ci, evaluate_pairwise
from rewardhedge.types import PreferencePair, RewardEstimate, pairwise_from_estimates


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@pytest.fixture
def estimate(hand_ensemble):
    """See the ``hand_ensemble`` fixture for the members and the metrics they give."""
    return hand_ensemble[0]


@pytest.fixture
def pairs(hand_ensemble):
    return hand_ensemble[1]


@pytest.fixture
def metrics(estimate, pairs):
    return evaluate_pairwise(estimate, pairs, reps=300, seed=0)


def test_every_field_hand_computed(metrics):
    m = metrics
    assert m["primary_metric"] == "pairwise_accuracy"
    assert m["greater_is_better"] is True
    assert m["n_pairs"] == 4
    assert m["pairwise_accuracy"] == pytest.approx(0.375)
    correct = [1.0, 0.5, 0.0, 0.0]
    assert (m["accuracy_ci_low"], m["accuracy_ci_high"]) == bootstrap_ci(correct, reps=300)
    assert m["accuracy_ci_low"] <= 0.375 <= m["accuracy_ci_high"]
    assert m["ci_level"] == 0.95
    assert m["ties"] == "half"

    # prob = mean over members of sigmoid(member diff)
    probs = [
        (sig(2) + sig(0)) / 2,
        0.5,
        (sig(-3) + sig(1)) / 2,
        sig(-1),
    ]
    assert m["log_loss"] == pytest.approx(-sum(math.log(p) for p in probs) / 4, rel=1e-12)
    assert m["brier"] == pytest.approx(sum((1 - p) ** 2 for p in probs) / 4, rel=1e-12)
    assert m["mean_margin"] == pytest.approx((1 + 0 - 1 - 1) / 4)
    assert m["n_ties"] == 1

    assert m["n_members"] == 2
    assert m["member_accuracy_mean"] == pytest.approx((0.375 + 0.5) / 2)
    assert m["member_accuracy_min"] == pytest.approx(0.375)
    assert m["member_accuracy_max"] == pytest.approx(0.5)
    # sqrt(var) over the 8 responses: chosen [1, 0, 1, 0], rejected [0, 0, 1, 0]
    assert m["mean_epistemic_std"] == pytest.approx(3 / 8)

    longer = m["length_baseline"]["longer"]
    shorter = m["length_baseline"]["shorter"]
    assert longer["accuracy"] == pytest.approx(2.5 / 4)  # [1, .5, 0, 1]
    assert shorter["accuracy"] == pytest.approx(1.5 / 4)  # [0, .5, 1, 0]
    assert (longer["ci_low"], longer["ci_high"]) == bootstrap_ci([1, 0.5, 0, 1], reps=300)
    assert (shorter["ci_low"], shorter["ci_high"]) == bootstrap_ci([0, 0.5, 1, 0], reps=300)

    # Spearman = Pearson correlation of average ranks.
    lengths = [4, 2, 1, 2, 1, 2, 3, 1]
    rewards = [1, 1, 1, 0, 0, 1, 2, 1]
    expected_rho = np.corrcoef(rankdata(lengths), rankdata(rewards))[0, 1]
    assert m["length_reward_corr"] == pytest.approx(expected_rho, rel=1e-12)

    # Only pair 1 ("bb" vs "xx") is within 10% in length, and it is a tie.
    assert m["length_matched"] == {
        "n_pairs": 1,
        "accuracy": 0.5,
        "ci_low": 0.5,
        "ci_high": 0.5,
        "tolerance": 0.1,
    }

    assert m["subsets"] == {
        "a": {"n": 2, "accuracy": 0.5, "ci_low": 0.0, "ci_high": 1.0},
        "b": {"n": 1, "accuracy": 0.5, "ci_low": 0.5, "ci_high": 0.5},
    }


def test_json_round_trip_plain_types(metrics):
    text = json.dumps(metrics, allow_nan=False)
    assert json.loads(text) == metrics

    def walk(x):
        if isinstance(x, dict):
            for k, v in x.items():
                assert type(k) is str
                walk(v)
        elif isinstance(x, list):  # reliability-diagram bins
            for v in x:
                walk(v)
        else:
            assert type(x) in (float, int, str, bool, type(None)), (x, type(x))

    walk(metrics)


def test_length_mismatch_names_both_lengths(estimate, pairs):
    with pytest.raises(ValueError, match=r"4 pairs.*pairs has 3"):
        evaluate_pairwise(estimate, pairs[:3])


def test_no_subsets_and_undefined_correlation_without_warnings():
    members = np.zeros((2, 2))  # every reward 0: correlation undefined, all ties
    est = pairwise_from_estimates(
        RewardEstimate.from_members(members), RewardEstimate.from_members(members)
    )
    pairs = [PreferencePair("p", "a", "bb"), PreferencePair("p", "ccc", "d")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = evaluate_pairwise(est, pairs, reps=100)
    assert m["subsets"] == {}
    assert m["length_reward_corr"] is None
    assert m["pairwise_accuracy"] == 0.5 and m["n_ties"] == 2
    assert m["log_loss"] == pytest.approx(math.log(2))
    assert m["mean_epistemic_std"] == 0.0
    json.dumps(m, allow_nan=False)


def test_single_pair_is_json_safe():
    est = pairwise_from_estimates(
        RewardEstimate.from_members(np.array([[1.0]])),
        RewardEstimate.from_members(np.array([[0.0]])),
    )
    m = evaluate_pairwise(est, [PreferencePair("p", "a", "b", subset="s")], reps=50)
    assert (m["accuracy_ci_low"], m["accuracy_ci_high"]) == (1.0, 1.0)
    assert m["length_reward_corr"] is None  # both lengths equal
    json.dumps(m, allow_nan=False)


def _pairs_estimate(r_chosen, r_rejected):
    """A 1-member estimate with the given rewards."""
    return pairwise_from_estimates(
        RewardEstimate.from_members(np.array([r_chosen], dtype=float)),
        RewardEstimate.from_members(np.array([r_rejected], dtype=float)),
    )


def test_length_matched_accuracy_hand_computed():
    pairs = [
        PreferencePair("p0", "a" * 10, "b" * 9),  # 10% apart: matched (boundary), right
        PreferencePair("p1", "a" * 20, "b" * 20),  # equal: matched, wrong
        PreferencePair("p2", "a" * 10, "b" * 8),  # 20% apart: not matched, right
        PreferencePair("p3", "a", "b" * 30),  # not matched, right
    ]
    est = _pairs_estimate([1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0])
    m = evaluate_pairwise(est, pairs, reps=300, seed=7)
    assert m["pairwise_accuracy"] == pytest.approx(0.75)
    lm = m["length_matched"]
    assert lm["n_pairs"] == 2 and type(lm["n_pairs"]) is int
    assert lm["accuracy"] == 0.5
    assert (lm["ci_low"], lm["ci_high"]) == bootstrap_ci([1.0, 0.0], reps=300, seed=7)
    assert lm["tolerance"] == 0.1
    json.dumps(m, allow_nan=False)


def test_length_matched_ties_count_half_and_empty_strings_match():
    pairs = [
        PreferencePair("p0", "", ""),  # both empty: matched, tie
        PreferencePair("p1", "abc", "xyz"),  # matched, right
        PreferencePair("p2", "", "x"),  # not matched
    ]
    est = _pairs_estimate([2.0, 1.0, 0.0], [2.0, 0.0, 1.0])
    lm = evaluate_pairwise(est, pairs, reps=200)["length_matched"]
    assert (lm["n_pairs"], lm["accuracy"]) == (2, 0.75)
    assert (lm["ci_low"], lm["ci_high"]) == bootstrap_ci([0.5, 1.0], reps=200, seed=0)


def test_no_length_matched_pairs_gives_none():
    pairs = [PreferencePair("p0", "long answer", "no"), PreferencePair("p1", "a", "bb")]
    est = _pairs_estimate([1.0, 0.0], [0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = evaluate_pairwise(est, pairs, reps=100)
    assert m["length_matched"] == {
        "n_pairs": 0,
        "accuracy": None,
        "ci_low": None,
        "ci_high": None,
        "tolerance": 0.1,
    }
    assert json.loads(json.dumps(m, allow_nan=False))["length_matched"] == m["length_matched"]
