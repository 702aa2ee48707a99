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
code path (:func:`layout`).
"""

from __future__ import annotations

from bisect import bisect_left, insort
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


def layout(ids: list[list[int]], rows: list[list[int]], pad_id: int) -> Layout:
    """Place the sequences ``ids[i]`` for ``i`` in ``rows`` into padded arrays."""
    totals = [sum(len(ids[i]) for i in row) for row in rows]
    shape = (len(rows), max(totals))
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


__all__ = ["Layout", "block_mask", "group_rows", "layout", "pack_rows"]
