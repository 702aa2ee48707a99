"""Length controls for best-of-n picks: known answers and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardhedge.evaluate import length_baselines, length_controls


def test_known_answers():
    lengths = [np.array([100.0, 105.0, 200.0]), np.array([10.0, 20.0, 30.0])]
    gold = [np.array([0.0, 1.0, 5.0]), np.array([1.0, 2.0, 3.0])]
    out = length_controls([1, 2], lengths, gold)
    assert out["gold"] == pytest.approx((1.0 + 3.0) / 2)
    assert out["longest_fraction"] == pytest.approx(0.5)
    # Pool 0: 105 chars is within 10% of 100 chars → 1 − 0; pool 1 has no similar length.
    assert out["n_matched"] == 1 and out["matched_diff"] == pytest.approx(1.0)
    assert length_baselines(lengths, gold) == pytest.approx(
        {"longest": 4.0, "shortest": 0.5, "random": (2.0 + 2.0) / 2}
    )


def test_no_similar_length_anywhere_gives_none():
    out = length_controls([0], [np.array([10.0, 50.0])], [np.array([1.0, 0.0])])
    assert out["matched_diff"] is None and out["n_matched"] == 0


def test_seeds_are_averaged_per_pool_first():
    lengths = [np.array([100.0, 101.0, 102.0])]
    gold = [np.array([0.0, 3.0, 6.0])]
    out = length_controls(np.array([[0], [2]]), lengths, gold)
    # seed 0 picks 0: 0 − 4.5; seed 1 picks 2: 6 − 1.5 → mean 0.0; longest picked once in two.
    assert out["matched_diff"] == pytest.approx(0.0)
    assert out["longest_fraction"] == pytest.approx(0.5)
    assert out["gold"] == pytest.approx(3.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(1, 500), min_size=2, max_size=8, unique=True), min_size=1,
                max_size=10))  # fmt: skip
def test_picking_the_longest_when_gold_grows_with_length_is_the_longest_baseline(pools):
    lengths = [np.array(p, dtype=float) for p in pools]
    gold = [np.log(n) for n in lengths]
    picks = [int(np.argmax(n)) for n in lengths]
    out = length_controls(picks, lengths, gold)
    assert out["longest_fraction"] == 1.0
    assert out["gold"] == pytest.approx(length_baselines(lengths, gold)["longest"])
    if out["matched_diff"] is not None:
        assert out["matched_diff"] > 0  # longer than every similar-length candidate
