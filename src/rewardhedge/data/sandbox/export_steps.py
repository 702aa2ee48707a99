"""Write the step sandbox in the formats the CLI reads.

``steps.jsonl`` holds the test split's sampled solutions with gold step labels
(for ``rewardhedge eval``'s step task); ``step_pairs.jsonl`` and
``outcome_pairs.jsonl`` are training pair files for ``rewardhedge train``: a
process reward model (valid vs invalid next step, the prompt holding the
steps so far) and an outcome reward model (correct vs wrong full solution);
``step_sandbox.json`` records the configuration and the counts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rewardhedge.data.jsonl import write_json_atomic, write_jsonl_atomic
from rewardhedge.data.sandbox.steps import StepSandbox
from rewardhedge.types import PreferencePair

STEP_FILES = {
    "steps": "steps.jsonl",
    "step_pairs": "step_pairs.jsonl",
    "outcome_pairs": "outcome_pairs.jsonl",
    "step_sandbox": "step_sandbox.json",
}
"""The files :func:`export_step_sandbox` writes, by the names it returns them under."""


def _pair_rows(pairs: Sequence[PreferencePair]) -> Iterator[dict[str, Any]]:
    for p in pairs:
        yield {
            "id": p.id,
            "prompt": p.prompt,
            "chosen": p.chosen,
            "rejected": p.rejected,
            "subset": p.subset,
            "source": p.source,
        }


def export_step_sandbox(sandbox: StepSandbox, out_dir: str | Path) -> dict[str, Path]:
    """Write ``steps.jsonl``, ``step_pairs.jsonl``, ``outcome_pairs.jsonl`` and
    ``step_sandbox.json`` into ``out_dir`` (each atomically).

    Returns:
        The written paths by name (``steps``, ``step_pairs``, ``outcome_pairs``, ``step_sandbox``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / file for name, file in STEP_FILES.items()}
    solutions = sandbox.solutions("test")
    n_steps = write_jsonl_atomic(
        paths["steps"],
        (
            {"id": s.id, "prompt": s.prompt, "steps": list(s.steps), "labels": list(s.labels or ())}
            for s in solutions
        ),
    )
    n_step_pairs = write_jsonl_atomic(paths["step_pairs"], _pair_rows(sandbox.step_pairs("train")))
    n_outcome = write_jsonl_atomic(
        paths["outcome_pairs"], _pair_rows(sandbox.outcome_pairs("train"))
    )
    write_json_atomic(
        paths["step_sandbox"],
        {
            "kind": "rewardhedge.step_sandbox",
            "config": sandbox.config.to_dict(),
            "counts": {
                "steps": n_steps,
                "step_pairs": n_step_pairs,
                "outcome_pairs": n_outcome,
                "solutions_all_valid": sum(s.first_error is None for s in solutions),
            },
        },
    )
    return paths
