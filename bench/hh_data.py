"""The HH-RLHF harmless test pairs and the 80/20 split every HH benchmark uses."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rewardhedge.data import load_pairs
from rewardhedge.types import LoadReport, PreferencePair

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "hh_harmless_test.jsonl"


def load_hh() -> tuple[list[PreferencePair], LoadReport]:
    """The clean pairs (full dialogues split at the last Assistant turn); bad rows are
    counted in the report and skipped."""
    with tempfile.TemporaryDirectory() as tmp:
        return load_pairs(
            DATA,
            fields={"chosen": "chosen_full", "rejected": "rejected_full"},
            dialogue="hh",
            skip_invalid=True,
            rejects_path=Path(tmp) / "rejects.jsonl",
        )


def split(pairs, seed=0, test_fraction=0.2):
    """(train, test): a seeded permutation, the first 20% is the test split."""
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_test = round(len(pairs) * test_fraction)
    return [pairs[i] for i in order[n_test:]], [pairs[i] for i in order[:n_test]]


def hh_and_sandbox(
    sandbox: Any = None,
) -> tuple[list[PreferencePair], list[PreferencePair], list, dict]:
    """(train, test, ood, data): the HH split, the sandbox's gold-ordered test pairs as the
    out-of-distribution set, and the ``data`` block the benchmarks write about them.
    ``sandbox``: the ``SandboxConfig()`` sandbox when the caller has it (else generated)."""
    from rewardhedge.data.sandbox import SandboxConfig, generate_sandbox

    pairs, report = load_hh()
    train, test = split(pairs)
    if sandbox is None:
        sandbox = generate_sandbox(SandboxConfig())
    ood = sandbox.gold_pairs("test")
    data = {
        "in_distribution": str(DATA.relative_to(ROOT.parent)),
        "n_train": len(train),
        "n_test": len(test),
        "n_skipped": report.n_rejected,
        "out_of_distribution": "sandbox test pairs (SandboxConfig defaults), gold-ordered",
        "n_ood": len(ood),
    }
    return train, test, ood, data
