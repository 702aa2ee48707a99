"""Request limits checked before any scoring: items per request, text length, and
texts no tokenizer can take (lone surrogates). The body's size is checked earlier,
while it streams in (:mod:`rewardhedge.serve.guard`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException

from rewardhedge.config import ServeConfig

_SURROGATE = re.compile(r"[\ud800-\udfff]")
"""A surrogate code point. JSON's ``\\ud83d\\ude00`` escapes are joined into one
character when parsed, so any left in a ``str`` is a lone one: it has no UTF-8
encoding, and the tokenizer (a Rust string) raises on it."""


def check_count(n: int, what: str, config: ServeConfig) -> None:
    """413 for more than ``max_items_per_request`` entries, 422 for none."""
    if n == 0:
        raise HTTPException(422, f"{what} is empty; send at least one.")
    if n > config.max_items_per_request:
        raise HTTPException(
            413,
            f"{what} has {n} entries; the limit is max_items_per_request="
            f"{config.max_items_per_request} (server flag --max-items). Split the request.",
        )


def check_texts(fields: Sequence[tuple[str, Sequence[Any]]], config: ServeConfig) -> None:
    """422 naming the first text longer than ``max_text_chars`` or holding a lone
    surrogate, e.g. ``items[3].response``, so one bad text fails its own request at
    the door instead of the micro-batch it would have joined."""
    limit = config.max_text_chars
    for name, values in fields:
        for i, text in enumerate(values):
            if len(text) > limit:
                where = name.replace("[]", f"[{i}]")
                raise HTTPException(
                    422,
                    f"{where} has {len(text)} characters; the limit is max_text_chars={limit} "
                    "(server flag --max-chars).",
                )
            bad = _SURROGATE.search(text)
            if bad is not None:
                where = name.replace("[]", f"[{i}]")
                code = f"\\u{ord(bad.group()):04x}"
                raise HTTPException(
                    422,
                    f"{where}: contains a lone surrogate ({code}) at character {bad.start()}; "
                    "send valid Unicode text (a surrogate is only valid as half of a pair).",
                )
