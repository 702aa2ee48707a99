"""Write the sandbox in the formats users bring their own data in.

``train.jsonl`` and ``test.jsonl`` are pair files for ``rewardhedge train``
and ``eval`` (train: noisy Bradley-Terry labels for one label seed; test:
ordered by the gold reward, ties left out), ``pools.jsonl`` is a best-of-n
pool file for ``rewardhedge bon`` (with ``gold`` and each candidate's latent
properties), and ``sandbox.json`` records the configuration and the gold
formula's weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rewardhedge.data.jsonl import write_json_atomic, write_jsonl_atomic
from rewardhedge.data.sandbox.generate import Comparison, Sandbox


def _pair_rows(
    comparisons: Sequence[Comparison], a_wins: Sequence[bool]
) -> Iterator[dict[str, Any]]:
    for c, a_won in zip(comparisons, a_wins, strict=True):
        chosen, rejected = (c.a, c.b) if a_won else (c.b, c.a)
        yield {
            "id": c.id,
            "prompt": c.task.prompt,
            "chosen": chosen.text,
            "rejected": rejected.text,
            "subset": c.task.family,
            "chosen_gold": chosen.gold,
            "rejected_gold": rejected.gold,
        }


def export_sandbox(sandbox: Sandbox, folder: str | Path, *, label_seed: int = 0) -> dict[str, Path]:
    """Write ``train.jsonl``, ``test.jsonl``, ``pools.jsonl`` and ``sandbox.json`` into ``folder``.

    Returns:
        The written paths by name.
    """
    out = Path(folder)
    paths = {name: out / f"{name}.jsonl" for name in ("train", "test", "pools")}
    n_train = write_jsonl_atomic(
        paths["train"], _pair_rows(sandbox.train, sandbox.label_wins("train", label_seed))
    )
    test = sandbox.decided("test")  # ordered by gold, ties left out
    n_test = write_jsonl_atomic(
        paths["test"], _pair_rows(test, [c.a.gold > c.b.gold for c in test])
    )
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
            "counts": {"train": n_train, "test": n_test, "pools": len(sandbox.pools)},
        },
    )
    return paths
