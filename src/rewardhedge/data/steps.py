"""Load step-labelled solutions for process-reward evaluation (``steps.jsonl``).

Two row shapes, told apart per row:

- ours: ``{"prompt", "steps": [...], "labels": [true, false, ...], "id"?}``, one
  gold validity per step (``null`` allowed only after the first ``false``);
- ProcessBench (Zheng et al., 2024): ``{"problem", "steps": [...], "label": k}``
  where ``k`` is the index of the first wrong step, or ``-1`` when every step is
  right.

ProcessBench says nothing about the steps after the first error, so they are
stored as unknown (``None``) rather than guessed: labels become ``True`` before
``k``, ``False`` at ``k`` and ``None`` after it. First-error detection needs no
more; per-step metrics leave the unknown steps out. (Marking them all wrong
would count a model that calls a later, locally correct step right as a miss.)

Same formats, field maps, error messages (file, line and field) and
``skip_invalid``/rejects handling as :mod:`rewardhedge.data.loaders`.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from pathlib import Path

from rewardhedge.data.fields import STEP_FIELDS, RowCheck
from rewardhedge.data.jsonl import type_name
from rewardhedge.data.loaders import EvalTask, load_rows, sniff_task
from rewardhedge.types import LoadReport, StepSolution

PROCESSBENCH_PROMPT = "problem"
"""ProcessBench's name for the prompt column, used when a row has no ``prompt``."""


def _prompt(chk: RowCheck) -> str:
    if chk.cols["prompt"] not in chk.row and PROCESSBENCH_PROMPT in chk.row:
        bench = RowCheck(chk.row, dict(chk.cols, prompt=PROCESSBENCH_PROMPT), chk.from_text)
        return bench.text("prompt", allow_empty=True)
    return chk.text("prompt", allow_empty=True)


def _labels(chk: RowCheck, n_steps: int) -> tuple[bool | None, ...]:
    has_labels, has_label = chk.has("labels"), chk.has("label")
    if has_labels and has_label:
        raise chk.fail("labels", f"and {chk.label('label')} are both given; give one of them")
    if has_labels:
        values = chk.list_value("labels", chk.row[chk.cols["labels"]])
        if len(values) != n_steps:
            raise chk.fail("labels", f"has {len(values)} entries for {n_steps} steps")
        seen_false = False
        for i, v in enumerate(values):
            if v is None and not seen_false:
                raise chk.fail(
                    "labels",
                    f"entry {i} is null before the first false entry; only steps after "
                    "the first error may be unknown",
                )
            if v is not None and not isinstance(v, bool):
                raise chk.fail("labels", f"entry {i} must be true, false or null, got {v!r}")
            seen_false = seen_false or v is False
        return tuple(values)
    if not has_label:
        raise chk.fail(
            "labels",
            "is missing (give per-step 'labels', or ProcessBench's 'label': the index of "
            "the first wrong step, -1 for none)",
            keys=True,
        )
    k = _first_error_index(chk, n_steps)
    if k == -1:
        return (True,) * n_steps
    return (True,) * k + (False,) + (None,) * (n_steps - k - 1)


def _first_error_index(chk: RowCheck, n_steps: int) -> int:
    raw = chk.row[chk.cols["label"]]
    value: object = raw
    if chk.from_text and isinstance(raw, str):
        try:
            value = int(raw.strip())
        except ValueError:
            raise chk.fail("label", f"must be an integer, got {raw!r}") from None
    if isinstance(value, bool) or not isinstance(value, Real) or float(value) != int(value):
        raise chk.fail("label", f"must be an integer step index, got {type_name(value)} {raw!r}")
    k = int(value)
    if not -1 <= k < n_steps:
        raise chk.fail(
            "label", f"== {k}, must be -1 (no error) or a step index in 0..{n_steps - 1}"
        )
    return k


def read_step_solutions(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    format: str = "auto",
    split: str | None = None,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
) -> tuple[list[StepSolution], LoadReport]:
    """Load step solutions (either row shape) with a :class:`LoadReport`.

    Args:
        path: The file or ``datasets`` folder.
        fields: Our field name → column, for prompt, steps, labels, label, id.
        format, split, skip_invalid, rejects_path: As in
            :func:`rewardhedge.data.load_pairs`.

    Returns:
        The solutions in file order and the report.

    Raises:
        DataError: A bad row (unless ``skip_invalid``), e.g. ``labels`` of the
            wrong length or a ``label`` outside ``-1..len(steps)-1``; an
            unusable file; no valid rows.
        ConfigError: An unknown option or field name.
    """
    name = Path(path).name

    def build(chk: RowCheck, line: int) -> StepSolution:
        prompt = _prompt(chk)
        steps = chk.text_list("steps", min_len=1)
        labels = _labels(chk, len(steps))
        return StepSolution(prompt, steps, labels, chk.optional_id() or f"{name}:{line}")

    return load_rows(path, fields, STEP_FIELDS, format, split, skip_invalid, rejects_path, build)


def load_step_solutions(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    format: str = "auto",
    split: str | None = None,
) -> list[StepSolution]:
    """The step solutions of ``path``; the first bad row raises :class:`DataError`.

    Example:
        >>> import json, pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "steps.jsonl"
        >>> _ = p.write_text(json.dumps({"problem": "Q", "steps": ["a", "b"], "label": 0}))
        >>> load_step_solutions(p)[0].labels
        (False, None)
    """
    return read_step_solutions(path, fields=fields, format=format, split=split)[0]


def holds_step_solutions(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    format: str = "auto",
    split: str | None = None,
) -> bool:
    """Whether the first readable row is a step solution: it has a ``steps`` column
    (pairs, items and pools have none); :func:`sniff_task` says ``steps``."""
    return sniff_task(path, fields=fields, format=format, split=split) is EvalTask.STEPS


__all__ = [
    "STEP_FIELDS",
    "holds_step_solutions",
    "load_step_solutions",
    "read_step_solutions",
]
