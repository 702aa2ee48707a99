"""The ``rewardhedge eval`` command: pairs, one-to-many rows or best-of-n pools.

A thin layer over :mod:`rewardhedge.estimators.evaluation`: it loads the data (telling
the task from the first row unless ``--task`` says), runs the suite, prints a
table and writes the JSON that ``rewardhedge report`` renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from rewardhedge.cli_options import (
    CacheDirOpt,
    DialogueOpt,
    FieldOpt,
    FormatOpt,
    NoCacheOpt,
    RejectsOpt,
    SkipOpt,
    SplitOpt,
    load_pairs_cli,
    report_load,
)
from rewardhedge.config import EvalConfig
from rewardhedge.data import (
    EvalTask,
    load_one_to_many,
    load_pools,
    parse_field_map,
    sniff_task,
    write_json_atomic,
)
from rewardhedge.data.perturb import parse_perturbations
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.evaluation import evaluate_one_to_many, evaluate_pairs, evaluate_pools
from rewardhedge.estimators.loading import load_reward_model
from rewardhedge.report.terminal import format_metrics, format_pools

err = Console(stderr=True)
out = Console()


def _pairs_only(task: EvalTask, **given: Any) -> None:
    """Abstention and OOD options are defined on pairs; say so rather than ignore them."""
    used = [name for name, value in given.items() if value is not None]
    if used and task is not EvalTask.PAIRS:
        flags = ", ".join("--" + name.replace("_", "-") for name in used)
        raise ConfigError(f"{flags} only apply to preference pairs, but the data holds {task}.")


def eval_cmd(
    model: Annotated[Path, typer.Option(help="Model folder written by train.")],
    data: Annotated[
        Path,
        typer.Option(
            help="Held-out pairs, one-to-many rows {prompt, chosen, rejected[]} "
            "or pools {prompt, candidates[], gold[]}."
        ),
    ],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the metrics as JSON here.")
    ] = None,
    task: Annotated[
        str,
        typer.Option(help="auto (from the first row), pairs, one-to-many or pools."),
    ] = "auto",
    against: Annotated[
        Path | None,
        typer.Option(help="A second model folder: paired bootstrap test and STARC distance."),
    ] = None,
    perturb: Annotated[
        str,
        typer.Option(
            help="Prompt perturbations to test ranking consistency under: none, all, or a "
            "comma list of lowercase, uppercase, whitespace, template."
        ),
    ] = "none",
    perturb_file: Annotated[
        Path | None,
        typer.Option(help="User perturbations, JSONL rows {prompt, perturbed, kind?}."),
    ] = None,
    batch_check: Annotated[
        int,
        typer.Option(
            help="Items re-scored at batch sizes 1 and 64 for the invariance control (0: off)."
        ),
    ] = 64,
    reps: Annotated[int, typer.Option(help="Bootstrap resamples for confidence intervals.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of every bootstrap.")] = 0,
    abstain_alpha: Annotated[
        float | None,
        typer.Option(help="Fit an abstention rule whose kept pairs err at most this often."),
    ] = None,
    abstain_delta: Annotated[
        float, typer.Option(help="Allowed probability that the rule's error exceeds alpha.")
    ] = 0.1,
    abstain_on: Annotated[
        str,
        typer.Option(
            help="Uncertainty to threshold: prob_entropy, member_std, mutual_information, "
            "margin_abs_inverse, epistemic_sum (aleatoric_sum for gaussian heads)."
        ),
    ] = "prob_entropy",
    calibration: Annotated[
        Path | None,
        typer.Option(help="Calibration pairs for --abstain-alpha (default: half of --data)."),
    ] = None,
    ood: Annotated[
        Path | None,
        typer.Option(
            help="Pairs from another distribution: report how well each uncertainty flags them."
        ),
    ] = None,
    field: FieldOpt = None,
    format: FormatOpt = "auto",
    dialogue: DialogueOpt = "auto",
    split: SplitOpt = None,
    skip_invalid: SkipOpt = False,
    rejects: RejectsOpt = None,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Evaluate a model: accuracy with 95% CI (RewardBench sections when the subsets are
    RewardBench's), one-to-many and best-of-n scores, length and batch-size controls,
    calibration, uncertainty quality, member statistics, STARC distances and, on request,
    a paired test against a second model and prompt-perturbation consistency."""
    kind = EvalTask.parse(task, "task")
    fields = parse_field_map(field or [])
    if kind is EvalTask.AUTO:
        kind = sniff_task(data, fields=fields, format=format, split=split)
    _pairs_only(kind, abstain_alpha=abstain_alpha, calibration=calibration, ood=ood)
    perturbations = parse_perturbations(perturb)
    if kind is EvalTask.POOLS and (against is not None or perturbations or perturb_file):
        raise ConfigError("--against and --perturb apply to pairs and one-to-many rows.")
    config = EvalConfig(
        reps=reps,
        seed=seed,
        batch_check_items=batch_check,
        perturbations=perturbations,
        perturbation_file=str(perturb_file) if perturb_file is not None else None,
    )
    rm = load_reward_model(model, cache_dir=cache_dir, use_cache=not no_cache)
    other = None
    if against is not None:
        other = (
            str(against),
            load_reward_model(against, cache_dir=cache_dir, use_cache=not no_cache),
        )
    default_rejects = (json_out or Path(data.name)).with_name(data.stem + ".rejects.jsonl")
    rejects_path = (rejects or default_rejects) if skip_invalid else None
    title = f"{model} on {data}"

    def load(loader: Any) -> list[Any]:
        rows, report = loader(
            data,
            fields=fields,
            format=format,
            split=split,
            skip_invalid=skip_invalid,
            rejects_path=rejects_path,
        )
        report_load(report)
        return rows

    if kind is EvalTask.POOLS:
        metrics = evaluate_pools(rm, load(load_pools), config=config, progress=True)
        text = format_pools(metrics, title=title)
    elif kind is EvalTask.ONE_TO_MANY:
        rows = load(load_one_to_many)
        metrics = evaluate_one_to_many(rm, rows, config=config, other=other, progress=True)
        text = format_metrics(metrics, title=title)
    else:
        pairs = load_pairs_cli(
            data, field, format, dialogue, split, skip_invalid, rejects, default_rejects
        )
        extra: dict[str, Any] = {}
        if abstain_alpha is not None:
            extra = {
                "abstain_alpha": abstain_alpha,
                "abstain_delta": abstain_delta,
                "abstain_on": abstain_on,
            }
            if calibration is not None:
                extra["calibration_pairs"] = load_pairs_cli(
                    calibration, field, format, dialogue, split, skip_invalid, None, default_rejects
                )
        if ood is not None:
            extra["ood_pairs"] = load_pairs_cli(
                ood, field, format, dialogue, split, skip_invalid, None, default_rejects
            )
        metrics = evaluate_pairs(rm, pairs, config=config, other=other, progress=True, **extra)
        text = format_metrics(metrics, title=title)
    metrics["model"] = str(model)
    metrics["data"] = str(data)
    out.print(text, markup=False, highlight=False)
    if json_out is not None:
        write_json_atomic(json_out, metrics)
        err.print(f"Wrote {json_out}")


def register(app: typer.Typer) -> None:
    """Add ``eval`` to the main app."""
    app.command(name="eval")(eval_cmd)
