"""What several commands share: the consoles, progress displays, and the typed option
groups (how a data file is read, the embedding cache, how a reward is aggregated and
transformed), each a dataclass whose attribute docstrings are the flags' help."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rewardhedge.data import load_pairs, load_rated_items, parse_field_map
from rewardhedge.data.loaders import holds_rated_items
from rewardhedge.errors import ConfigError, DataError
from rewardhedge.progress_log import LogProgress, draws_live
from rewardhedge.types import LoadReport, PreferencePair
from rewardhedge.uncertainty.reward_rule import RewardRule

err = Console(stderr=True)
out = Console()

ConfigFileOpt = Annotated[
    Path | None, typer.Option("--config", help="JSON config file; flags override it.")
]
TrainDataOpt = Annotated[Path, typer.Option(help="Training pairs (prompt, chosen, rejected).")]
ModelOutOpt = Annotated[Path, typer.Option(help="Model folder to write.")]
EvalDataOpt = Annotated[
    Path | None, typer.Option(help="Held-out pairs to evaluate after training.")
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

    def __post_init__(self) -> None:
        if self.rejects is not None and not self.skip_invalid:
            raise ConfigError(
                "--rejects is only used with --skip-invalid (without it a bad row stops the "
                "run); add --skip-invalid or drop --rejects."
            )

    @property
    def fields(self) -> dict[str, str]:
        return parse_field_map(self.field or [])

    def rejects_path(self, default: Path | None) -> Path | None:
        """Where bad rows go: ``--rejects`` or ``default``, only with ``--skip-invalid``."""
        return (self.rejects or default) if self.skip_invalid else None

    def rejects_output(self, default: Path | None) -> dict[str, Path]:
        """The rejects file as an output for :func:`check_outputs`, named by its flag."""
        path = self.rejects_path(default)
        if path is None:
            return {}
        return {"--rejects" if self.rejects is not None else "the rejects file": path}

    def kwargs(self, default_rejects: Path | None) -> dict[str, Any]:
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

    def __post_init__(self) -> None:
        if self.no_cache and self.cache_dir is not None:
            raise ConfigError(
                "--no-cache and --cache-dir contradict each other (no cache is read or "
                "written with --no-cache); give one of them."
            )

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
        """``base`` (a model's saved rule) with what the flags override; a bad value is
        refused naming its flag."""
        with rule_flag_errors():
            return self._rule(base)

    def _rule(self, base: RewardRule) -> RewardRule:
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

    def _rule(self, base: RewardRule) -> RewardRule:
        rule = super()._rule(base)
        tf = base.transform.to_dict() if self.transform is None else {"name": self.transform}
        if self.reference is not None:
            tf["reference"] = self.reference
        return RewardRule.from_dict({"aggregation": rule.aggregation.to_dict(), "transform": tf})


_RULE_FLAGS = (
    ("aggregation ==", "--aggregate"),
    ("lam", "--lam"),
    ("beta", "--beta"),
    ("transform reference", "--reference"),
    ("transform", "--transform"),
)
"""Which flag a reward-rule error is about, by the first match in its message."""


@contextmanager
def flag_named_errors(
    table: Sequence[tuple[str, str]], default: str | None = None
) -> Iterator[None]:
    """Prefix a ``ConfigError`` with the flag whose field its message names: the first
    ``(text, flag)`` of ``table`` whose text is in the message, else ``default``."""
    try:
        yield
    except ConfigError as exc:
        text = str(exc)
        flag = next((f for key, f in table if key in text), default)
        if flag is None or text.startswith(flag):
            raise
        raise ConfigError(f"{flag}: {text}") from exc


def rule_flag_errors() -> AbstractContextManager[None]:
    """Prefix a reward rule's ``ConfigError`` with the flag that set the bad value."""
    return flag_named_errors(_RULE_FLAGS)


# -- outputs -------------------------------------------------------------------------------
Named = Mapping[str, Path | None] | Iterable[tuple[str, Path | None]]
"""Paths by the flag that gives them (``{"--out": path}``, or pairs when a label repeats);
``None`` (a flag not given) is skipped."""

MODEL_MANIFEST = "manifest.json"
"""The file that marks a rewardhedge model folder (``models.io.MANIFEST_FILE``)."""


def beside(path: Path, name: str) -> Path | None:
    """The file ``name`` in ``path``'s folder; ``None`` when ``path`` has no name (empty or
    ``.``, which :func:`check_outputs` refuses)."""
    return path.with_name(name) if path.name else None


def _named(paths: Named | None) -> list[tuple[str, Path]]:
    items = paths.items() if isinstance(paths, Mapping) else (paths or ())
    return [(label, Path(path)) for label, path in items if path is not None]


def _shown(label: str, path: Path) -> str:
    return f"{label} {str(path)!r}"


def _is_empty(path: Path) -> bool:
    """An empty path (typer reads ``""`` as ``.``) or the current folder itself."""
    return str(path) in ("", ".")


def _check_creatable(label: str, path: Path, what: str) -> None:
    """``path`` can be made: its nearest existing ancestor is a folder we may write in."""
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(
            f"{_shown(label, path)}: {str(parent)!r} is a file, so the {what} cannot be made."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{_shown(label, path)}: no permission to write in {str(parent)!r}.")


def _check_file(label: str, path: Path) -> None:
    if _is_empty(path):
        raise ConfigError(f"{label} is empty (or '.'); name a file to write.")
    if path.is_dir():
        raise ConfigError(f"{_shown(label, path)} is a folder; name a file to write.")
    _check_creatable(label, path, "file")


def _check_folder(label: str, path: Path) -> None:
    if _is_empty(path):
        raise ConfigError(f"{label} is empty (or '.'); name a folder to write into.")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{_shown(label, path)} is a file; name a folder.")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{_shown(label, path)}: no permission to write in this folder.")
    else:
        _check_creatable(label, path, "folder")


def _check_model_folder(label: str, path: Path) -> None:
    """A model folder is written beside itself and renamed into place: it must be new,
    empty or a model folder, and its parent writable."""
    _check_folder(label, path)
    if path.is_dir() and not (path / MODEL_MANIFEST).exists() and any(path.iterdir()):
        raise ConfigError(
            f"{_shown(label, path)} exists and is not a rewardhedge model folder; "
            "name a new or empty folder."
        )
    _check_creatable(label, path, "model folder")


def _model_files(folder: Path) -> set[Path]:
    """The files of a model folder that writing over would corrupt (its manifest lists them)."""
    manifest = folder / MODEL_MANIFEST
    try:
        listed = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        return set()
    return {(folder / name).resolve() for name in [MODEL_MANIFEST, *listed]}


def check_outputs(
    *,
    files: Named | None = None,
    folders: Named | None = None,
    models: Named | None = None,
    inputs: Named | None = None,
) -> None:
    """Refuse, before any work, an output that cannot be written or would overwrite an input.

    ``files``: a file must not be a folder, its parent must exist or be creatable, and
    writable. ``folders``: a folder must not be a file and must be writable or creatable.
    ``models``: model folders (replaced as a whole when saved): as folders, and new, empty
    or a model folder, with no input and no other output inside. ``inputs``: what the
    command reads; no output may resolve (through symlinks and relative paths) to one of
    them or to a file of an input model folder, and no two ``files`` may be the same
    file. Empty paths are refused. Each message is one line naming the flag(s).

    Raises:
        ConfigError: the first problem found; nothing has been written.
    """
    out_files, out_folders, out_models = _named(files), _named(folders), _named(models)
    ins = _named(inputs)
    for label, path in out_folders:
        _check_folder(label, path)
    for label, path in out_models:
        _check_model_folder(label, path)
    for label, path in out_files:
        _check_file(label, path)
    resolved_ins = [(label, path, path.resolve()) for label, path in ins]
    seen: dict[Path, tuple[str, Path]] = {}
    for label, path in out_files + out_folders + out_models:
        target = path.resolve()
        for in_label, in_path, source in resolved_ins:
            if target == source:
                raise ConfigError(
                    f"{_shown(label, path)} is the same file as {in_label} {str(in_path)!r}: "
                    "writing it would overwrite the input; name another path."
                )
            if source.is_dir() and target in _model_files(source):
                raise ConfigError(
                    f"{_shown(label, path)} is a file of the model folder {in_label} "
                    f"{str(in_path)!r}; writing it would break the model. Name another path."
                )
        if (label, path) not in out_files:
            continue
        if target in seen:
            other, other_path = seen[target]
            raise ConfigError(
                f"{_shown(label, path)} and {other} {str(other_path)!r} are the same file; "
                "name two different ones."
            )
        seen[target] = (label, path)
    for label, path in out_models:
        target = path.resolve()
        for in_label, in_path, source in resolved_ins:
            if source.is_relative_to(target):
                raise ConfigError(
                    f"{in_label} {str(in_path)!r} is inside {_shown(label, path)}, which "
                    "saving the model replaces; move it or name another folder."
                )
        for out_label, out_path in out_files + out_folders:
            if out_path.resolve().is_relative_to(target):
                raise ConfigError(
                    f"{_shown(out_label, out_path)} is inside {_shown(label, path)}, which "
                    "saving the model replaces; name another path."
                )


# -- library wording → flags ---------------------------------------------------------------
_FLAG_WORDING = (
    (re.compile(r"\bpass format= one of"), "pass --format, one of"),
    (re.compile(r"\bpass split= one of"), "pass --split, one of"),
    (re.compile(r"\buse format='(\w+)'"), r"use --format \1"),
    (re.compile(r"^(format|split|dialogue) =="), r"--\1 =="),
    (re.compile(r"^fields key =="), "--field key =="),
    (re.compile(r"Leave split unset"), "Leave out --split"),
)


def flag_wording(message: str) -> str:
    """A library message with the keyword arguments it names (``format=``, ``split``) as
    the flags that set them on the command line."""
    for pattern, repl in _FLAG_WORDING:
        message = pattern.sub(repl, message)
    return message


@contextmanager
def flag_errors() -> Iterator[None]:
    """Re-raise the loaders' errors worded for the command line (see :func:`flag_wording`)."""
    try:
        yield
    except DataError as exc:
        reason = flag_wording(exc.reason)
        if reason == exc.reason:
            raise
        raise DataError(reason, path=exc.path, line=exc.line, field=exc.field) from exc
    except ConfigError as exc:
        text = flag_wording(str(exc))
        if text == str(exc):
            raise
        raise ConfigError(text) from exc


# -- loading -------------------------------------------------------------------------------
def report_load(report: LoadReport) -> None:
    """One stderr line: rows kept, rows rejected and where they went."""
    line = f"[bold]{escape(str(report.path))}[/]: {report.n_kept} rows kept of {report.n_read} read"
    if report.n_rejected:
        line += f", [yellow]{report.n_rejected} rejected[/] → {escape(str(report.rejects_path))}"
    if report.n_duplicates:
        s = "" if report.n_duplicates == 1 else "s"
        line += f", [yellow]{report.n_duplicates} duplicate pair{s}[/] (kept)"
    err.print(line, soft_wrap=True)


def read_pairs(
    path: Path, read: PairReadOptions, default_rejects: Path | None
) -> list[PreferencePair]:
    """``load_pairs`` with the flags, reporting what was kept and rejected."""
    with flag_errors():
        pairs, report = load_pairs(path, dialogue=read.dialogue, **read.kwargs(default_rejects))
    report_load(report)
    return pairs


def _train_rejects(out: Path) -> tuple[Path | None, Path | None]:
    """Where bad rows of --data and --eval-data go by default: next to the model folder."""
    return beside(out, out.name + ".rejects.jsonl"), beside(out, out.name + ".eval-rejects.jsonl")


def check_train_outputs(
    out: Path,
    read: PairReadOptions,
    eval_data: Path | None,
    *,
    inputs: Named,
    folders: Named | None = None,
) -> None:
    """:func:`check_outputs` for a command that reads pairs with :func:`read_train_eval`
    and saves a model folder ``out``: the folder, the rejects files, ``inputs``."""
    rejects, eval_rejects = _train_rejects(out)
    files = read.rejects_output(rejects)
    if eval_data is not None and read.skip_invalid and eval_rejects is not None:
        files["the --eval-data rejects file"] = eval_rejects
    check_outputs(models={"--out": out}, files=files, folders=folders, inputs=inputs)


def read_train_eval(
    data: Path,
    eval_data: Path | None,
    out: Path,
    read: PairReadOptions,
    *,
    rated_items: bool = False,
) -> tuple[list[Any], list[PreferencePair] | None]:
    """Training pairs (or, with ``rated_items`` and a file of (prompt, response, score)
    rows, :class:`RatedItem` s) and, when given, held-out pairs, both read before any
    training starts; rejected rows go next to the model folder ``out``."""
    rejects, eval_rejects = _train_rejects(out)
    with flag_errors():
        items = rated_items and holds_rated_items(
            data, fields=read.fields, format=read.format, split=read.split
        )
    if items:
        with flag_errors():
            train, report = load_rated_items(data, **read.kwargs(rejects))
        report_load(report)
    else:
        train = read_pairs(data, read, rejects)
    if eval_data is None:
        return train, None
    held_out = replace(read, rejects=None)  # --rejects names where --data's bad rows go
    return train, read_pairs(eval_data, held_out, eval_rejects)


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
