"""A fingerprint of training pairs: recorded in a model's manifest and checked before a
checkpoint is resumed, so a model says which data made it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from rewardhedge.types import PreferencePair


def hash_pairs(pairs: Sequence[PreferencePair]) -> str:
    """SHA-256 over the pairs' texts and margins, in order (recorded in the manifest)."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(
            json.dumps([p.prompt, p.chosen, p.rejected, p.margin], ensure_ascii=False).encode(
                "utf-8", "surrogatepass"
            )
        )
        h.update(b"\n")
    return "sha256:" + h.hexdigest()
