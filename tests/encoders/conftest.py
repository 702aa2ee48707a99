"""Shared helpers for the encoder tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from rewardhedge.config import EncoderConfig
from rewardhedge.encoders import HashingEncoder


class CountingEncoder:
    """Wraps an encoder and records every call (for cache tests)."""

    def __init__(self, inner: HashingEncoder) -> None:
        self.inner = inner
        self.id = inner.id
        self.dim = inner.dim
        self.calls: list[list[tuple[str, str]]] = []

    def encode(
        self, prompts: Sequence[str], responses: Sequence[str], *, progress: bool = False
    ) -> np.ndarray:
        self.calls.append(list(zip(prompts, responses, strict=True)))
        return self.inner.encode(prompts, responses)

    @property
    def n_items(self) -> int:
        return sum(len(c) for c in self.calls)


@pytest.fixture
def counting() -> CountingEncoder:
    return CountingEncoder(HashingEncoder(EncoderConfig(kind="hashing", dim=32)))
