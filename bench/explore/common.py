"""Shared helpers for the HH foundation exploration (scratch; see README.md here).

- ``load()``: the 2,303 clean HH harmless pairs exactly as bench/hh_foundation.py loads them.
- ``split()``: the bench's 80/20 split (same code, seed 0 is the issue's split).
- ``cached_view()``: features from bench/cache (the library's own embedding cache;
  never encodes, raises if a row is missing).
- ``view()``: features written by bench/explore/encode_views.py (npz under FEATS).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "data" / "hh_harmless_test.jsonl"
CACHE = ROOT / "bench" / "cache"
FEATS = Path(os.environ.get("RH_EXPLORE_FEATS", "/tmp/rh_explore_feats"))


def load():
    from rewardhedge.data import load_pairs

    with tempfile.TemporaryDirectory() as tmp:
        pairs, _report = load_pairs(
            DATA,
            fields={"chosen": "chosen_full", "rejected": "rejected_full"},
            dialogue="hh",
            skip_invalid=True,
            rejects_path=Path(tmp) / "rejects.jsonl",
        )
    return pairs


def split_idx(n, seed=0, test_fraction=0.2):
    """Same permutation as bench/hh_foundation.split, as index arrays (train, test)."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    return order[n_test:], order[:n_test]


def cached_view(pairs, pooling, *, alone=False, max_length=256):
    """(chosen, rejected) features from the library cache under bench/cache.

    ``alone=True``: the items (prompt="", response), as the ``dual`` encoder's
    second view (cached under the ``mean`` pooling id).
    """
    from rewardhedge.encoders import EmbeddingCache, item_key
    from rewardhedge.encoders.transformer import MINILM_NAME, minilm_path, weights_digest

    enc_id = f"{MINILM_NAME}@{weights_digest(minilm_path())}:len{max_length}:{pooling}"
    cache = EmbeddingCache(CACHE, enc_id, 384)
    out = []
    for side in ("chosen", "rejected"):
        keys = [item_key("" if alone else p.prompt, getattr(p, side)) for p in pairs]
        found, emb = cache.lookup(keys)
        if not found.all():
            raise KeyError(f"{enc_id}: {int((~found).sum())} rows missing from {CACHE}")
        out.append(np.asarray(emb, dtype=np.float32))
    return out[0], out[1]


def view(layout, pooling):
    """(chosen, rejected) features of one pooling of one layout from encode_views.py."""
    path = FEATS / f"{layout}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path}: run bench/explore/encode_views.py --layout {layout}")
    z = np.load(path)
    c, r = z[f"{pooling}_c"], z[f"{pooling}_r"]
    return c.astype(np.float32), r.astype(np.float32)


def l2n(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def acc_ci(correct, reps=2000, seed=0):
    """Accuracy and percentile bootstrap 95% CI over test pairs."""
    correct = np.asarray(correct, dtype=float)
    rng = np.random.default_rng(seed)
    boots = correct[rng.integers(0, len(correct), (reps, len(correct)))].mean(1)
    return float(correct.mean()), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))
