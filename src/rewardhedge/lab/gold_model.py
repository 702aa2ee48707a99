"""Gold from a reward model: label a user's pools with a model they trust but will not
optimise against (Gao et al.'s synthetic setup: a big gold model, a small proxy).

The gold of a candidate is the gold model's mean reward (members averaged, no
aggregation or transform), from a rewardhedge model folder or a running
reward server. Scores are cached next to the pools file (or in the lab's output
folder when that is not writable), keyed by the pools file's content and the
model's identity, so a rerun does not score again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rewardhedge.data import write_json_atomic
from rewardhedge.errors import ConfigError
from rewardhedge.types import CandidatePool

CACHE_KIND = "rewardhedge.gold_scores"

SCORE_CHUNK = 512
"""Candidates per scoring call (progress is reported between calls)."""


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def model_key(source: str) -> str:
    """What identifies the gold model: a server's URL, or a hash of a model folder's
    small files (manifest, config) and the sizes of the others (weights)."""
    if is_url(source):
        return "url:" + source.rstrip("/")
    folder = Path(source)
    if not folder.is_dir():
        raise ConfigError(f"--gold-model {source!r} is neither a model folder nor an http(s) URL.")
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        h.update(rel.encode())
        size = path.stat().st_size
        h.update(path.read_bytes() if size < 1 << 20 else str(size).encode())
    return "folder:" + h.hexdigest()


def _cache_key(pools_file: Path, source: str) -> str:
    h = hashlib.sha256(pools_file.read_bytes())
    h.update(model_key(source).encode())
    return h.hexdigest()


def cache_paths(pools_file: Path, out_dir: Path, key: str) -> list[Path]:
    """Where the cache may be: beside the pools file first, then in the output folder."""
    name = f"{pools_file.name}.gold-{key[:16]}.json"
    return [pools_file.with_name(name), out_dir / name]


def load_cached(paths: Sequence[Path], key: str, n: int) -> tuple[list[list[float]], Path] | None:
    """The cached gold lists, and the file they came from, when a cache file with this
    key and pool count exists."""
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("kind") == CACHE_KIND and data.get("key") == key and len(data["gold"]) == n:
            return data["gold"], path
    return None


def score_gold(
    scorer: Any,
    pools: Sequence[CandidatePool],
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[list[float]]:
    """Each pool's candidates scored by ``scorer`` (its members' mean reward)."""
    prompts = [p.prompt for p in pools for _ in p.candidates]
    texts = [c for p in pools for c in p.candidates]
    means = []
    for start in range(0, len(texts), SCORE_CHUNK):
        est = scorer.score(prompts[start : start + SCORE_CHUNK], texts[start : start + SCORE_CHUNK])
        means.append(np.asarray(est.mean, dtype=np.float64))
        on_progress(min(start + SCORE_CHUNK, len(texts)), len(texts))
    flat = np.concatenate(means) if means else np.zeros(0)
    out, start = [], 0
    for p in pools:
        out.append([float(x) for x in flat[start : start + len(p.candidates)]])
        start += len(p.candidates)
    return out


def open_gold_model(source: str, cache_dir: Path | None = None, token: str | None = None) -> Any:
    """A scorer for ``source``: a model folder (loaded here) or a reward server URL."""
    if is_url(source):
        from rewardhedge.optimize.remote import RemoteRewardModel

        return RemoteRewardModel(source, token=token)
    from rewardhedge.estimators.loading import load_reward_model

    return load_reward_model(source, cache_dir=cache_dir)


def with_model_gold(
    pools: Sequence[CandidatePool],
    pools_file: Path,
    source: str,
    out_dir: Path,
    *,
    cache_dir: Path | None = None,
    token: str | None = None,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> tuple[list[CandidatePool], dict[str, Any]]:
    """``pools`` with gold from the model at ``source`` (cached), and what was done."""
    key = _cache_key(pools_file, source)
    paths = cache_paths(pools_file, out_dir, key)
    cached = load_cached(paths, key, len(pools))
    info: dict[str, Any] = {"gold_model": source, "key": key, "cached": cached is not None}
    if cached is not None:
        gold, path = cached
        info["cache_file"] = str(path)
    else:
        scorer = open_gold_model(source, cache_dir, token)
        try:
            gold = score_gold(scorer, pools, on_progress)
        finally:
            close = getattr(scorer, "close", None)
            if callable(close):
                close()
        payload = {"kind": CACHE_KIND, "key": key, "gold_model": source, "gold": gold}
        for path in paths:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(path, payload)
                info["cache_file"] = str(path)
                break
            except OSError:
                continue
    return [replace(p, gold=tuple(g)) for p, g in zip(pools, gold, strict=True)], info
