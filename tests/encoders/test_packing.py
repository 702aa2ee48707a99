"""Packing sequences into rows: every sequence once, in place, seeing only itself."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardhedge.encoders.packing import (
    balance_rows,
    block_mask,
    group_rows,
    layout,
    pack_rows,
    padded_cells,
    plan_passes,
)

lengths_st = st.lists(st.integers(1, 300), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(lengths=lengths_st, capacity=st.integers(1, 512))
def test_rows_partition_sequences_within_capacity(lengths, capacity):
    lengths = np.array(lengths)
    rows = pack_rows(lengths, capacity)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    totals = [int(lengths[row].sum()) for row in rows]
    for row, total in zip(rows, totals, strict=True):
        assert total <= capacity or len(row) == 1  # only a too-long sequence overflows alone
    # Best fit opens a row only for a sequence no earlier row had room for, so
    # no two rows could have been merged.
    for a in range(len(rows)):
        for b in range(a + 1, len(rows)):
            assert totals[a] + totals[b] > capacity


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(1, 9), min_size=1, max_size=30), most=st.integers(1, 12))
def test_passes_keep_row_order_and_sequence_bound(sizes, most):
    rows, start = [], 0
    for k in sizes:
        rows.append(list(range(start, start + k)))
        start += k
    passes = group_rows(rows, most)
    assert [row for p in passes for row in p] == rows
    for p in passes:
        assert sum(len(row) for row in p) <= most or len(p) == 1


@settings(max_examples=200, deadline=None)
@given(lengths=lengths_st, n_rows=st.integers(1, 12))
def test_balanced_rows_differ_by_at_most_one_sequence(lengths, n_rows):
    lengths = np.array(lengths)
    rows = balance_rows(lengths, n_rows)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert len(rows) == min(n_rows, len(lengths))
    totals = [int(lengths[row].sum()) for row in rows]
    # Longest first onto the lightest row: the spread never exceeds one sequence.
    assert max(totals) - min(totals) <= lengths.max()


@settings(max_examples=200, deadline=None)
@given(lengths=lengths_st, capacity=st.integers(1, 512), most=st.integers(1, 64))
def test_plan_computes_no_more_slots_than_best_fit(lengths, capacity, most):
    lengths = np.array(lengths)
    plan = plan_passes(lengths, capacity, most)
    assert sorted(i for p in plan for row in p for i in row) == list(range(len(lengths)))
    for p in plan:
        assert sum(len(row) for row in p) <= most or len(p) == 1
    best_fit = group_rows(pack_rows(lengths, capacity), most)
    assert padded_cells(lengths, plan) <= padded_cells(lengths, best_fit)
    assert padded_cells(lengths, plan) >= int(lengths.sum())


def test_small_call_balances_rows_instead_of_leaving_the_last_one_short():
    lengths = np.array([168, 146, 114, 39, 26])
    # Best fit fills the first row (168+39+26) and leaves the others short:
    # 3 rows of 233 slots. Balanced: 168, 146+26, 114+39 -> 3 rows of 172.
    assert pack_rows(lengths, 256) == [[0, 3, 4], [1], [2]]
    assert padded_cells(lengths, [pack_rows(lengths, 256)]) == 699
    assert plan_passes(lengths, 256, 8) == [[[0], [1, 4], [2, 3]]]
    assert padded_cells(lengths, plan_passes(lengths, 256, 8)) == 516


def test_layout_places_each_sequence_with_restarting_positions():
    ids = [[5, 6, 7], [8], [9, 10, 11, 12], [13, 14]]
    place = layout(ids, [[2, 1], [0, 3]], pad_id=0)
    assert place.packed
    assert place.input_ids.tolist() == [[9, 10, 11, 12, 8], [5, 6, 7, 13, 14]]
    assert place.position_ids.tolist() == [[0, 1, 2, 3, 0], [0, 1, 2, 0, 1]]
    assert place.sequences.tolist() == [2, 1, 0, 3]
    for k, i in enumerate(place.sequences):
        r, s = place.row[k], place.start[k]
        assert place.input_ids[r, s : s + len(ids[i])].tolist() == ids[i]
        assert (place.segment[r, s : s + len(ids[i])] == k).all()

    padded = layout(ids, [[2], [0]], pad_id=0)
    assert not padded.packed
    assert padded.input_ids.tolist() == [[9, 10, 11, 12], [5, 6, 7, 0]]
    assert padded.segment.tolist() == [[0, 0, 0, 0], [1, 1, 1, -1]]


def test_block_mask_keeps_sequences_apart():
    segment = torch.tensor([[0, 0, 1, 1, 1, -1]])
    mask = block_mask(segment)[0, 0]
    assert mask.shape == (6, 6) and mask.dtype == torch.bool
    assert mask[:2, :2].all() and mask[2:5, 2:5].all()
    assert not mask[:2, 2:].any() and not mask[2:5, :2].any()
    assert not mask[:5, 5].any()  # nobody attends to padding
    assert mask[5].tolist() == [False] * 5 + [True]  # padding sees itself only

    additive = block_mask(segment, torch.float32)[0, 0]
    assert torch.equal(additive == 0, mask)
    assert (additive[~mask] == torch.finfo(torch.float32).min).all()
