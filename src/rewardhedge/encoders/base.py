"""The encoder protocol and the input checks every encoder shares.

Numpy and the standard library only: importing this module never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """Turns (prompt, response) items into fixed-size feature vectors.

    Attributes:
        id: stable identity of everything that decides the vectors (backbone
            name, a short hash of its weights, ``max_length``, pooling; the
            dimension for the hashing encoder). Used as the embedding-cache key
            and stored in model manifests, so two encoders with equal ids must
            produce equal vectors.
        dim: length of each vector.
    """

    id: str
    dim: int

    def encode(
        self, prompts: Sequence[str], responses: Sequence[str], *, progress: bool = False
    ) -> np.ndarray:  # pragma: no cover - protocol
        """`(n, dim)` float32 array; row ``i`` encodes ``(prompts[i], responses[i])``."""
        ...


def check_texts(prompts: Sequence[str], responses: Sequence[str]) -> tuple[list[str], list[str]]:
    """Validate the two parallel text lists and return them as lists.

    Raises:
        TypeError: a bare string instead of a list, or a non-string item.
        ValueError: the lists differ in length.
    """
    for name, seq in (("prompts", prompts), ("responses", responses)):
        if isinstance(seq, str | bytes):
            raise TypeError(
                f"{name} is a single {type(seq).__name__}, must be a sequence of strings "
                f"(wrap it in a list: [{name[:-1]}])."
            )
    prompts = list(prompts)
    responses = list(responses)
    if len(prompts) != len(responses):
        raise ValueError(
            f"prompts and responses differ in length ({len(prompts)} vs {len(responses)}); "
            "pass one prompt per response."
        )
    for name, seq in (("prompts", prompts), ("responses", responses)):
        for i, text in enumerate(seq):
            if not isinstance(text, str):
                raise TypeError(f"{name}[{i}] is {type(text).__name__}, must be str.")
    return prompts, responses
