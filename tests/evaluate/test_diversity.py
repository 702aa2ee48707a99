"""Member diversity: pairwise STARC and disagreement in and out of distribution, known answers."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import rewardhedge.evaluate.diversity as diversity_mod
from rewardhedge.evaluate.diversity import member_diversity
from rewardhedge.evaluate.starc import starc_distance, starc_pairwise

GROUPS = ["p", "p", "p", "q", "q", "r", "r"]


def reward(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=len(GROUPS))


def test_identical_members_have_distance_and_disagreement_zero():
    r = reward()
    d = member_diversity(np.stack([r, r, r]), GROUPS, np.stack([r[:3], r[:3], r[:3]]))
    assert d["n_members"] == 3
    assert d["starc_pairwise_mean"] == 0.0 and d["starc_pairwise_max"] == 0.0
    assert d["disagreement_in"] == 0.0 and d["disagreement_shift"] == 0.0
    assert d["shift_ratio"] is None  # undefined: no disagreement to compare with


def test_a_positive_affine_transform_per_prompt_is_distance_zero():
    r = reward()
    offsets = {"p": 3.0, "q": -7.0, "r": 0.5}
    moved = 2.5 * r + np.array([offsets[g] for g in GROUPS])
    d = member_diversity(np.stack([r, moved]), GROUPS, standardize=False)
    assert d["starc_pairwise_mean"] == pytest.approx(0.0, abs=1e-12)
    assert d["disagreement_in"] > 1.0  # the raw rewards do differ
    # a constant offset and scale vanish under standardisation as well
    d = member_diversity(np.stack([r, 4.0 * r - 9.0]), GROUPS, np.stack([r, 4.0 * r - 9.0]))
    assert d["disagreement_in"] == pytest.approx(0.0, abs=1e-12)
    assert d["disagreement_shift"] == pytest.approx(0.0, abs=1e-12)


def test_different_members_have_known_positive_distances():
    # canonicalised: (-.5, .5 | .5, -.5) and (-.5, .5 | -.5, .5): orthogonal unit vectors
    a, b = [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]
    groups = ["p", "p", "q", "q"]
    matrix = starc_pairwise([a, b, [-x for x in a]], groups)
    np.testing.assert_allclose(
        matrix,
        [
            [0.0, math.sqrt(0.5), 1.0],
            [math.sqrt(0.5), 0.0, math.sqrt(0.5)],
            [1.0, math.sqrt(0.5), 0.0],
        ],
        atol=1e-12,
    )
    d = member_diversity([a, b, [-x for x in a]], groups)
    assert d["starc_pairwise_mean"] == pytest.approx((2 * math.sqrt(0.5) + 1.0) / 3)
    assert d["starc_pairwise_min"] == pytest.approx(math.sqrt(0.5))
    assert d["starc_pairwise_max"] == pytest.approx(1.0)


def test_pairwise_matrix_equals_starc_distance_of_each_pair():
    members = np.stack([reward(s) for s in range(5)])
    matrix = starc_pairwise(members, GROUPS)
    assert matrix.shape == (5, 5)
    np.testing.assert_array_equal(matrix, matrix.T)
    for i in range(5):
        for j in range(5):
            expected = 0.0 if i == j else starc_distance(members[i], members[j], GROUPS)
            assert matrix[i, j] == pytest.approx(expected, abs=1e-12)
    # a member constant within every prompt has no preferences: nan in its row and column
    flat = np.array([{"p": 1.0, "q": 2.0, "r": 3.0}[g] for g in GROUPS])
    m = starc_pairwise(np.vstack([members[:2], flat]), GROUPS)
    assert np.isnan(m[2]).all() and np.isnan(m[:, 2]).all() and m[0, 1] > 0


def test_disagreement_by_hand_in_and_shifted():
    inside = [[0.0, 1.0, 1.0], [2.0, 3.0, 3.0]]  # std over members 1 on every item
    shifted = [[0.0, 0.0], [4.0, 6.0]]  # 2 and 3
    d = member_diversity(inside, ["p", "p", "q"], shifted, standardize=False)
    assert d["disagreement_in"] == pytest.approx(1.0)
    assert d["disagreement_shift"] == pytest.approx(2.5)
    assert d["shift_ratio"] == pytest.approx(2.5)
    assert d["starc_pairwise_mean"] == pytest.approx(0.0, abs=1e-12)  # an offset only
    assert member_diversity([[1.0, 2.0]], ["p", "p"])["starc_pairwise_mean"] is None


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="members_shift has 3 members, members_in has 2"):
        member_diversity([[0.0, 1.0], [1.0, 0.0]], ["p", "p"], [[0.0]] * 3)
    with pytest.raises(ValueError, match="members_in contains NaN"):
        member_diversity([[0.0, math.nan], [1.0, 0.0]], ["p", "p"])
    with pytest.raises(ValueError, match=r"members_in must have shape \(K, n\)"):
        member_diversity([0.0, 1.0], ["p", "p"])


def test_docstring_examples_run():
    assert doctest.testmod(diversity_mod).failed == 0
