"""Small helpers the benchmarks share: the texts of pairs, the sandbox's held-out items,
bootstrap summaries over items, row-wise Spearman, the ``machine`` block of a result
file and the formatting of printed numbers. One copy here, so the benchmarks cannot
drift apart in how they compute or report the same thing; settings (resamples, seeds)
stay in each benchmark and are passed in."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata

from rewardhedge import __version__
from rewardhedge.evaluate.pairwise import bootstrap_ci
from rewardhedge.types import PreferencePair


def pair_texts(pairs: Sequence[PreferencePair]) -> tuple[list[str], list[str]]:
    """(prompts, responses) of every pair's chosen then every pair's rejected response:
    the items a model scores for ``pairs``, in the order ``encode`` and ``score`` take."""
    prompts = [p.prompt for p in pairs]
    return prompts + prompts, [p.chosen for p in pairs] + [p.rejected for p in pairs]


def held_out_items(sandbox: Any) -> dict[str, Any]:
    """The distinct (prompt, response) items of the sandbox's test comparisons, in order of
    first appearance: ``prompts``, ``texts``, ``gold`` (an array), and each item's ``tasks``
    and ``responses`` (for the other per-item facts a benchmark needs)."""
    seen: set[tuple[str, str]] = set()
    prompts, texts, gold, tasks, responses = [], [], [], [], []
    for c in sandbox.test:
        for r in (c.a, c.b):
            if (c.task.prompt, r.text) in seen:
                continue
            seen.add((c.task.prompt, r.text))
            prompts.append(c.task.prompt)
            texts.append(r.text)
            gold.append(r.gold)
            tasks.append(c.task)
            responses.append(r)
    return {
        "prompts": prompts,
        "texts": texts,
        "gold": np.array(gold),
        "tasks": tasks,
        "responses": responses,
    }


def mean_ci(values: np.ndarray, reps: int) -> dict[str, float]:
    """The mean and its 95% percentile bootstrap CI (``reps`` resamples, seed 0)."""
    low, high = bootstrap_ci(values, reps=reps, seed=0)
    return {"mean": float(np.mean(values)), "ci_low": low, "ci_high": high}


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Spearman correlation of two `(r, n)` arrays (average ranks for ties)."""
    rx = rankdata(x, axis=1)
    ry = rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    return (rx * ry).sum(axis=1) / np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))


def item_summary(
    fn: Callable[..., np.ndarray],
    arrays: list[np.ndarray],
    *extra: np.ndarray,
    reps: int,
    key: str = "mean",
) -> dict[str, Any]:
    """Row-wise ``fn`` per seed, its mean over seeds (under ``key``), and a 95% CI from the
    same ``reps`` item resamples for every seed (resamples where ``fn`` is NaN left out).

    ``arrays`` holds one `(n,)` array per seed; ``extra`` the `(n,)` arrays every seed's is
    compared with (``fn(a, *extra)`` on `(r, n)` rows)."""
    per_seed = [float(fn(a[None], *(e[None] for e in extra))[0]) for a in arrays]
    n = arrays[0].shape[0]
    idx = np.random.default_rng(0).integers(0, n, size=(reps, n))
    boot = np.mean([fn(a[idx], *(e[idx] for e in extra)) for a in arrays], axis=0)
    low, high = np.nanquantile(boot, [0.025, 0.975])
    return {
        key: float(np.mean(per_seed)),
        "ci_low": float(low),
        "ci_high": float(high),
        "per_seed": per_seed,
    }


def has_spread(x: np.ndarray) -> bool:
    """Whether ``x`` holds more than one value (a variance that is not constant)."""
    return bool(np.any(x != x[0]))


def machine() -> dict[str, Any]:
    """The ``machine`` block of a result file: platform, CPUs, torch threads, versions."""
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "rewardhedge": __version__,
    }


def num(x: float | None) -> str:
    """``x`` to three decimals, or a dash for ``None`` (a metric a model does not have)."""
    return "—" if x is None else f"{x:.3f}"


def cell(block: dict[str, Any], fmt: str = ".3f", *, key: str = "mean", none: str = "—") -> str:
    """A block with ``key`` (a ``mean_ci`` block: ``mean``), ``ci_low`` and ``ci_high`` as
    ``value [low, high]``; ``none`` where the value is ``None``."""
    if block[key] is None:
        return none
    return f"{block[key]:{fmt}} [{block['ci_low']:{fmt}}, {block['ci_high']:{fmt}}]"
