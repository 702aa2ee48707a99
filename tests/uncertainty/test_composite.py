"""Combining several reward models' rewards: known answers, the AND and threshold
properties that make a combination resist one component being hacked, and validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardhedge.errors import ConfigError
from rewardhedge.uncertainty.composite import Combination
from rewardhedge.uncertainty.transforms import centered_logsigmoid

finite = st.floats(-20, 20, allow_nan=False)


def test_and_is_the_weighted_sum_of_centred_log_sigmoids_by_prompt():
    r = np.array([[1.0, 3.0, 0.0], [2.0, -2.0, 5.0]])
    groups = ["a", "a", "b"]
    got = Combination("and", weights=(1.0, 0.5)).apply(r, groups=groups)
    want = centered_logsigmoid(r[0], np.array([2.0, 2.0, 0.0])) + 0.5 * centered_logsigmoid(
        r[1], np.array([0.0, 0.0, 5.0])
    )
    np.testing.assert_allclose(got, want)


def test_and_prefers_good_on_both_to_great_on_one_and_bad_on_the_other():
    """The sum is indifferent between (5, -5) and (0, 0); the AND is not."""
    r = np.array([[5.0, 1.0], [-5.0, 1.0]])
    refs = np.zeros((2, 2))
    assert Combination("sum").apply(r).tolist() == [0.0, 2.0]
    hacked, balanced = Combination("and").apply(r, references=refs)
    assert balanced > hacked


@settings(max_examples=60, deadline=None)
@given(r=st.lists(finite, min_size=3, max_size=3), theta=finite, extra=st.floats(0.0, 50.0))
def test_a_component_past_its_threshold_adds_nothing(r, theta, extra):
    combo = Combination("constrained", thresholds=(theta, None, None))
    base = np.array(r)[:, None]
    above = base.copy()
    above[0] = max(base[0, 0], theta) + extra
    at = base.copy()
    at[0] = max(base[0, 0], theta)
    np.testing.assert_allclose(combo.apply(above), combo.apply(at))


@settings(max_examples=60, deadline=None)
@given(r=st.lists(finite, min_size=2, max_size=2), step=st.floats(0.01, 5.0))
def test_below_its_threshold_a_component_still_counts(r, step):
    combo = Combination("constrained", thresholds=(100.0, 100.0), weights=(1.0, 2.0))
    base = np.array(r)[:, None]
    more = base.copy()
    more[1] += step
    np.testing.assert_allclose(combo.apply(more) - combo.apply(base), [2.0 * step])


def test_members_are_combined_element_wise():
    r = np.arange(12, dtype=float).reshape(2, 3, 2)  # 2 components, 3 members, 2 items
    np.testing.assert_allclose(Combination("sum").apply(r), r[0] + r[1])
    refs = np.zeros((2, 2))
    got = Combination("and").apply(r, references=refs)
    np.testing.assert_allclose(got, centered_logsigmoid(r[0], 0.0) + centered_logsigmoid(r[1], 0.0))


def test_round_trip_and_label():
    combo = Combination("constrained", weights=(1.0, 2.0), thresholds=(0.5, None))
    assert Combination.from_dict(combo.to_dict()) == combo
    assert combo.label() == "constrained(θ=0.5, –)"


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: Combination("max"), "combination.kind == 'max'"),
        (lambda: Combination("constrained"), "needs combination.thresholds"),
        (lambda: Combination("sum", thresholds=(1.0,)), "only read by kind 'constrained'"),
        (lambda: Combination(weights=(1.0, -1.0)), "must be >= 0"),
        (lambda: Combination(weights=(1.0, float("nan"))), "finite numbers"),
        (lambda: Combination("and", reference="mode"), "'median', 'mean' or 'zero'"),
        (
            lambda: Combination.from_dict({"kind": "sum", "scale": 2}),
            "Unknown combination key 'scale'",
        ),
        (
            lambda: Combination(weights=(1.0, 1.0)).apply(np.zeros((3, 4))),
            "2 values for 3 components",
        ),
    ],
)
def test_bad_settings_name_the_field(make, needle):
    with pytest.raises(ConfigError, match=needle):
        make()


def test_and_without_groups_or_references_says_what_it_needs():
    with pytest.raises(ValueError, match="needs groups"):
        Combination("and").apply(np.zeros((2, 3)))


def test_a_zero_reference_scores_single_items_without_groups():
    r = np.array([[0.0, 4.0], [0.0, -4.0]])
    got = Combination("and", reference="zero").apply(r)
    np.testing.assert_allclose(got, centered_logsigmoid(r[0], 0.0) + centered_logsigmoid(r[1], 0.0))
