"""Forming forward-pass batches from items of different token lengths.

Every item in a batch is padded to the batch's longest, and on a CPU a pad
token costs as much as a real one. Sorting by length and slicing fixed-size
batches wastes little on a large call, but a small call of mixed lengths
(a reward server's micro-batch of four requests) can spend most of its time
on padding. So a batch is also closed when adding the next item would make
its pad tokens exceed ``max_pad_fraction`` of its real tokens.
"""

from __future__ import annotations

import numpy as np

CPU_MAX_PAD_FRACTION = 0.1
"""Default on CPU, where compute is proportional to padded tokens. On a GPU the
default is no limit: there a full batch is worth more than the padding it costs."""


def length_batches(
    lengths: np.ndarray, batch_size: int, max_pad_fraction: float | None
) -> list[np.ndarray]:
    """Index arrays, longest items first, each at most ``batch_size`` long.

    With ``max_pad_fraction`` set, a batch's pad tokens stay within that
    fraction of its real tokens (a batch always takes at least one item).

    Example:
        >>> [b.tolist() for b in length_batches(np.array([10, 100, 90, 12]), 4, 0.25)]
        [[1, 2], [3, 0]]
    """
    order = np.argsort(-lengths, kind="stable")
    if max_pad_fraction is None:
        return [order[lo : lo + batch_size] for lo in range(0, len(order), batch_size)]
    budget = 1.0 + max_pad_fraction
    batches: list[np.ndarray] = []
    start = 0
    tokens = 0
    for pos, i in enumerate(order):
        size = pos - start
        width = int(lengths[order[start]]) if size else int(lengths[i])
        if size and (size >= batch_size or width * (size + 1) > budget * (tokens + lengths[i])):
            batches.append(order[start:pos])
            start, tokens = pos, 0
        tokens += int(lengths[i])
    if start < len(order):
        batches.append(order[start:])
    return batches
