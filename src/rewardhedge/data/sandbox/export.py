"""Write the sandbox in the formats users bring their own data in.

``train.jsonl`` and ``test.jsonl`` are pair files for ``rewardhedge train``
and ``eval`` (train: noisy Bradley-Terry labels for one label seed; test:
ordered by the gold reward, ties left out), ``pools.jsonl`` is a best-of-n
pool file for ``rewardhedge bon`` (with ``gold`` and each candidate's latent
properties), and ``sandbox.json`` records the configuration and the gold
formula's weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardhedge.data.jsonl import write_json_atomic, write_jsonl_atomic
from rewardhedge.data.sandbox.generate import Comparison, Sandbox
from rewardhedge.types import PreferencePair


def _pair_row(pair: PreferencePair, comparison: Comparison) -> dict[str, Any]:
    by_text = {comparison.a.text: comparison.a, comparison.b.text: comparison.b}
    chosen, rejected = by_text[pair.chosen], by_text[pair.rejected]
    return {
        "id": pair.id,
        "prompt": pair.prompt,
        "chosen": pair.chosen,
        "rejected": pair.rejected,
        "subset": pair.subset,
        "chosen_gold": chosen.gold,
        "rejected_gold": rejected.gold,
    }


def export_sandbox(sandbox: Sandbox, folder: str | Path, *, label_seed: int = 0) -> dict[str, Path]:
    """Write ``train.jsonl``, ``test.jsonl``, ``pools.jsonl`` and ``sandbox.json`` into ``folder``.

    Returns:
        The written paths by name.
    """
    out = Path(folder)
    by_id = {c.id: c for c in (*sandbox.train, *sandbox.test)}
    paths = {name: out / f"{name}.jsonl" for name in ("train", "test", "pools")}
    train = sandbox.labelled_pairs("train", label_seed)
    write_jsonl_atomic(paths["train"], (_pair_row(p, by_id[p.id]) for p in train))
    test = sandbox.gold_pairs("test")
    write_jsonl_atomic(paths["test"], (_pair_row(p, by_id[p.id]) for p in test))
    write_jsonl_atomic(
        paths["pools"],
        (
            {
                "id": pool.id,
                "prompt": pool.task.prompt,
                "subset": pool.task.family,
                "candidates": [r.text for r in pool.responses],
                "gold": [r.gold for r in pool.responses],
                "properties": [r.props.to_dict() for r in pool.responses],
            }
            for pool in sandbox.pools
        ),
    )
    paths["config"] = out / "sandbox.json"
    write_json_atomic(
        paths["config"],
        {
            "kind": "rewardhedge.sandbox",
            "config": sandbox.config.to_dict(),
            "label_seed": label_seed,
            "counts": {"train": len(train), "test": len(test), "pools": len(sandbox.pools)},
        },
    )
    return paths
