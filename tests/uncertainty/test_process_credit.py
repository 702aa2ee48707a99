"""Credit assignment over a solution's steps (``uncertainty/process.py``): known answers,
the padding properties that motivate min-form credit, ragged and member-wise shapes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rewardhedge.errors import ConfigError
from rewardhedge.uncertainty.aggregation import aggregate
from rewardhedge.uncertainty.process import CreditKind, aggregate_steps, pad_ragged

R = np.array([1.0, -2.0, 3.0, 0.5])

finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)
steps = arrays(np.float64, st.integers(1, 8), elements=finite)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("sum", 2.5), ("mean", 0.625), ("min", -2.0), ("last", 0.5)],
)
def test_known_answers(kind: str, expected: float) -> None:
    out = aggregate_steps(R, kind)
    assert out.shape == ()
    assert out.item() == pytest.approx(expected, rel=1e-12)


def test_softmin_known_answer() -> None:
    # weights ∝ exp(−r/τ): for r = (0, 1), τ = 1: w = (1, e^-1)/(1 + e^-1)
    w1 = np.exp(-1.0) / (1.0 + np.exp(-1.0))
    out = aggregate_steps(np.array([0.0, 1.0]), "softmin", temperature=1.0)
    assert out.item() == pytest.approx(w1, rel=1e-12)


def test_softmin_limits_are_min_and_mean() -> None:
    lo = aggregate_steps(R, CreditKind.SOFTMIN, temperature=1e-6).item()
    hi = aggregate_steps(R, CreditKind.SOFTMIN, temperature=1e9).item()
    assert lo == -2.0
    assert hi == pytest.approx(R.mean(), rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(r=steps, tau=st.floats(1e-3, 1e3))
def test_softmin_lies_between_min_and_mean(r: np.ndarray, tau: float) -> None:
    s = aggregate_steps(r, "softmin", temperature=tau).item()
    tol = 1e-9 * (1.0 + np.abs(r).max())
    assert r.min() - tol <= s <= r.mean() + tol


@settings(max_examples=80, deadline=None)
@given(r=steps, extra=st.floats(0, 50))
def test_appending_a_step_at_least_the_min_never_lowers_min(r: np.ndarray, extra: float) -> None:
    new = r.min() + extra
    before = aggregate_steps(r, "min").item()
    after = aggregate_steps(np.append(r, new), "min").item()
    assert after == before  # never lower, and never higher either: min ignores good steps


@settings(max_examples=80, deadline=None)
@given(r=steps, new=st.floats(1e-3, 50))
def test_appending_a_positive_step_always_raises_sum(r: np.ndarray, new: float) -> None:
    """The padding hack: any step the PRM scores above zero adds reward under sum."""
    assert aggregate_steps(np.append(r, new), "sum").item() > aggregate_steps(r, "sum").item()


def test_padding_a_wrong_solution_beats_a_correct_one_under_sum_not_min() -> None:
    correct = np.array([1.0, 1.0, 1.0])
    wrong = np.array([1.0, -1.0, 1.0])
    padded = np.concatenate([wrong, np.full(4, 0.8)])  # four easy, plausible pad steps
    for kind, hacked in (("sum", True), ("mean", False), ("min", False), ("last", False)):
        beats = aggregate_steps(padded, kind).item() > aggregate_steps(correct, kind).item()
        assert beats is hacked, kind
    # mean is diluted by padding: the wrong solution's mean rises toward the pad reward
    assert aggregate_steps(padded, "mean").item() > aggregate_steps(wrong, "mean").item()


def test_ragged_list_equals_each_solution_alone() -> None:
    rows = [np.array([1.0, 2.0, -1.0]), np.array([4.0]), np.array([0.0, 3.0])]
    for kind in CreditKind:
        out = aggregate_steps(rows, kind)
        assert out.shape == (3,)
        alone = [aggregate_steps(r, kind).item() for r in rows]
        np.testing.assert_allclose(out, alone, rtol=1e-12)


def test_padded_array_with_lengths_ignores_the_padding() -> None:
    padded = np.array([[1.0, 2.0, np.nan], [5.0, -1e9, 7.0], [3.0, np.inf, np.nan]])
    lengths = np.array([2, 3, 1])
    out = {k: aggregate_steps(padded, k, lengths=lengths) for k in CreditKind}
    np.testing.assert_allclose(out["sum"], [3.0, 5.0 - 1e9 + 7.0, 3.0])
    np.testing.assert_allclose(out["mean"], [1.5, (5.0 - 1e9 + 7.0) / 3, 3.0])
    np.testing.assert_allclose(out["min"], [1.0, -1e9, 3.0])
    np.testing.assert_allclose(out["last"], [2.0, 7.0, 3.0])
    assert np.isfinite(out["softmin"]).all()


def test_member_rows_are_aggregated_member_wise() -> None:
    members = np.array([[1.0, -1.0, 2.0], [0.0, 3.0, 3.0]])  # (m=2, T=3), one solution
    np.testing.assert_array_equal(aggregate_steps(members, "min"), [-1.0, 0.0])
    np.testing.assert_array_equal(aggregate_steps(members, "last"), [2.0, 3.0])
    # ragged solutions with member rows: (m, T_i) each -> (m, n), members first
    rows = [members, np.array([[5.0], [6.0]])]
    out = aggregate_steps(rows, "sum")
    assert out.shape == (2, 2)
    np.testing.assert_array_equal(out, [[2.0, 5.0], [6.0, 6.0]])
    # then a conservative aggregation over the members: one reward per solution
    np.testing.assert_array_equal(aggregate(out, "wco"), [2.0, 5.0])


def test_padded_member_rows_broadcast_lengths_over_members() -> None:
    padded, lengths = pad_ragged([np.ones((3, 2)), np.arange(12.0).reshape(3, 4)])
    assert padded.shape == (3, 2, 4)
    assert lengths.tolist() == [2, 4]
    out = aggregate_steps(padded, "mean", lengths=lengths)
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out[:, 1], [1.5, 5.5, 9.5])
    np.testing.assert_allclose(out[:, 0], 1.0)


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(arrays(np.float64, st.tuples(st.just(3), st.integers(1, 6)), elements=finite),
                  min_size=1, max_size=5),
)  # fmt: skip
def test_member_wise_shapes_and_values(data: list[np.ndarray]) -> None:
    for kind in ("sum", "mean", "min", "last"):
        out = aggregate_steps(data, kind)
        assert out.shape == (3, len(data))
        for i, sol in enumerate(data):
            for k in range(3):
                assert out[k, i] == pytest.approx(aggregate_steps(sol[k], kind).item(), rel=1e-12)


def test_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match=r"credit == 'max', must be one of: sum, mean, min"):
        aggregate_steps(R, "max")
    with pytest.raises(ConfigError, match="temperature == 0"):
        aggregate_steps(R, "softmin", temperature=0)
    with pytest.raises(ValueError, match="hold no steps"):
        aggregate_steps(np.zeros((2, 0)), "sum")
    with pytest.raises(ValueError, match=r"lengths must be in \[1, 3\]"):
        aggregate_steps(np.zeros((2, 3)), "sum", lengths=[0, 2])
    with pytest.raises(ValueError, match="finite"):
        aggregate_steps(np.array([1.0, np.nan]), "min")
    with pytest.raises(ValueError, match="solution 1 has shape"):
        aggregate_steps([np.zeros((2, 3)), np.zeros((3, 3))], "sum")
    with pytest.raises(ValueError, match="ragged list carries its own"):
        aggregate_steps([np.zeros(2)], "sum", lengths=[2])
