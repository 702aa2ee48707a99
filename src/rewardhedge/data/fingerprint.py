"""A fingerprint of training pairs: recorded in a model's manifest and checked before a
checkpoint is resumed, so a model says which data made it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from rewardhedge.types import PreferencePair, RatedItem


def hash_pairs(pairs: Sequence[PreferencePair]) -> str:
    """SHA-256 over the pairs' texts and margins, and their ratings and soft labels where
    a pair has any, in order (recorded in the manifest). Pairs without ratings or soft
    labels hash as they did before those fields existed."""
    rows = []
    for p in pairs:
        row: list[object] = [p.prompt, p.chosen, p.rejected, p.margin]
        extra = [p.chosen_score, p.rejected_score, p.soft_label]
        if any(v is not None for v in extra):
            row += extra
        rows.append(row)
    return _hash_rows(rows)


def hash_rated_items(items: Sequence[RatedItem]) -> str:
    """SHA-256 over rated items' texts and scores, in order (for models fitted on them)."""
    return _hash_rows([item.prompt, item.response, item.score] for item in items)


def _hash_rows(rows: Iterable[list[object]]) -> str:
    """SHA-256 over each row's JSON, one line per row."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        h.update(b"\n")
    return "sha256:" + h.hexdigest()
