"""``rewardhedge explain``: which training pairs made a model prefer one response.

A thin layer over :func:`rewardhedge.estimators.influence.influence`: read the test
pair (``--pair`` JSON, or ``--pair-file`` and ``--index``), load the model, read its
training pairs as ``train`` read them, print the most helping and hurting pairs and,
with ``--out``, write every training pair's influence as JSONL.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich import box
from rich.table import Table
from rich.text import Text

from rewardhedge.cli.common import (
    CacheOptions,
    PairReadOptions,
    beside,
    check_outputs,
    err,
    read_pairs,
)
from rewardhedge.cli.common import out as stdout
from rewardhedge.cli.flags import with_flags
from rewardhedge.data import write_jsonl_atomic
from rewardhedge.data.fields import PAIR_FIELDS, RowCheck, resolve_fields
from rewardhedge.errors import ConfigError, DataError
from rewardhedge.estimators.influence import InfluenceResult, check_explainable, influence
from rewardhedge.estimators.loading import load_reward_model
from rewardhedge.types import PreferencePair


@dataclass(frozen=True)
class ExplainOptions:
    """The test pair to explain and how much to show."""

    pair: str | None = None
    """The test pair as JSON: {"prompt": ..., "chosen": ..., "rejected": ...}."""
    pair_file: Path | None = None
    """A file of pairs holding the test pair (read like --data); pick it with --index."""
    index: int | None = None
    """Which pair of --pair-file to explain, counting from 0."""
    top: int = 10
    """How many helping and how many hurting pairs to list."""
    damping: float = 0.0
    """Added to each member's Hessian diagonal; needed only for a model trained with --l2 0."""

    def __post_init__(self) -> None:
        if (self.pair is None) == (self.pair_file is None):
            raise ConfigError(
                "give the test pair with exactly one of --pair JSON or --pair-file FILE --index I."
            )
        if self.pair_file is not None and self.index is None:
            raise ConfigError(
                "--pair-file needs --index: which of its pairs to explain (0: the first)."
            )
        if self.pair_file is None and self.index is not None:
            raise ConfigError(
                "--index picks a pair of --pair-file; give --pair-file or drop --index."
            )
        if self.index is not None and self.index < 0:
            raise ConfigError(f"--index == {self.index!r}, must be >= 0 (0: the first pair).")
        if self.top < 1:
            raise ConfigError(f"--top == {self.top!r}, must be >= 1.")
        if not (math.isfinite(self.damping) and self.damping >= 0.0):
            raise ConfigError(f"--damping == {self.damping!r}, must be a finite number >= 0.")


def parse_pair(text: str) -> PreferencePair:
    """The ``--pair`` JSON object as a pair, checked as a data row is.

    Raises:
        ConfigError: not JSON, or not an object.
        DataError: a missing, empty or mistyped field (``--pair: field 'chosen' ...``).
    """
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--pair is not valid JSON ({exc.msg} at character {exc.pos}).") from None
    if not isinstance(row, dict):
        raise ConfigError(
            f"--pair must be a JSON object with prompt, chosen and rejected, got "
            f"{type(row).__name__}."
        )
    chk = RowCheck(row, resolve_fields(None, PAIR_FIELDS), from_text=False)
    try:
        pair = PreferencePair(
            prompt=chk.text("prompt", allow_empty=True),
            chosen=chk.text("chosen"),
            rejected=chk.text("rejected"),
            id=chk.optional_id() or "--pair",
        )
    except DataError as exc:
        raise DataError(exc.reason, path="--pair", field=exc.field) from None
    if pair.chosen == pair.rejected:
        raise DataError("fields 'chosen' and 'rejected' are identical", path="--pair")
    return pair


def _test_pair(opts: ExplainOptions, read: PairReadOptions) -> PreferencePair:
    if opts.pair is not None or opts.pair_file is None or opts.index is None:
        return parse_pair(str(opts.pair))  # ExplainOptions made sure one way is complete
    plain = replace(read, skip_invalid=False, rejects=None)  # an index needs every row
    pairs = read_pairs(opts.pair_file, plain, None)
    if opts.index >= len(pairs):
        raise ConfigError(
            f"--index == {opts.index}, but --pair-file {str(opts.pair_file)!r} holds "
            f"{len(pairs)} pairs (0 to {len(pairs) - 1})."
        )
    return pairs[opts.index]


