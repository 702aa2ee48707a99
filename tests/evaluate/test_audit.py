"""Preference strength and suspicion from member rewards: answers worked out by hand."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from rewardhedge.data import load_pairs
from rewardhedge.errors import ConfigError
from rewardhedge.evaluate.audit import (
    PreferenceStrength,
    apply_action,
    flag_enrichment,
    flag_suspects,
    flip_pair,
    pair_record,
    vote_share,
)
from rewardhedge.types import PROBIT_SCALE, PreferencePair, RewardEstimate, sigmoid

# 4 members x 3 pairs of margins r_c − r_r.
MARGINS = np.array(
    [
        [1.0, -2.0, 0.0],
        [3.0, -1.0, 1.0],
        [1.0, 1.0, -1.0],
        [-1.0, -2.0, 0.0],
    ]
)


def test_vote_share_counts_members_for_the_label_and_ties_half() -> None:
    # pair 0: 3 of 4 positive; pair 1: 1 of 4; pair 2: one +, one −, two ties -> (1 + 1) / 4
    np.testing.assert_allclose(vote_share(MARGINS), [0.75, 0.25, 0.5])


def test_strength_mean_spread_and_probability_by_hand() -> None:
    s = PreferenceStrength.from_margins(MARGINS)
    np.testing.assert_allclose(s.margin_mean, [1.0, -1.0, 0.0])
    # pair 0: deviations 0, 2, 0, -2 -> var 2; pair 1: -1, 0, 2, -1 -> 1.5; pair 2: 0, 1, -1, 0
    np.testing.assert_allclose(s.margin_std, np.sqrt([2.0, 1.5, 0.5]))
    np.testing.assert_allclose(s.prob, sigmoid(MARGINS).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(s.prob[2], 0.5, rtol=1e-12)  # σ(1) + σ(−1) = 1
    np.testing.assert_allclose(s.suspicion, 1.0 - s.prob)
    assert s.n_members == 4 and len(s) == 3
    assert s.row(1) == {
        "vote_share": 0.25,
        "margin_mean": -1.0,
        "margin_std": math.sqrt(1.5),
        "p_label": float(s.prob[1]),
    }


def test_identical_members_have_zero_spread_and_all_or_no_votes() -> None:
    s = PreferenceStrength.from_margins(np.tile([[2.0, -0.5]], (5, 1)))
    np.testing.assert_allclose(s.margin_std, [0.0, 0.0])
    np.testing.assert_allclose(s.vote_share, [1.0, 0.0])
    np.testing.assert_allclose(s.prob, sigmoid(np.array([2.0, -0.5])))


def test_from_estimates_uses_the_member_rewards_and_the_noise_of_gaussian_heads() -> None:
    chosen = np.array([[2.0, 0.0], [1.0, 1.0]])
    rejected = np.array([[0.0, 1.0], [1.0, 3.0]])
    plain = PreferenceStrength.from_estimates(
        RewardEstimate.from_members(chosen), RewardEstimate.from_members(rejected)
    )
    np.testing.assert_allclose(plain.margin_mean, [1.0, -1.5])
    np.testing.assert_allclose(plain.vote_share, [0.75, 0.0])
    noise = np.full((2, 2), 0.5)  # each side's predicted variance: 0.5 -> 1 in total
    noisy = PreferenceStrength.from_estimates(
        RewardEstimate.from_members(chosen, noise), RewardEstimate.from_members(rejected, noise)
    )
    shrink = math.sqrt(1.0 + PROBIT_SCALE * 1.0)
    np.testing.assert_allclose(noisy.prob, sigmoid((chosen - rejected) / shrink).mean(axis=0))
    np.testing.assert_allclose(noisy.margin_mean, plain.margin_mean)  # margins are raw


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"shape \(m, n\)"):
        vote_share(np.zeros(3))
    with pytest.raises(ValueError, match="logits have shape"):
        PreferenceStrength.from_margins(np.zeros((2, 3)), np.zeros((2, 2)))


def test_flag_suspects_is_strictly_above_the_threshold() -> None:
    assert flag_suspects([0.2, 0.5, 0.51], 0.5).tolist() == [False, False, True]


PAIRS = [
    PreferencePair("q0", "a", "b", margin=1.0, chosen_score=5.0, rejected_score=2.0, id="0"),
    PreferencePair("q1", "c", "d", id="1"),
    PreferencePair("q2", "e", "f", subset="s", id="2"),
]


def test_flip_swaps_texts_and_scores_and_drops_the_margin() -> None:
    flipped = flip_pair(PAIRS[0])
    assert (flipped.chosen, flipped.rejected) == ("b", "a")
    assert (flipped.chosen_score, flipped.rejected_score) == (2.0, 5.0)
    assert flipped.margin is None and flipped.id == "0" and flipped.prompt == "q0"


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("flag", [("a", "b"), ("c", "d"), ("e", "f")]),
        ("drop", [("a", "b"), ("e", "f")]),
        ("flip", [("a", "b"), ("d", "c"), ("e", "f")]),
    ],
)
def test_actions_on_the_flagged_pairs(action: str, expected: list) -> None:
    out = apply_action(PAIRS, [False, True, False], action)
    assert [(p.chosen, p.rejected) for p in out] == expected


def test_an_unknown_action_names_the_valid_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"^action == 'smooth', must be one of: flag, drop, flip, soft"
    ):
        apply_action(PAIRS, [False] * 3, "smooth")
    with pytest.raises(ValueError, match="flagged has shape"):
        apply_action(PAIRS, [True], "drop")


def test_enrichment_by_hand() -> None:
    # 6 pairs, 2 mislabelled (0, 1); flagged 0 and 2: precision 1/2, recall 1/2, base 1/3.
    truth = [True, True, False, False, False, False]
    r = flag_enrichment([True, False, True, False, False, False], truth, [0.9, 0.3, 0.8, 0, 0, 0])
    assert (r["n"], r["n_true"], r["n_flagged"], r["n_true_flagged"]) == (6, 2, 2, 1)
    assert r["precision"] == 0.5 and r["recall"] == 0.5
    np.testing.assert_allclose([r["base_rate"], r["lift"]], [1 / 3, 1.5])
    # P(at least 1 of 2 random picks is mislabelled) = 1 − C(4,2)/C(6,2) = 1 − 6/15
    np.testing.assert_allclose(r["p_value"], 0.6)
    # mislabel scores 0.9, 0.3 vs correct 0.8, 0, 0, 0: 4 + 3 of 8 comparisons won
    np.testing.assert_allclose(r["auroc"], 7 / 8)
    none = flag_enrichment([False] * 3, [True, False, False])
    assert math.isnan(none["precision"]) and none["recall"] == 0.0 and none["p_value"] == 1.0


def test_pair_records_load_back_as_the_same_pairs(tmp_path) -> None:
    path = tmp_path / "clean.jsonl"
    path.write_text("".join(json.dumps(pair_record(p)) + "\n" for p in PAIRS))
    loaded, _ = load_pairs(path)
    assert loaded == [replace(p, source="clean.jsonl") for p in PAIRS]  # source: the file


def test_docstring_examples_run() -> None:
    import doctest

    import rewardhedge.evaluate.audit as audit_mod

    result = doctest.testmod(audit_mod)
    assert result.attempted > 0 and result.failed == 0
