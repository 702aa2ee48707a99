"""What several commands share: the consoles, progress displays, and the typed option
groups (how a data file is read, the embedding cache, how a reward is aggregated and
transformed), each a dataclass whose attribute docstrings are the flags' help."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rewardhedge.data import load_pairs, parse_field_map
from rewardhedge.progress_log import LogProgress, draws_live
from rewardhedge.types import LoadReport, PreferencePair
from rewardhedge.uncertainty.reward_rule import RewardRule

err = Console(stderr=True)
out = Console()

ConfigFileOpt = Annotated[
    Path | None, typer.Option("--config", help="JSON config file; flags override it.")
]


def out_print(text: str) -> None:
    """Plain text (a rendered table) on stdout, without rich markup or highlighting."""
    out.print(text, markup=False, highlight=False)


# -- option groups -------------------------------------------------------------------------
def _flag(*decls: str) -> dict[str, Any]:
    """Field metadata: the flag's spellings when not ``--name``."""
    return {"flag": decls}


@dataclass(frozen=True)
class ReadOptions:
    """How a data file is read."""

    field: list[str] | None = dataclasses.field(default=None, metadata=_flag("--field"))
    """Map our field to a column: prompt=question (repeatable)."""
    format: str = "auto"
    """jsonl, json, csv, parquet, hf (a datasets folder) or auto."""
    split: str | None = None
    """Split of a Hugging Face DatasetDict folder."""
    skip_invalid: bool = dataclasses.field(default=False, metadata=_flag("--skip-invalid"))
    """Write bad rows to a rejects file instead of stopping."""
    rejects: Path | None = None
    """Where --skip-invalid writes bad rows (default: beside the output)."""

    @property
    def fields(self) -> dict[str, str]:
        return parse_field_map(self.field or [])

    def rejects_path(self, default: Path) -> Path | None:
        """Where bad rows go: ``--rejects`` or ``default``, only with ``--skip-invalid``."""
        return (self.rejects or default) if self.skip_invalid else None

    def kwargs(self, default_rejects: Path) -> dict[str, Any]:
        """The keyword arguments every ``load_*`` function takes."""
        return {
            "fields": self.fields,
            "format": self.format,
            "split": self.split,
            "skip_invalid": self.skip_invalid,
            "rejects_path": self.rejects_path(default_rejects),
        }


@dataclass(frozen=True)
class PairReadOptions(ReadOptions):
    """How a file of preference pairs is read."""

    dialogue: str = "auto"
    """hh: split HH-RLHF dialogues at the last Assistant turn; auto; none."""


@dataclass(frozen=True)
class CacheOptions:
    """The embedding cache of frozen-encoder models."""

    cache_dir: Path | None = None
    """Embedding cache folder (default: the user cache folder)."""
    no_cache: bool = dataclasses.field(default=False, metadata=_flag("--no-cache"))
    """Do not read or write the embedding cache."""

    @property
    def kwargs(self) -> dict[str, Any]:
        """What ``load_reward_model`` and the model classes take."""
        return {"cache_dir": self.cache_dir, "use_cache": not self.no_cache}


@dataclass(frozen=True)
class AggregationOptions:
    """How the members' rewards become one (``None``: the model's saved choice)."""

    aggregate: str | None = None
    """mean, wco, uwo, lcb, brme or softmin."""
    lam: float | None = None
    """λ of uwo (× variance) or brme (weight of the mean)."""
    beta: float | None = None
    """β of lcb (× std) or softmin (temperature)."""

    def rule(self, base: RewardRule) -> RewardRule:
        """``base`` (a model's saved rule) with what the flags override."""
        name = self.aggregate
        if name is None and (self.lam is not None or self.beta is not None):
            name = base.aggregation.name
        agg = base.aggregation.to_dict() if name is None else {"name": name}
        if name is not None:
            agg.update({k: v for k, v in (("lam", self.lam), ("beta", self.beta)) if v is not None})
        return RewardRule.from_dict({"aggregation": agg, "transform": base.transform.to_dict()})


@dataclass(frozen=True)
class RuleOptions(AggregationOptions):
    """The aggregation and the transform applied after it (``None``: the model's)."""

    transform: str | None = None
    """none, centered_logsigmoid, par or running_mean, applied after the aggregation.
    References are per prompt: the median of its items."""
    reference: str | None = None
    """centered_logsigmoid reference of a prompt: median or mean."""

    def rule(self, base: RewardRule) -> RewardRule:
        rule = super().rule(base)
        tf = base.transform.to_dict() if self.transform is None else {"name": self.transform}
        if self.reference is not None:
            tf["reference"] = self.reference
        return RewardRule.from_dict({"aggregation": rule.aggregation.to_dict(), "transform": tf})


# -- loading -------------------------------------------------------------------------------
def report_load(report: LoadReport) -> None:
    """One stderr line: rows kept, rows rejected and where they went."""
    line = f"[bold]{escape(str(report.path))}[/]: {report.n_kept} rows kept of {report.n_read} read"
    if report.n_rejected:
        line += f", [yellow]{report.n_rejected} rejected[/] → {escape(str(report.rejects_path))}"
    err.print(line, soft_wrap=True)


def read_pairs(path: Path, read: PairReadOptions, default_rejects: Path) -> list[PreferencePair]:
    """``load_pairs`` with the flags, reporting what was kept and rejected."""
    pairs, report = load_pairs(path, dialogue=read.dialogue, **read.kwargs(default_rejects))
    report_load(report)
    return pairs


def read_train_eval(
    data: Path, eval_data: Path | None, out: Path, read: PairReadOptions
) -> tuple[list[PreferencePair], list[PreferencePair] | None]:
    """Training pairs and, when given, held-out pairs, both read before any training
    starts; rejected rows go next to the model folder ``out``."""
    train = read_pairs(data, read, out.with_name(out.name + ".rejects.jsonl"))
    if eval_data is None:
        return train, None
    held_out = replace(read, rejects=None)  # --rejects names where --data's bad rows go
    return train, read_pairs(eval_data, held_out, out.with_name(out.name + ".eval-rejects.jsonl"))


# -- progress ------------------------------------------------------------------------------
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


def progress_log(label: str, *, disable: bool = False, **kwargs: Any) -> LogProgress:
    """Plain progress lines on stderr (first update, every 30 s or
    ``$REWARDHEDGE_LOG_EVERY_S``, the end), printing only where stderr is not a
    terminal, the rich bars' counterpart for logs; ``kwargs`` go to ``LogProgress``."""
    return LogProgress(label, enabled=not disable and not draws_live(err), **kwargs)


@contextmanager
def stages() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """A rich progress display; ``stage(name, total)`` adds a bar and returns ``advance``.
    Where stderr is not a terminal, each stage prints plain lines instead (its start,
    every 30 s or ``$REWARDHEDGE_LOG_EVERY_S``, its end)."""
    logs: list[LogProgress] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not draws_live(err),
    ) as progress:

        def stage(description: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(description, total=total)
            log = progress_log(description, total=total)
            logs.append(log)

            def advance(k: int) -> None:
                progress.advance(task, k)
                log.advance(k)

            return advance

        yield stage
    for log in logs:
        log.close()
