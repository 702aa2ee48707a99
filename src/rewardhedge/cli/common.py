"""Command-line options and helpers that several commands share: data flags, cache flags,
how a reward is aggregated and transformed, and reporting what a load kept."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rewardhedge.data import load_pairs, parse_field_map
from rewardhedge.progress_log import LogProgress, draws_live
from rewardhedge.types import LoadReport
from rewardhedge.uncertainty.reward_rule import RewardRule

err = Console(stderr=True)

# Options shared by several commands.
FieldOpt = Annotated[
    list[str] | None,
    typer.Option("--field", help="Map our field to a column: prompt=question (repeatable)."),
]
FormatOpt = Annotated[
    str, typer.Option(help="jsonl, json, csv, parquet, hf (a datasets folder) or auto.")
]
DialogueOpt = Annotated[
    str, typer.Option(help="hh: split HH-RLHF dialogues at the last Assistant turn; auto; none.")
]
SplitOpt = Annotated[str | None, typer.Option(help="Split of a Hugging Face DatasetDict folder.")]
SkipOpt = Annotated[
    bool,
    typer.Option("--skip-invalid", help="Write bad rows to a rejects file instead of stopping."),
]
RejectsOpt = Annotated[Path | None, typer.Option(help="Where --skip-invalid writes bad rows.")]
CacheDirOpt = Annotated[Path | None, typer.Option(help="Embedding cache folder.")]
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help="Do not read or write the embedding cache.")
]

MemberNormOpt = Annotated[
    str | None,
    typer.Option(
        help="Per-member normalisation on the training items before every aggregation "
        "but the mean: standardize (default), center or none."
    ),
]
AggregateOpt = Annotated[
    str | None,
    typer.Option(
        "--aggregate", help="mean, wco, uwo, lcb, brme or softmin (default: the model's)."
    ),
]
LamOpt = Annotated[
    float | None,
    typer.Option(help="λ of uwo (× variance, default 0.5) or brme (weight of the mean)."),
]
BetaOpt = Annotated[
    float | None, typer.Option(help="β of lcb (× std, default 1) or softmin (temperature).")
]
TransformOpt = Annotated[
    str | None,
    typer.Option(
        help="none, centered_logsigmoid, par or running_mean, applied after the aggregation "
        "(default: the model's). References are per prompt: the median of its items."
    ),
]
ReferenceOpt = Annotated[
    str | None,
    typer.Option(help="centered_logsigmoid reference of a prompt: median (default) or mean."),
]


def rule_from_flags(
    base: RewardRule,
    aggregate: str | None,
    lam: float | None,
    beta: float | None,
    transform: str | None,
    reference: str | None,
) -> RewardRule:
    """``base`` (a model's saved rule) with whatever the flags override."""
    if aggregate is None and (lam is not None or beta is not None):
        aggregate = base.aggregation.name
    agg = base.aggregation.to_dict() if aggregate is None else {"name": aggregate}
    if aggregate is not None:
        agg.update({k: v for k, v in (("lam", lam), ("beta", beta)) if v is not None})
    tf = base.transform.to_dict() if transform is None else {"name": transform}
    if reference is not None:
        tf["reference"] = reference
    return RewardRule.from_dict({"aggregation": agg, "transform": tf})


def report_load(report: LoadReport) -> None:
    """One stderr line: rows kept, rows rejected and where they went."""
    line = f"[bold]{escape(str(report.path))}[/]: {report.n_kept} rows kept of {report.n_read} read"
    if report.n_rejected:
        line += f", [yellow]{report.n_rejected} rejected[/] → {escape(str(report.rejects_path))}"
    err.print(line, soft_wrap=True)


def load_pairs_cli(
    path: Path, fields, format, dialogue, split, skip_invalid, rejects, default_rejects
):
    """``load_pairs`` with the CLI's flags, reporting what was kept and rejected."""
    pairs, report = load_pairs(
        path,
        fields=parse_field_map(fields or []),
        format=format,
        dialogue=dialogue,
        split=split,
        skip_invalid=skip_invalid,
        rejects_path=(rejects or default_rejects) if skip_invalid else None,
    )
    report_load(report)
    return pairs


def load_train_eval_cli(
    data: Path,
    eval_data: Path | None,
    out: Path,
    fields,
    format,
    dialogue,
    split,
    skip_invalid,
    rejects,
):
    """Training pairs and, when given, held-out pairs, both read before any training
    starts; rejected rows go next to the model folder ``out``."""
    train = load_pairs_cli(
        data, fields, format, dialogue, split, skip_invalid, rejects,
        out.with_name(out.name + ".rejects.jsonl"),
    )  # fmt: skip
    if eval_data is None:
        return train, None
    test = load_pairs_cli(
        eval_data, fields, format, dialogue, split, skip_invalid, None,
        out.with_name(out.name + ".eval-rejects.jsonl"),
    )  # fmt: skip
    return train, test


def training_progress(disable: bool = False) -> Progress:
    """The bar training commands draw on stderr: label, bar, count, time, a status text.
    Off where stderr is not a terminal: there :func:`progress_log` prints instead."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=err,
        disable=disable or not draws_live(err),
    )


def progress_log(label: str, *, disable: bool = False, **kwargs) -> LogProgress:
    """Plain progress lines on stderr (first update, every 30 s or
    ``$REWARDHEDGE_LOG_EVERY_S``, the end), printing only where stderr is not a
    terminal, the rich bars' counterpart for logs; ``kwargs`` go to ``LogProgress``."""
    return LogProgress(label, enabled=not disable and not draws_live(err), **kwargs)
