"""Reward transforms: centered log-sigmoid, PAR, per-prompt references, running-mean centering."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewardhedge.uncertainty.transforms import (
    RunningMeanCenter,
    centered_logsigmoid,
    par,
    reference_by_group,
)

finite = st.floats(-50, 50, allow_nan=False)


@given(finite, finite, finite)
def test_logsigmoid_is_bounded_monotone_and_stable(r, s, ref):
    a, b = centered_logsigmoid(np.array([r, s]), ref)
    assert a <= 0 and b <= 0 and np.isfinite(a) and np.isfinite(b)
    if r < s:
        assert a <= b


def test_logsigmoid_known_values_and_and_semantics():
    assert centered_logsigmoid(np.array([2.0]), 2.0)[0] == pytest.approx(np.log(0.5))
    assert centered_logsigmoid(np.array([1000.0]), 0.0)[0] == 0.0
    assert centered_logsigmoid(np.array([-1000.0]), 0.0)[0] == pytest.approx(-1000.0)
    # Summing transformed rewards of two models = log P(beats the reference under both).
    a, b = 0.7, -0.3
    total = centered_logsigmoid(np.array([a]), 0.0) + centered_logsigmoid(np.array([b]), 0.0)
    assert total[0] == pytest.approx(np.log(1 / (1 + np.exp(-a)) * 1 / (1 + np.exp(-b))))


def test_par_averages_sigmoids_over_references():
    r = np.array([1.0, -2.0])
    refs = np.array([[0.0, 2.0], [-2.0, -2.0]])
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    expected = [(sig(1.0) + sig(-1.0)) / 2, 0.5]
    assert par(r, refs) == pytest.approx(expected)
    assert par(r, np.array([0.0])) == pytest.approx(sig(r))
    with pytest.raises(ValueError, match="references"):
        par(r, np.zeros((3, 2)))


def test_reference_by_group_uses_each_prompts_own_candidates():
    r = np.array([1.0, 5.0, 3.0, 100.0, -1.0])
    ref = reference_by_group(r, ["p", "p", "p", "q", "q"])
    assert ref.tolist() == [3.0, 3.0, 3.0, 49.5, 49.5]
    assert reference_by_group(r, list("ppqqq"), how="mean")[2] == pytest.approx(34.0)
    with pytest.raises(ValueError, match="groups"):
        reference_by_group(r, ["p"])


def test_running_center_subtracts_the_mean_of_earlier_batches_only():
    center = RunningMeanCenter()
    assert center(np.array([1.0, 3.0])).tolist() == [1.0, 3.0]  # nothing seen yet
    assert center(np.array([5.0])).tolist() == [3.0]  # mean of 1, 3 is 2
    assert center.mean == pytest.approx(3.0) and center.count == 3
    ema = RunningMeanCenter(momentum=0.5)
    ema(np.array([2.0]))
    ema(np.array([4.0]))
    assert ema.mean == pytest.approx(3.0)
    with pytest.raises(ValueError, match="momentum"):
        RunningMeanCenter(momentum=0.0)
