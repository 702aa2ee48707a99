"""Packing: several sequences end to end in one row, each attending only to itself.

On a CPU every forward pass first streams all of the model's weights through
memory (about 13 ms for MiniLM on the 2-core dev box, for 16 tokens or 500),
and only then does work in proportion to its tokens. A small call, such as a
reward server's micro-batch of four requests with two views each, either pads
short sequences up to the longest or runs many tiny passes; both waste most of
the time. Packed, the same call is one pass: sequences share rows, position
ids restart at each sequence, and a block-diagonal attention mask keeps them
apart, so every vector equals the one a separate pass gives (to float rounding).

A forward pass is described by its rows, each row a list of sequence indices;
a row of one sequence is ordinary padded batching, so both layouts share one
code path (:func:`layout`). :func:`packed_inputs` turns rows into the tensors a
fine-tuned reward network takes, and :func:`packing_gap` is the one probe that
tells whether a model gives packed sequences the outputs of separate rows.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def pack_rows(lengths: np.ndarray, capacity: int) -> list[list[int]]:
    """Best-fit decreasing: sequence indices per row, each row's total length <= ``capacity``.

    A sequence longer than ``capacity`` gets a row of its own.

    Example:
        >>> pack_rows(np.array([6, 3, 5, 2]), 8)
        [[0, 3], [2, 1]]
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    rows: list[list[int]] = []
    rooms: list[tuple[int, int]] = []  # (room left, row), sorted
    for i in order.tolist():
        n = int(lengths[i])
        k = bisect_left(rooms, (n, -1))
        if k < len(rooms):
            room, r = rooms.pop(k)
            rows[r].append(i)
            if room > n:
                insort(rooms, (room - n, r))
        else:
            rows.append([i])
            if capacity > n:
                insort(rooms, (capacity - n, len(rows) - 1))
    return rows


def balance_rows(lengths: np.ndarray, n_rows: int) -> list[list[int]]:
    """Longest first, each sequence joins the row holding the fewest tokens so far.

    Rows come out nearly equal in length, which is what a single forward pass
    wants: its width is its longest row, so every shorter row is padding.

    Example:
        >>> balance_rows(np.array([6, 3, 5, 2]), 2)
        [[0, 3], [2, 1]]
    """
    heap = [(0, r) for r in range(max(1, n_rows))]
    rows: list[list[int]] = [[] for _ in heap]
    for i in np.argsort(-np.asarray(lengths), kind="stable").tolist():
        load, r = heapq.heappop(heap)
        rows[r].append(i)
        heapq.heappush(heap, (load + int(lengths[i]), r))
    return [row for row in rows if row]


def padded_cells(lengths: np.ndarray, passes: list[list[list[int]]]) -> int:
    """Token slots the passes compute: rows times the longest row, summed over passes."""
    return sum(len(p) * max(sum(int(lengths[i]) for i in row) for row in p) for p in passes)


def plan_passes(lengths: np.ndarray, capacity: int, max_sequences: int) -> list[list[list[int]]]:
    """The forward passes, as rows of sequence indices, that compute the fewest token slots.

    Best-fit rows (:func:`pack_rows`) fill all rows but the last, which in a
    small call is mostly padding: 16 HH sequences in rows of 256 tokens waste
    about a tenth of the pass. So the same sequences are also spread over a
    few row counts with :func:`balance_rows`, and the plan with the fewest
    slots wins (rows may then run a little past ``capacity``).

    Example:
        >>> plan_passes(np.array([168, 146, 114, 39, 26]), 256, 8)  # best fit: 3 x 233 slots
        [[[0], [1, 4], [2, 3]]]
    """
    best = group_rows(pack_rows(lengths, capacity), max_sequences)
    best_cells = padded_cells(lengths, best)
    lowest = max(1, math.ceil(int(np.sum(lengths)) / max(capacity, int(np.max(lengths)))))
    n_packed = sum(len(p) for p in best)
    for n_rows in sorted({lowest, lowest + 1, lowest + 2, n_packed}):
        plan = group_rows(balance_rows(lengths, n_rows), max_sequences)
        cells = padded_cells(lengths, plan)
        if cells < best_cells:
            best, best_cells = plan, cells
    return best


