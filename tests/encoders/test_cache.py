"""EmbeddingCache / CachedEncoder: hits, misses, corruption, concurrency, compaction."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from rewardhedge.config import EncoderConfig
from rewardhedge.encoders import (
    CachedEncoder,
    EmbeddingCache,
    Encoder,
    HashingEncoder,
    default_cache_dir,
    item_key,
)
from rewardhedge.encoders.cache import sanitise_id

PROMPTS = [f"prompt {i}" for i in range(10)]
RESPONSES = [f"the answer is {'correct' if i % 2 else 'wrong'} number {i}" for i in range(10)]


def shards(cache: EmbeddingCache) -> list[Path]:
    return sorted(cache.dir.glob("shard-*.safetensors"))


def test_protocol_and_identity(counting, tmp_path: Path) -> None:
    cached = CachedEncoder(counting, tmp_path)
    assert isinstance(cached, Encoder)
    assert (cached.id, cached.dim) == (counting.id, counting.dim)
    assert cached.cache.dir == tmp_path / sanitise_id(counting.id)


def test_hits_misses_and_zero_inner_calls_on_repeat(counting, tmp_path: Path) -> None:
    cached = CachedEncoder(counting, tmp_path)
    first = cached.encode(PROMPTS, RESPONSES)
    assert (cached.hits, cached.misses, len(counting.calls)) == (0, 10, 1)
    np.testing.assert_array_equal(first, counting.inner.encode(PROMPTS, RESPONSES))
    second = cached.encode(PROMPTS, RESPONSES)
    assert len(counting.calls) == 1  # nothing re-encoded
    assert (cached.hits, cached.misses) == (10, 10)
    assert second.dtype == np.float32 and second.tobytes() == first.tobytes()
    # A new wrapper (as a new process would) reads the shard back bit-identically.
    fresh = clone(counting)
    again = CachedEncoder(fresh, tmp_path).encode(PROMPTS, RESPONSES)
    assert fresh.calls == [] and again.tobytes() == first.tobytes()


def clone(counting):
    """A fresh counting encoder around the same inner encoder."""
    return type(counting)(counting.inner)


def test_only_misses_are_encoded_in_one_call_in_order(counting, tmp_path: Path) -> None:
    cached = CachedEncoder(counting, tmp_path)
    cached.encode(PROMPTS[:5], RESPONSES[:5])
    counting.calls.clear()
    # Mixed hits and misses, with a repeated miss.
    p = [PROMPTS[7], PROMPTS[0], PROMPTS[9], PROMPTS[7], PROMPTS[3]]
    r = [RESPONSES[7], RESPONSES[0], RESPONSES[9], RESPONSES[7], RESPONSES[3]]
    out = cached.encode(p, r)
    assert counting.calls == [[(PROMPTS[7], RESPONSES[7]), (PROMPTS[9], RESPONSES[9])]]
    np.testing.assert_array_equal(out, counting.inner.encode(p, r))
    assert cached.hits == 2 and cached.misses == 5 + 3
    assert cached.encode([], []).shape == (0, counting.dim)


def test_empty_cache_dir_is_created_lazily(counting, tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet"
    cached = CachedEncoder(counting, root)
    assert not root.exists() and len(cached.cache) == 0
    cached.encode(["a"], ["b"])
    assert len(shards(cached.cache)) == 1


def test_truncated_and_garbage_shards_are_skipped_with_a_warning(counting, tmp_path: Path) -> None:
    cached = CachedEncoder(counting, tmp_path)
    cached.encode(PROMPTS[:5], RESPONSES[:5])
    cached.encode(PROMPTS[5:], RESPONSES[5:])
    late = item_key(PROMPTS[5], RESPONSES[5])
    second, good = sorted(
        shards(cached.cache), key=lambda p: late not in load_file(str(p))["keys"].tobytes()
    )  # second holds PROMPTS[5:]
    # Cut one real shard in half; add a file of garbage.
    data = second.read_bytes()
    second.write_bytes(data[: len(data) // 2])
    garbage = cached.cache.dir / "shard-garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a safetensors file")
    fresh = clone(counting)
    with pytest.warns(RuntimeWarning) as record:
        again = CachedEncoder(fresh, tmp_path)
    messages = " ".join(str(w.message) for w in record)
    assert second.name in messages and garbage.name in messages
    out = again.encode(PROMPTS, RESPONSES)
    np.testing.assert_array_equal(out, counting.inner.encode(PROMPTS, RESPONSES))
    lost = list(zip(PROMPTS[5:], RESPONSES[5:], strict=True))
    assert fresh.calls == [lost]  # exactly the lost rows, in one call
    assert again.hits == 5 and again.misses == 5
    # The bad files are warned about once per cache object, not on every refresh.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again.encode(PROMPTS, RESPONSES)
    assert good.exists()


def test_flipped_byte_fails_the_checksum(counting, tmp_path: Path) -> None:
    cached = CachedEncoder(counting, tmp_path)
    cached.encode(PROMPTS, RESPONSES)
    (shard,) = shards(cached.cache)
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF  # inside the emb tensor; the file still parses
    shard.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="checksum"):
        cache = EmbeddingCache(tmp_path, counting.id, counting.dim)
    assert len(cache) == 0


def test_dim_mismatch_and_foreign_shards_are_skipped(tmp_path: Path) -> None:
    keys = [item_key("p", "r"), item_key("p", "s")]
    EmbeddingCache(tmp_path, "enc-a", 8).put(keys, np.ones((2, 8), np.float32))
    with pytest.warns(RuntimeWarning, match="dim 8"):
        wrong_dim = EmbeddingCache(tmp_path, "enc-a", 16)
    assert len(wrong_dim) == 0
    # A shard copied into another encoder's folder is refused by its encoder_id.
    a = EmbeddingCache(tmp_path, "enc-a", 8)
    b = EmbeddingCache(tmp_path, "enc-b", 8)
    assert a.dir != b.dir and len(b) == 0
    b.dir.mkdir(parents=True)
    for shard in shards(a):
        (b.dir / shard.name).write_bytes(shard.read_bytes())
    with pytest.warns(RuntimeWarning, match="enc-a"):
        b.refresh()
    assert len(b) == 0


def test_different_encoder_ids_never_share(tmp_path: Path) -> None:
    small = CachedEncoder(HashingEncoder(EncoderConfig(kind="hashing", dim=16)), tmp_path)
    big = CachedEncoder(HashingEncoder(EncoderConfig(kind="hashing", dim=32)), tmp_path)
    small.encode(PROMPTS, RESPONSES)
    assert big.encode(PROMPTS, RESPONSES).shape == (10, 32)
    assert big.hits == 0 and big.misses == 10
    # Ids that sanitise to the same characters still get their own folders.
    assert sanitise_id("model:a/b") != sanitise_id("model:a_b")
    assert "/" not in sanitise_id("../../etc/passwd") and ".." not in sanitise_id("..")


def test_temp_files_are_ignored(counting, tmp_path: Path) -> None:
    cached = CachedEncoder(counting, tmp_path)
    cached.encode(PROMPTS, RESPONSES)
    (cached.cache.dir / ".tmp-deadbeef.part").write_bytes(b"half a shard")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(EmbeddingCache(tmp_path, counting.id, counting.dim)) == 10


def test_compact_keeps_every_entry(counting, tmp_path: Path) -> None:
    cached = CachedEncoder(counting, tmp_path)
    for i in range(0, 10, 3):
        cached.encode(PROMPTS[i : i + 3], RESPONSES[i : i + 3])
    before = cached.encode(PROMPTS, RESPONSES)
    assert len(shards(cached.cache)) == 4
    merged = cached.cache.compact()
    assert shards(cached.cache) == [merged]
    fresh = clone(counting)
    after = CachedEncoder(fresh, tmp_path).encode(PROMPTS, RESPONSES)
    assert fresh.calls == [] and after.tobytes() == before.tobytes()
    assert cached.cache.compact() == merged  # one shard: nothing to do
    assert EmbeddingCache(tmp_path, "nobody", 4).compact() is None


def test_put_validates(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "e", 4)
    with pytest.raises(TypeError, match="float32"):
        cache.put([item_key("a", "b")], np.zeros((1, 4)))
    with pytest.raises(ValueError, match="shape"):
        cache.put([item_key("a", "b")], np.zeros((1, 3), np.float32))
    assert cache.put([], np.zeros((0, 4), np.float32)) is None
    path = cache.put([item_key("a", "b")] * 2, np.arange(8, dtype=np.float32).reshape(2, 4))
    assert path is not None and len(cache) == 1  # duplicate key stored once, first wins
    np.testing.assert_array_equal(cache.get(item_key("a", "b")), [0, 1, 2, 3])
    assert cache.put([item_key("a", "b")], np.ones((1, 4), np.float32)) is None


def test_keys_handle_odd_text_and_nul() -> None:
    assert len(item_key("\ud800", "\udfff")) == 16
    assert item_key("a\x00b", "c") != item_key("a", "b\x00c")
    assert item_key("a", "b") == item_key("a", "b") != item_key("b", "a")


WRITER = textwrap.dedent(
    """
    import sys
    import time
    from pathlib import Path

    from rewardhedge.config import EncoderConfig
    from rewardhedge.encoders import CachedEncoder, HashingEncoder

    root, start = sys.argv[1], int(sys.argv[2])
    inner = HashingEncoder(EncoderConfig(kind="hashing", dim=32))
    enc = CachedEncoder(inner, root, max_shards=4)  # compacts often, racing the other writer
    # Start together: announce readiness, then wait for the other writer.
    Path(root, f"ready-{start}").touch()
    deadline = time.time() + 60
    while len(list(Path(root).glob("ready-*"))) < 2 and time.time() < deadline:
        time.sleep(0.001)
    for lo in range(start, start + 120, 3):
        idx = range(lo, min(lo + 6, start + 120))  # overlaps the previous write too
        enc.encode([f"p{i}" for i in idx], [f"r{i} the answer" for i in idx])
    """
)


def test_two_processes_writing_concurrently(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for start in (0, 60)  # overlapping ranges: 0..119 and 60..179
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "Warning" not in err, err
    enc = HashingEncoder(EncoderConfig(kind="hashing", dim=32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache = EmbeddingCache(tmp_path, enc.id, enc.dim)
    prompts = [f"p{i}" for i in range(180)]
    responses = [f"r{i} the answer" for i in range(180)]
    found, rows = cache.lookup([item_key(p, r) for p, r in zip(prompts, responses, strict=True)])
    assert found.all() and len(cache) == 180
    np.testing.assert_array_equal(rows, enc.encode(prompts, responses))
    assert not list(cache.dir.glob(".tmp-*"))


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REWARDHEDGE_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("REWARDHEDGE_CACHE")
    assert default_cache_dir() == tmp_path / "xdg" / "rewardhedge"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "rewardhedge"


def test_default_root_used_when_none(
    counting, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REWARDHEDGE_CACHE", str(tmp_path))
    cached = CachedEncoder(counting)
    assert cached.cache.root == tmp_path


def test_many_small_writes_are_compacted(counting, tmp_path: Path) -> None:
    cached = CachedEncoder(counting, tmp_path, max_shards=3)
    for i in range(10):
        cached.encode(PROMPTS[i : i + 1], RESPONSES[i : i + 1])
        assert len(shards(cached.cache)) <= 3
    assert cached.cache.n_shards == len(shards(cached.cache))
    fresh = clone(counting)
    out = CachedEncoder(fresh, tmp_path).encode(PROMPTS, RESPONSES)
    assert fresh.calls == []
    np.testing.assert_array_equal(out, counting.inner.encode(PROMPTS, RESPONSES))
