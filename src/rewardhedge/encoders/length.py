"""Length features of a response, for the length head (``head.length_head``).

Read from the text itself, not from an encoder, so that they mean the same for every
backbone: log(1 + characters) and log(1 + whitespace-separated words).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LENGTH_FEATURES = ("log_chars", "log_words")
"""The columns :func:`length_features` returns, in order."""


def length_features(responses: Sequence[str]) -> np.ndarray:
    """`(n, 2)` float32: log(1 + characters) and log(1 + words) of each response.

    Example:
        >>> np.round(length_features(["", "two words"]).astype(float), 3).tolist()
        [[0.0, 0.0], [2.303, 1.099]]
    """
    out = np.empty((len(responses), len(LENGTH_FEATURES)), dtype=np.float32)
    for i, text in enumerate(responses):
        out[i] = (np.log1p(len(text)), np.log1p(len(text.split())))
    return out
