"""A tiny deterministic bag-of-words encoder, for tests and smoke runs.

No torch, no model files. Features:

* the first ``dim - dim // 4`` entries are the response block: every lowercase
  word token (``\\w+``) of the response is hashed with BLAKE2b into a bucket
  and a sign, and the signed counts are summed;
* the last ``dim // 4`` entries are the prompt block, built the same way from
  the prompt's words with a differently personalised hash;
* each block is L2-normalised on its own (an empty block stays zero), so the
  response carries the same weight whatever the prompt's length.

BLAKE2b (not Python's salted ``hash()``) makes the vectors identical across
processes and machines. The scheme is versioned in :data:`HASHING_VERSION`,
which is part of the encoder id; change it if the features ever change.

With ``config.views`` the encoder concatenates hash views (each ``dim`` wide,
see :func:`hash_view`): ``hash`` (the features above), ``hash_bigram`` (word
bigrams of the response) and ``hash_char`` (character 4-grams of the
response), each with the same prompt block. Multi-view transformer encoders
use the same function for their hash views.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from rewardhedge.config import EncoderConfig, EncoderKind
from rewardhedge.encoders.base import check_texts
from rewardhedge.encoders.views import view_slices
from rewardhedge.errors import ConfigError

HASHING_VERSION = "v1"
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1 << 16)
def _hash_word(word: str, person: bytes) -> int:
    digest = hashlib.blake2b(
        word.encode("utf-8", "surrogatepass"), digest_size=8, person=person
    ).digest()
    return int.from_bytes(digest, "little")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _bigrams(text: str) -> list[str]:
    words = _words(text)
    return [f"{a} {b}" for a, b in itertools.pairwise(words)]


def _char4(text: str) -> list[str]:
    flat = " " + " ".join(_words(text)) + " "
    return [flat[i : i + 4] for i in range(len(flat) - 3)]


_VIEW_TOKENS = {
    "hash": (_words, b"rh-response"),
    "hash_bigram": (_bigrams, b"rh-bigram"),
    "hash_char": (_char4, b"rh-char4"),
}


def _block(text: str, size: int, person: bytes, tokens=_words) -> np.ndarray:
    out = np.zeros(size, dtype=np.float64)
    if size == 0:
        return out
    for word in tokens(text):
        h = _hash_word(word, person)
        out[(h >> 1) % size] += 1.0 if h & 1 else -1.0
    norm = float(np.sqrt(np.dot(out, out)))
    if norm > 0.0:
        out /= norm
    return out


def hash_view(view: str, prompts: list[str], responses: list[str], dim: int) -> np.ndarray:
    """`(n, dim)` float32 features of one hash view (``hash``, ``hash_bigram``, ``hash_char``).

    The first ``dim - dim // 4`` entries hash the response's tokens of that
    view, the last ``dim // 4`` the prompt's words; each block L2-normalised.
    """
    tokens, person = _VIEW_TOKENS[view]
    p_dim = dim // 4
    r_dim = dim - p_dim
    out = np.zeros((len(prompts), dim), dtype=np.float32)
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        out[i, :r_dim] = _block(response, r_dim, person, tokens)
        out[i, r_dim:] = _block(prompt, p_dim, b"rh-prompt")
    return out


class HashingEncoder:
    """Signed feature hashing of response words (and, in a smaller block, prompt words).

    Example:
        >>> enc = HashingEncoder(EncoderConfig(kind="hashing", dim=16))
        >>> enc.encode(["q"], ["the answer is correct"]).shape
        (1, 16)
    """

    def __init__(self, config: EncoderConfig | None = None) -> None:
        config = config if config is not None else EncoderConfig(kind=EncoderKind.HASHING)
        if config.kind is not EncoderKind.HASHING:
            raise ConfigError(
                f"encoder.kind == {config.kind.value!r}, HashingEncoder needs 'hashing'; "
                "use build_encoder(config) to pick the right class."
            )
        self.config = config
        self.view_names: tuple[str, ...] = config.views
        self.dim: int = config.dim * max(len(self.view_names), 1)
        self.prompt_dim: int = config.dim // 4
        self.response_dim: int = config.dim - self.prompt_dim
        self.view_slices: dict[str, tuple[int, int]] = view_slices(config, config.dim)
        self.id: str = f"hashing@{HASHING_VERSION}:dim{config.dim}" + (
            f":views={'+'.join(self.view_names)}" if self.view_names else ""
        )

    def encode(
        self, prompts: Sequence[str], responses: Sequence[str], *, progress: bool = False
    ) -> np.ndarray:
        """`(n, dim)` float32 features; ``progress`` is accepted and ignored (it is fast)."""
        prompts, responses = check_texts(prompts, responses)
        if self.view_names:
            dim = self.config.dim
            return np.hstack([hash_view(v, prompts, responses, dim) for v in self.view_names])
        out = np.zeros((len(prompts), self.dim), dtype=np.float32)
        for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
            out[i, : self.response_dim] = _block(response, self.response_dim, b"rh-response")
            out[i, self.response_dim :] = _block(prompt, self.prompt_dim, b"rh-prompt")
        return out

    def __repr__(self) -> str:
        return f"HashingEncoder(id={self.id!r})"
