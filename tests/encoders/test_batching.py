"""Forward-pass batches: every item exactly once, bounded size, bounded padding."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardhedge.encoders.batching import length_batches


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=80),
    batch_size=st.integers(1, 40),
    frac=st.one_of(st.none(), st.floats(0.0, 2.0)),
)
def test_batches_partition_items_within_size_and_padding(lengths, batch_size, frac):
    lengths = np.array(lengths)
    batches = length_batches(lengths, batch_size, frac)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))  # each item once
    for b in batches:
        assert 1 <= len(b) <= batch_size
        if frac is not None and len(b) > 1:
            padded = lengths[b].max() * len(b)
            assert padded <= (1 + frac) * lengths[b].sum() + 1e-9
    assert np.all(np.diff(lengths[flat]) <= 0)  # longest first


def test_no_limit_is_plain_fixed_size_slicing():
    lengths = np.array([5, 50, 6, 40, 7])
    assert [b.tolist() for b in length_batches(lengths, 2, None)] == [[1, 3], [4, 2], [0]]


def test_uniform_lengths_fill_whole_batches():
    batches = length_batches(np.full(10, 64), 4, 0.1)
    assert [len(b) for b in batches] == [4, 4, 2]


def test_an_outlier_gets_its_own_batch():
    batches = length_batches(np.array([20, 256, 22, 21]), 32, 0.1)
    assert [b.tolist() for b in batches] == [[1], [2, 3, 0]]
