"""A long encode is stored chunk by chunk: an interrupted run keeps what it finished."""

from __future__ import annotations

import numpy as np
import pytest

from rewardhedge.config import EncoderConfig
from rewardhedge.encoders import build_encoder
from rewardhedge.encoders.cache import FIRST_CHUNK, CachedEncoder


class StopsAfter:
    """A real hashing encoder that raises (like a kill) on call ``calls + 1``."""

    def __init__(self, calls: int) -> None:
        self.inner = build_encoder(EncoderConfig(kind="hashing", dim=32))
        self.id, self.dim, self.calls = self.inner.id, self.inner.dim, calls
        self.seen: list[int] = []

    def encode(self, prompts, responses, *, progress=False):
        if len(self.seen) == self.calls:
            raise KeyboardInterrupt
        self.seen.append(len(prompts))
        return self.inner.encode(prompts, responses)


def texts(n: int) -> tuple[list[str], list[str]]:
    return [f"prompt {i % 7}" for i in range(n)], [f"response number {i}" for i in range(n)]


def test_interrupted_encode_keeps_finished_chunks_and_a_rerun_encodes_only_the_rest(tmp_path):
    prompts, responses = texts(3000)
    first = CachedEncoder(StopsAfter(2), tmp_path, shard_seconds=1e-9)  # chunks of MIN_CHUNK
    with pytest.raises(KeyboardInterrupt):
        first.encode(prompts, responses)
    done = sum(first.encoder.seen)
    assert first.encoder.seen[0] == FIRST_CHUNK and done < 3000
    again = CachedEncoder(StopsAfter(10_000), tmp_path, shard_seconds=0)
    out = again.encode(prompts, responses)
    assert again.hits == done and again.misses == 3000 - done
    assert again.encoder.seen == [3000 - done]  # shard_seconds=0: the rest in one call
    expected = build_encoder(EncoderConfig(kind="hashing", dim=32)).encode(prompts, responses)
    np.testing.assert_array_equal(out, expected)


def test_chunked_and_single_call_encodes_are_identical(tmp_path):
    prompts, responses = texts(1200)
    chunked = CachedEncoder(StopsAfter(10_000), tmp_path / "a", shard_seconds=1e-9)
    whole = CachedEncoder(StopsAfter(10_000), tmp_path / "b", shard_seconds=0)
    np.testing.assert_array_equal(
        chunked.encode(prompts, responses), whole.encode(prompts, responses)
    )
    assert len(chunked.encoder.seen) > 1 and whole.encoder.seen == [1200]
    assert chunked.cache.n_shards == len(chunked.encoder.seen)