def _short(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _table(result: InfluenceResult, pairs: list[PreferencePair], rows: Any, title: str) -> Table:
    """The numbers and the id in full; the pair's texts (60 characters each) one a line."""
    agree = result.agreement
    scale = result.scale_part.mean(axis=0)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("#", "index", "id", "influence", "via scale", "agree"):
        table.add_column(name, justify="left" if name == "id" else "right", no_wrap=True)
    table.add_column("prompt / + chosen / - rejected", overflow="fold")
    for rank, i in enumerate(rows, 1):
        p = pairs[i]
        texts = f"{_short(p.prompt)}\n+ {_short(p.chosen)}\n- {_short(p.rejected)}"
        table.add_row(
            str(rank), str(i), Text(p.id or ""), f"{result.influence[i]:+.4g}",
            f"{scale[i]:+.3g}", f"{agree[i]:.0%}", Text(texts),  # user text: no markup
        )  # fmt: skip
    return table


def _rows(result: InfluenceResult, pairs: list[PreferencePair]) -> Any:
    for i, p in enumerate(pairs):
        yield {
            "index": i,
            "id": p.id,
            "influence": float(result.influence[i]),
            "helps": bool(result.influence[i] > 0),
            "members": result.members[:, i].tolist(),
            "scale_part": float(result.scale_part[:, i].mean()),
            "trained": bool(result.trained[i]),
            "prompt": p.prompt,
            "chosen": p.chosen,
            "rejected": p.rejected,
        }


@with_flags(opts=ExplainOptions, read=PairReadOptions, cache=CacheOptions)
def explain(
    model: Annotated[Path, typer.Option(help="Model folder written by train (linear heads).")],
    data: Annotated[
        Path, typer.Option(help="The model's training pairs, read with the flags train used.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="JSONL file: every training pair's influence, in --data order."),
    ] = None,
    *,
    opts: ExplainOptions,
    read: PairReadOptions,
    cache: CacheOptions,
) -> None:
    """Which training pairs made the model prefer the test pair's chosen response: the
    influence of each (Koh & Liang 2017; docs/explain.md), the predicted change of the
    test margin if that pair were removed and the model retrained, for linear heads."""
    rejects = beside(out or Path(data.name), data.stem + ".rejects.jsonl")
    check_outputs(
        files={"--out": out} | read.rejects_output(rejects),
        folders={"--cache-dir": cache.cache_dir},
        inputs={"--model": model, "--data": data, "--pair-file": opts.pair_file},
    )
    test = _test_pair(opts, read)
    rm = check_explainable(load_reward_model(model, **cache.kwargs))
    pairs = read_pairs(data, read, rejects)
    t0 = time.perf_counter()
    try:
        result = influence(rm, pairs, test, damping=opts.damping, progress=True)
    except DataError as exc:
        if exc.path is not None:
            raise
        raise DataError(exc.reason, path=str(data)) from None
    elapsed = time.perf_counter() - t0
    helping, hurting = result.top(opts.top)
    members = ", ".join(f"{m:+.4g}" for m in result.member_margins)
    gap = ", ".join(f"{m:+.2g}" for m in result.unconverged)
    err.print(
        f"Test pair {test.id}: margin {result.test_margin:+.4g} (members {members}); "
        f"{len(pairs)} training pairs explained in {elapsed:.1f}s; margin change if each "
        f"member were trained to convergence: {gap}",
        markup=False,
        highlight=False,
    )
    for note in result.notes:
        err.print(f"note: {note}", markup=False, highlight=False)
    gap, largest = float(np.abs(result.unconverged).max()), float(np.abs(result.influence).max())
    if gap > largest:
        err.print(
            f"warning: training to convergence would move a member's test margin by {gap:.3g}, "
            f"more than any one pair's influence ({largest:.3g}): these influences describe "
            "the converged model, not this one; for a faithful explanation retrain with "
            "--val-fraction 0 and enough epochs (docs/explain.md).",
            markup=False,
            highlight=False,
        )
    stdout.print(_table(result, pairs, helping, f"Top {len(helping)} helping pairs"))
    stdout.print(_table(result, pairs, hurting, f"Top {len(hurting)} hurting pairs"))
    if out is not None:
        n = write_jsonl_atomic(out, _rows(result, pairs))
        err.print(f"Wrote {n} rows → [bold]{out}[/]")


def register(app: typer.Typer) -> None:
    """Add ``explain`` to the main app."""
    app.command()(explain)


__all__ = ["ExplainOptions", "explain", "parse_pair", "register"]
