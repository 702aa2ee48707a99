"""HashingEncoder: deterministic, cheap, and able to tell good words from bad."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardhedge.config import EncoderConfig
from rewardhedge.encoders import Encoder, HashingEncoder, build_encoder
from rewardhedge.errors import ConfigError

GOOD = ["correct", "accurate", "helpful", "precise", "clear"]
BAD = ["wrong", "rude", "vague", "sloppy", "false"]


def make(dim: int = 256) -> HashingEncoder:
    return HashingEncoder(EncoderConfig(kind="hashing", dim=dim))


def test_protocol_id_and_build() -> None:
    enc = build_encoder(EncoderConfig(kind="hashing", dim=64))
    assert isinstance(enc, HashingEncoder) and isinstance(enc, Encoder)
    assert enc.id == "hashing@v1:dim64" and enc.dim == 64
    assert make(32).id != make(64).id


def test_shape_dtype_and_empty() -> None:
    enc = make(40)
    x = enc.encode(["p1", "p2", ""], ["the answer is correct", "", ""])
    assert x.shape == (3, 40) and x.dtype == np.float32
    assert np.all(x[2] == 0)  # no words at all
    assert enc.encode([], []).shape == (0, 40)


def test_blocks_are_unit_norm_and_prompt_only_moves_its_block() -> None:
    enc = make(64)
    a, b = enc.encode(["what is it?", "a different question"], ["it is clear", "it is clear"])
    r = enc.response_dim
    assert r == 48 and enc.prompt_dim == 16
    np.testing.assert_array_equal(a[:r], b[:r])
    assert not np.array_equal(a[r:], b[r:])
    assert np.linalg.norm(a[:r]) == pytest.approx(1.0, abs=1e-6)
    assert np.linalg.norm(a[r:]) == pytest.approx(1.0, abs=1e-6)


def test_deterministic_across_instances_and_processes() -> None:
    prompts = ["Who wrote Hamlet?", "2+2?"]
    responses = ["Shakespeare wrote it, the answer is correct", "Five. The answer is wrong"]
    a = make().encode(prompts, responses)
    b = make().encode(prompts, responses)
    assert a.tobytes() == b.tobytes()
    code = (
        "import sys;from rewardhedge.config import EncoderConfig;"
        "from rewardhedge.encoders import HashingEncoder;"
        "x=HashingEncoder(EncoderConfig(kind='hashing',dim=256)).encode("
        f"{prompts!r},{responses!r});sys.stdout.write(x.tobytes().hex())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert bytes.fromhex(out) == a.tobytes()


def test_good_and_bad_words_are_linearly_separable() -> None:
    rng = np.random.default_rng(0)
    enc = make(256)
    prompts, responses, y = [], [], []
    for i in range(60):
        topic = f"question {i} about item {int(rng.integers(1000))}"
        good = GOOD[int(rng.integers(len(GOOD)))]
        bad = BAD[int(rng.integers(len(BAD)))]
        for word, label in ((good, 1.0), (bad, -1.0)):
            prompts.append(topic)
            responses.append(f"the answer is {word} for {topic}")
            y.append(label)
    x = enc.encode(prompts, responses).astype(np.float64)
    x = np.hstack([x, np.ones((len(x), 1))])
    w, *_ = np.linalg.lstsq(x, np.array(y), rcond=None)
    assert np.all(np.sign(x @ w) == np.array(y))
    # The plain pair from the brief, too.
    pair = enc.encode(["q", "q"], ["the answer is correct", "the answer is wrong"])
    assert not np.array_equal(pair[0], pair[1])


def test_wrong_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="hashing"):
        HashingEncoder(EncoderConfig(kind="minilm"))


def test_input_checks() -> None:
    enc = make(8)
    with pytest.raises(ValueError, match="differ in length"):
        enc.encode(["a", "b"], ["c"])
    with pytest.raises(TypeError, match="single str"):
        enc.encode("abc", "def")
    with pytest.raises(TypeError, match=r"responses\[1\]"):
        enc.encode(["a", "b"], ["c", None])  # type: ignore[list-item]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(), st.text()), max_size=5))
def test_any_text_encodes(items: list[tuple[str, str]]) -> None:
    enc = make(24)
    x = enc.encode([p for p, _ in items], [r for _, r in items])
    assert x.shape == (len(items), 24) and np.all(np.isfinite(x))
    assert np.all(np.linalg.norm(x[:, : enc.response_dim], axis=1) <= 1 + 1e-5)


def test_odd_text() -> None:
    x = make(16).encode(
        ["\ud800 lone surrogate", "nul\x00byte"], ["ÉCOLE école", "日本語 テキスト"]
    )
    assert np.all(np.isfinite(x))
    a, b = make(16).encode(["", ""], ["ÉCOLE", "école"])
    np.testing.assert_array_equal(a, b)  # lowercased