Pass = tuple[np.ndarray, list[list[int]] | None]
"""One forward pass: its sequence indices, and its packed rows (indices into the pass)
or ``None`` for a padded batch."""


def scoring_passes(
    lengths: np.ndarray, batch_size: int, capacity: int | None, *, one_row: bool = False
) -> list[Pass]:
    """The passes that score sequences of ``lengths``: padded, longest first, ``batch_size``
    per pass when ``capacity`` is None (no packing); one packed row per pass with
    ``one_row`` (variable-length attention takes one row); else :func:`plan_passes` rows
    of ``capacity`` tokens."""
    order = np.argsort(-lengths, kind="stable")
    chunks = [order[b : b + batch_size] for b in range(0, len(order), batch_size)]
    if capacity is None:
        return [(chunk, None) for chunk in chunks]
    if one_row:
        return [(chunk, [list(range(len(chunk)))]) for chunk in chunks]
    passes: list[Pass] = []
    for rows in plan_passes(lengths, max(capacity, int(lengths.max())), batch_size):
        index = np.array([i for row in rows for i in row], dtype=np.int64)
        local = np.empty(len(lengths), dtype=np.int64)
        local[index] = np.arange(len(index))
        passes.append((index, [local[row].tolist() for row in rows]))
    return passes


def group_rows(rows: list[list[int]], max_sequences: int) -> list[list[list[int]]]:
    """Consecutive rows per forward pass, at most ``max_sequences`` sequences each
    (a row with more than that still gets a pass of its own)."""
    passes: list[list[list[int]]] = []
    count = 0
    for row in rows:
        if passes and count + len(row) <= max_sequences:
            passes[-1].append(row)
            count += len(row)
        else:
            passes.append([row])
            count = len(row)
    return passes


@dataclass(frozen=True)
class Layout:
    """Where each sequence of one forward pass sits in its ``(rows, width)`` arrays.

    Attributes:
        sequences: sequence indices (into the caller's list), in placement order.
        row, start: row and first column of each of ``sequences``.
        input_ids, position_ids: ``(rows, width)`` int64; pads hold ``pad_id`` and 0.
        segment: ``(rows, width)`` int64, the position in ``sequences`` of the
            sequence that owns each token, -1 for padding.
    """

    sequences: np.ndarray
    row: np.ndarray
    start: np.ndarray
    input_ids: np.ndarray
    position_ids: np.ndarray
    segment: np.ndarray

    @property
    def packed(self) -> bool:
        """Whether some row holds more than one sequence."""
        return len(self.sequences) > self.input_ids.shape[0]


