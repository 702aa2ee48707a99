"""Load preference pairs and score items from JSONL, JSON, CSV, Parquet or HF folders.

Every row is checked; a bad row either stops the load with a :class:`DataError`
that names the file, line and field, or (``skip_invalid=True``) is recorded in
the :class:`LoadReport` and, if asked, in a rejects file. Nothing is dropped
silently.

Rules: ``prompt`` must be present and a string but may be empty (some data
sets have no context); ``chosen``, ``rejected`` and ``response`` must be
non-blank; ``chosen != rejected``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from rewardhedge.config import Option
from rewardhedge.data.fields import (
    ITEM_FIELDS,
    ONE_TO_MANY_FIELDS,
    PAIR_FIELDS,
    POOL_FIELDS,
    RATED_ITEM_FIELDS,
    STEP_FIELDS,
    RowCheck,
    resolve_fields,
)
from rewardhedge.data.hh import HH_ASSISTANT_MARKER, MARKER_SHOWN, split_hh_dialogue
from rewardhedge.data.jsonl import is_valid_utf8, write_jsonl_atomic
from rewardhedge.data.readers import DataFormat, iter_rows, resolve_format
from rewardhedge.errors import DataError
from rewardhedge.types import (
    CandidatePool,
    LoadReport,
    OneToManyRow,
    PreferencePair,
    RatedItem,
    ScoreItem,
)

T = TypeVar("T")
Builder = Callable[[RowCheck, int], T]


class Dialogue(Option):
    AUTO = "auto"
    """Split HH-style dialogues only when the row has no prompt and both texts have the marker."""
    HH = "hh"
    """Always split ``chosen``/``rejected`` at the last ``"\\n\\nAssistant:"``;
    any prompt column is ignored."""
    NONE = "none"
    """Never split."""


def load_pairs(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    format: str = "auto",
    dialogue: str = "auto",
    split: str | None = None,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
) -> tuple[list[PreferencePair], LoadReport]:
    """Load preference pairs from a file or a Hugging Face ``datasets`` folder.

    Args:
        path: ``.jsonl``, ``.json`` (an array of objects), ``.csv`` (with a
            header), ``.parquet``, or a folder saved by ``datasets``.
        fields: Our field name → the file's column name, for the names
            prompt, chosen, rejected, margin, chosen_score, rejected_score, subset,
            source, id.
        format: ``"auto"`` (by path), ``"jsonl"``, ``"json"``, ``"csv"``,
            ``"parquet"`` or ``"hf"``.
        dialogue: ``"auto"``, ``"hh"`` or ``"none"``: whether to split
            Anthropic HH-RLHF dialogues (see :func:`split_hh_dialogue`).
        split: The split of a ``DatasetDict`` folder (default ``"train"`` if
            present, else the only split).
        skip_invalid: Record bad rows in the report instead of raising.
        rejects_path: Where to write the rejected rows as JSONL (written even
            when there are none).

    Returns:
        The pairs in file order and a :class:`LoadReport`. Rows without an
        id get ``"<file name>:<line>"``; ``source`` defaults to the file name.
        Duplicate pairs (the same prompt, chosen and rejected, also when they
        differ only in whitespace) are kept and counted in ``n_duplicates``.
        Line numbers are 1-based lines (JSONL, JSON, CSV) or row numbers
        (Parquet, HF folders).

    Raises:
        DataError: A bad row (unless ``skip_invalid``), an unusable file, or
            no valid rows at all.
        ConfigError: An unknown option or field name.
    """
    mode = Dialogue.parse(dialogue, "dialogue")
    name = Path(path).name

    def build(chk: RowCheck, line: int) -> PreferencePair:
        prompt, chosen, rejected = _pair_texts(chk, mode)
        if chosen == rejected:
            raise DataError(
                f"fields {chk.label('chosen')} and {chk.label('rejected')} are identical",
                field="rejected",
            )
        return PreferencePair(
            prompt=prompt,
            chosen=chosen,
            rejected=rejected,
            margin=chk.optional_margin(),
            chosen_score=chk.optional_number("chosen_score"),
            rejected_score=chk.optional_number("rejected_score"),
            soft_label=chk.optional_probability("soft_label"),
            subset=chk.optional_text("subset"),
            source=chk.optional_text("source") or name,
            id=chk.optional_id() or f"{name}:{line}",
        )

    return load_rows(
        path, fields, PAIR_FIELDS, format, split, skip_invalid, rejects_path, build, _pair_key
    )


def _pair_key(pair: PreferencePair) -> tuple[str, str, str]:
    """What makes two pairs the same: prompt, chosen and rejected, whitespace collapsed."""
    return (
        " ".join(pair.prompt.split()),
        " ".join(pair.chosen.split()),
        " ".join(pair.rejected.split()),
    )


def load_items(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    format: str = "auto",
    split: str | None = None,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
) -> tuple[list[ScoreItem], LoadReport]:
    """Load (prompt, response) items to score; same formats and rules as :func:`load_pairs`.

    Args:
        path: The file or ``datasets`` folder.
        fields: Our field name → column, for the names prompt, response, id.
        format: As in :func:`load_pairs`.
        split: As in :func:`load_pairs`.
        skip_invalid: Record bad rows in the report instead of raising.
        rejects_path: Where to write the rejected rows as JSONL.

    Returns:
        The items in file order and a :class:`LoadReport`.

    Raises:
        DataError: A bad row (unless ``skip_invalid``), an unusable file, or
            no valid rows at all.
        ConfigError: An unknown option or field name.
    """
    name = Path(path).name

    def build(chk: RowCheck, line: int) -> ScoreItem:
        return ScoreItem(
            prompt=chk.text("prompt", allow_empty=True),
            response=chk.text("response"),
            id=chk.optional_id() or f"{name}:{line}",
        )

    return load_rows(path, fields, ITEM_FIELDS, format, split, skip_invalid, rejects_path, build)


def load_rated_items(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    format: str = "auto",
    split: str | None = None,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
) -> tuple[list[RatedItem], LoadReport]:
    """Load rated responses (prompt, response, score): HelpSteer-style item rows for the
    rating objectives; same formats and rules as :func:`load_pairs`.

    Raises:
        DataError: A bad row (unless ``skip_invalid``), e.g. a missing or non-finite
            ``score``; an unusable file; no valid rows.
        ConfigError: An unknown option or field name.
    """
    name = Path(path).name

    def build(chk: RowCheck, line: int) -> RatedItem:
        score = chk.optional_number("score")
        if score is None:
            raise chk.fail("score", "is missing (every rated item needs a number)")
        return RatedItem(
            prompt=chk.text("prompt", allow_empty=True),
            response=chk.text("response"),
            score=score,
            id=chk.optional_id() or f"{name}:{line}",
        )

    return load_rows(
        path, fields, RATED_ITEM_FIELDS, format, split, skip_invalid, rejects_path, build
    )


def holds_rated_items(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    format: str = "auto",
    split: str | None = None,
) -> bool:
    """Whether the first readable row is a rated item (``response`` and ``score``
    columns, no ``chosen``) rather than a pair."""
    fmt = resolve_format(Path(path), DataFormat.parse(format, "format"))
    cols = resolve_fields(_only(fields, RATED_ITEM_FIELDS), RATED_ITEM_FIELDS)
    pair_cols = resolve_fields(_only(fields, PAIR_FIELDS), PAIR_FIELDS)
    for raw in iter_rows(Path(path), fmt, split):
        if raw.row is None:
            continue
        row = raw.row
        return cols["response"] in row and cols["score"] in row and pair_cols["chosen"] not in row
    return False


def load_pools(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    format: str = "auto",
    split: str | None = None,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
    missing_gold: bool = False,
) -> tuple[list[CandidatePool], LoadReport]:
    """Load best-of-n pools ``{prompt, candidates[], gold[]?}``; same formats and rules as :func:`load_pairs`.

    ``candidates`` must hold at least two non-blank strings; ``gold``, when
    present, one finite number per candidate (with ``missing_gold``, ``null``
    for an unknown one, read as NaN). In CSV files both are JSON lists inside
    the cell. ``split`` (``"train"``/``"test"``), when present, fixes which
    side of the overoptimisation lab's prompt split a pool is on.

    Returns:
        The pools in file order and a :class:`LoadReport`.
    """
    name = Path(path).name

    def build(chk: RowCheck, line: int) -> CandidatePool:
        candidates = chk.text_list("candidates", min_len=2)
        return CandidatePool(
            prompt=chk.text("prompt", allow_empty=True),
            candidates=candidates,
            gold=chk.optional_number_list("gold", len(candidates), allow_null=missing_gold),
            id=chk.optional_id() or f"{name}:{line}",
            subset=chk.optional_text("subset"),
            split=_pool_split(chk),
        )

    return load_rows(path, fields, POOL_FIELDS, format, split, skip_invalid, rejects_path, build)


def _pool_split(chk: RowCheck) -> str | None:
    value = chk.optional_text("split")
    if value is not None and value not in ("train", "test"):
        raise DataError(
            f"field {chk.label('split')} must be 'train' or 'test', got {value!r}", field="split"
        )
    return value


def load_one_to_many(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    format: str = "auto",
    split: str | None = None,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
) -> tuple[list[OneToManyRow], LoadReport]:
    """Load one-to-many rows ``{prompt, chosen, rejected[], subset?}``; same formats and rules
    as :func:`load_pairs`.

    ``rejected`` must be a list of at least one non-blank string, none equal to
    ``chosen`` (in CSV files, a JSON list inside the cell).

    Returns:
        The rows in file order and a :class:`LoadReport`.
    """
    name = Path(path).name

    def build(chk: RowCheck, line: int) -> OneToManyRow:
        chosen = chk.text("chosen")
        rejected = chk.text_list("rejected", min_len=1)
        for j, r in enumerate(rejected):
            if r == chosen:
                raise DataError(
                    f"entry {j} of field {chk.label('rejected')} is identical to "
                    f"{chk.label('chosen')}",
                    field="rejected",
                )
        return OneToManyRow(
            prompt=chk.text("prompt", allow_empty=True),
            chosen=chosen,
            rejected=rejected,
            subset=chk.optional_text("subset"),
            source=chk.optional_text("source") or name,
            id=chk.optional_id() or f"{name}:{line}",
        )

    return load_rows(
        path, fields, ONE_TO_MANY_FIELDS, format, split, skip_invalid, rejects_path, build
    )


class EvalTask(Option):
    """What rows an evaluation file holds."""

    AUTO = "auto"
    """Tell from the first row: ``steps`` → steps; ``candidates`` → pools; ``rejected`` a
    list → one-to-many; otherwise pairs."""
    PAIRS = "pairs"
    ONE_TO_MANY = "one-to-many"
    POOLS = "pools"
    STEPS = "steps"
    """Step solutions with gold step labels (``data/steps.py``), for a process reward model."""


def sniff_task(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    format: str = "auto",
    split: str | None = None,
) -> EvalTask:
    """Which :class:`EvalTask` a file holds, judged from its first readable row.

    A row with a ``steps`` column is a step solution; one with a ``candidates`` column
    is a best-of-n pool; one whose
    ``rejected`` is a list (or, in CSV, a cell holding a JSON list) is
    one-to-many; anything else is read as pairs (whose loader then reports
    any problem with file, line and field).
    """
    fmt = resolve_format(Path(path), DataFormat.parse(format, "format"))
    pool_cols = resolve_fields(_only(fields, POOL_FIELDS), POOL_FIELDS)
    many_cols = resolve_fields(_only(fields, ONE_TO_MANY_FIELDS), ONE_TO_MANY_FIELDS)
    step_cols = resolve_fields(_only(fields, STEP_FIELDS), STEP_FIELDS)
    for raw in iter_rows(Path(path), fmt, split):
        if raw.row is None:
            continue
        if step_cols["steps"] in raw.row:
            return EvalTask.STEPS
        if pool_cols["candidates"] in raw.row:
            return EvalTask.POOLS
        rejected = raw.row.get(many_cols["rejected"])
        if hasattr(rejected, "tolist") and not isinstance(rejected, str):
            rejected = rejected.tolist()
        if isinstance(rejected, list | tuple):
            return EvalTask.ONE_TO_MANY
        if isinstance(rejected, str) and fmt is DataFormat.CSV and rejected.lstrip()[:1] == "[":
            return EvalTask.ONE_TO_MANY
        return EvalTask.PAIRS
    return EvalTask.PAIRS


def _only(fields: Mapping[str, str] | None, valid: tuple[str, ...]) -> dict[str, str]:
    """The part of a field map that names ``valid`` fields (sniffing ignores the rest)."""
    return {k: v for k, v in (fields or {}).items() if k in valid}


def _pair_texts(chk: RowCheck, mode: Dialogue) -> tuple[str, str, str]:
    """(prompt, chosen, rejected) of one row, splitting HH dialogues when asked to."""
    if mode is Dialogue.AUTO:
        texts = [chk.row.get(chk.cols[f]) for f in ("chosen", "rejected")]
        hh = not chk.has("prompt") and all(
            isinstance(t, str) and HH_ASSISTANT_MARKER in t for t in texts
        )
        mode = Dialogue.HH if hh else Dialogue.NONE
    if mode is Dialogue.NONE:
        return chk.text("prompt", allow_empty=True), chk.text("chosen"), chk.text("rejected")
    full = {f: chk.text(f, allow_empty=True) for f in ("chosen", "rejected")}
    for f, text in full.items():
        if HH_ASSISTANT_MARKER not in text:
            raise chk.fail(f, f"has no {MARKER_SHOWN} turn")
    prompt, chosen, rejected = split_hh_dialogue(full["chosen"], full["rejected"])
    for f, response in (("chosen", chosen), ("rejected", rejected)):
        if not response.strip():
            raise chk.fail(f, f"has an empty response after the last {MARKER_SHOWN} turn")
    return prompt, chosen, rejected


def load_rows(
    path: str | Path,
    fields: Mapping[str, str] | None,
    valid: tuple[str, ...],
    format: str,
    split: str | None,
    skip_invalid: bool,
    rejects_path: str | Path | None,
    build: Builder[T],
    key: Callable[[T], Hashable] | None = None,
) -> tuple[list[T], LoadReport]:
    """Shared loop: read raw rows, build or reject each, write rejects, report; with
    ``key``, kept rows whose key repeats an earlier one are counted as duplicates."""
    cols = resolve_fields(fields, valid)
    fmt = resolve_format(Path(path), DataFormat.parse(format, "format"))
    shown = str(path)
    report = LoadReport(path=shown)
    out: list[T] = []
    for raw in iter_rows(Path(path), fmt, split):
        report.n_read += 1
        try:
            if raw.row is None:
                raise DataError(str(raw.reason))
            out.append(build(RowCheck(raw.row, cols, fmt is DataFormat.CSV), raw.line))
        except DataError as e:
            err = DataError(e.reason, path=shown, line=raw.line, field=e.field)
            if not skip_invalid:
                raise err from None
            report.rejects.append(
                {
                    "line": raw.line,
                    "field": e.field,
                    "reason": e.reason,
                    "error": str(err),
                    "row": _jsonable(raw.raw),
                }
            )
    report.n_kept = len(out)
    if key is not None:
        report.n_duplicates = len(out) - len({key(row) for row in out})
    if rejects_path is not None:
        write_jsonl_atomic(rejects_path, report.rejects)
        report.rejects_path = str(rejects_path)
    if not out:
        detail = (
            f"all {report.n_read} rows were rejected" if report.n_read else "the file has no rows"
        )
        raise DataError(f"no valid rows: {detail}", path=shown)
    return out, report


def _jsonable(value: Any) -> Any:
    """A copy of a raw row that strict UTF-8 JSON can hold (for the rejects file).

    Invalid UTF-8 bytes become U+FFFD, non-finite floats and unknown types
    become strings.
    """
    if isinstance(value, str):
        if is_valid_utf8(value):
            return value
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {str(_jsonable(str(k))): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)