def layout(
    ids: Sequence[Sequence[int]], rows: list[list[int]], pad_id: int, multiple_of: int = 1
) -> Layout:
    """Place the sequences ``ids[i]`` for ``i`` in ``rows`` into padded arrays (the width
    rounded up to ``multiple_of``, which bounds the shapes a compiled model sees)."""
    totals = [sum(len(ids[i]) for i in row) for row in rows]
    shape = (len(rows), -(-max(totals) // multiple_of) * multiple_of)
    input_ids = np.full(shape, pad_id, dtype=np.int64)
    position_ids = np.zeros(shape, dtype=np.int64)
    segment = np.full(shape, -1, dtype=np.int64)
    sequences, row_of, start_of = [], [], []
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            m = len(ids[i])
            input_ids[r, at : at + m] = ids[i]
            position_ids[r, at : at + m] = np.arange(m)
            segment[r, at : at + m] = len(sequences)
            sequences.append(i)
            row_of.append(r)
            start_of.append(at)
            at += m
    return Layout(
        sequences=np.array(sequences, dtype=np.int64),
        row=np.array(row_of, dtype=np.int64),
        start=np.array(start_of, dtype=np.int64),
        input_ids=input_ids,
        position_ids=position_ids,
        segment=segment,
    )


def pool_index(place: Layout, lengths: np.ndarray, last: bool) -> np.ndarray:
    """Flat index (``row * width + column``) of each sequence's last (or first) token.

    Entry ``i`` is for sequence ``i``, so ``sequences`` must be ``0..n-1`` in some order.

    Example:
        >>> place = layout([[5, 6, 7], [8], [9, 10]], [[0, 1], [2]], pad_id=0)
        >>> pool_index(place, np.array([3, 1, 2]), last=True).tolist()
        [2, 3, 5]
    """
    width = place.input_ids.shape[1]
    out = np.empty(len(place.sequences), dtype=np.int64)
    offset = np.asarray(lengths)[place.sequences] - 1 if last else 0
    out[place.sequences] = place.row * width + place.start + offset
    return out


def block_mask(segment: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``(rows, 1, width, width)`` attention mask: a token sees only its own sequence.

    Boolean (True = attend) for SDPA; with ``dtype``, additive (0 or the
    dtype's minimum) for eager attention. Pad positions see themselves, so no
    softmax row is empty (their outputs are never read).
    """
    import torch

    same = segment[:, :, None] == segment[:, None, :]
    visible = same & (segment[:, None, :] >= 0)
    visible |= torch.eye(segment.shape[1], dtype=torch.bool, device=segment.device)
    visible = visible[:, None]
    if dtype is None:
        return visible
    additive = torch.zeros(visible.shape, dtype=dtype, device=segment.device)
    return additive.masked_fill_(~visible, torch.finfo(dtype).min)


def position_block_mask(
    position_ids: torch.Tensor, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """:func:`block_mask` of a packed batch known by its position ids alone: a sequence
    starts wherever they restart at 0 (each padding token, at position 0, is a
    sequence of one)."""
    return block_mask((position_ids == 0).cumsum(dim=-1), dtype)


def packed_inputs(
    sequences: Sequence[Sequence[int]],
    rows: list[list[int]],
    pad_id: int,
    pooling: str,
    multiple_of: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask, position_ids, pool_at)`` of ``sequences`` laid end
    to end in ``rows`` (indices into ``sequences``): a packed batch as the reward
    networks of :mod:`rewardhedge.models.reward_transformer` take it, ``pool_at[i]``
    pointing at sequence ``i``'s pooled token (its last one with ``pooling == "last"``,
    else its first)."""
    import torch

    place = layout(sequences, rows, pad_id, multiple_of)
    lengths = np.fromiter((len(x) for x in sequences), dtype=np.int64, count=len(sequences))
    at = pool_index(place, lengths, last=pooling == "last")
    return (
        torch.from_numpy(place.input_ids),
        torch.from_numpy((place.segment >= 0).astype(np.int64)),
        torch.from_numpy(place.position_ids),
        torch.from_numpy(at),
    )


PROBE_LENGTHS = (9, 4, 13)
"""Content tokens of each probe sequence of :func:`packing_gap` (before any special tokens)."""


def packing_gap(run: Callable[[list[list[int]]], np.ndarray]) -> float:
    """Largest gap, relative to the outputs' scale, between a model's outputs for the
    probe sequences each in a row of its own and packed end to end in one row.

    Packing relies on the model honouring restarting ``position_ids`` (and, unless it
    is a causal decoder, a block-diagonal mask); a model with another position scheme
    (RoBERTa counts positions from its pad id) gives other numbers, which this small
    probe catches before any real pass is packed. It is the one probe of both the
    frozen encoders (:mod:`rewardhedge.encoders.transformer`) and the fine-tuned
    reward networks (:func:`rewardhedge.models.reward_transformer.packing_error`).

    Args:
        run: ``run(rows)`` -> the outputs of one forward pass over the caller's probe
            sequences (one of each length in :data:`PROBE_LENGTHS`) laid out in
            ``rows`` of sequence indices: first ``[[0], [1], [2]]`` (a row each,
            ordinary padded batching), then ``[[0, 1, 2]]`` (all in one row). Both
            outputs have the same shape and order; errors propagate to the caller.

    Example:
        >>> packing_gap(lambda rows: np.ones(3) + (len(rows) == 1))  # doubles when packed
        1.0
    """
    n = len(PROBE_LENGTHS)
    alone = np.asarray(run([[i] for i in range(n)]))
    packed = np.asarray(run([list(range(n))]))
    scale = max(float(np.abs(alone).max()), 1e-6)
    return float(np.abs(alone - packed).max()) / scale


__all__ = [
    "PROBE_LENGTHS",
    "Layout",
    "Pass",
    "balance_rows",
    "block_mask",
    "group_rows",
    "layout",
    "pack_rows",
    "packed_inputs",
    "packing_gap",
    "padded_cells",
    "plan_passes",
    "pool_index",
    "position_block_mask",
    "scoring_passes",
]
