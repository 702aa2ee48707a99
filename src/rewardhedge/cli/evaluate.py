"""The ``rewardhedge eval`` command: pairs, one-to-many rows, best-of-n pools or steps.

A thin layer over :mod:`rewardhedge.estimators.evaluation`: it loads the data (telling
the task from the first row unless ``--task`` says), runs the suite, prints a
table and writes the JSON that ``rewardhedge report`` renders.

The ``steps`` task (rows with a ``steps`` list, see ``docs/step-sandbox.md``) scores
a process reward model: every step ``t`` of a solution is scored as the item
``(step_prompt(prompt, steps[:t]), steps[t])`` with the model's rule, and
:func:`rewardhedge.evaluate.process.step_metrics` reports per-step accuracy and
ProcessBench's first-error detection.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from rewardhedge.cli.common import (
    CacheOptions,
    PairReadOptions,
    beside,
    check_outputs,
    err,
    flag_errors,
    out,
    read_pairs,
    report_load,
)
from rewardhedge.cli.flags import Flag, FlagSet, with_flags
from rewardhedge.config import EvalConfig
from rewardhedge.data import (
    EvalTask,
    load_one_to_many,
    load_pools,
    read_step_solutions,
    sniff_task,
    write_json_atomic,
)
from rewardhedge.data.perturb import parse_perturbations
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.evaluation import (
    evaluate_one_to_many,
    evaluate_pairs,
    evaluate_pools,
    evaluate_steps,
)
from rewardhedge.estimators.loading import load_reward_model
from rewardhedge.report.terminal import format_metrics, format_pools, format_steps

EVAL_FLAGS = FlagSet(
    EvalConfig,
    (
        Flag("reps"),
        Flag("seed"),
        Flag("batch_check_items", "batch_check"),
        Flag("abstain_alpha"),
        Flag("abstain_delta"),
        Flag("abstain_on"),
    ),
)
"""The ``EvalConfig`` fields ``eval`` takes as flags."""


@dataclass(frozen=True)
class PairExtras:
    """More pairs for an evaluation on pairs."""

    calibration: Path | None = None
    """Calibration pairs for --abstain-alpha (default: a seeded half of --data)."""
    ood: Path | None = None
    """Pairs from another distribution: report how well each uncertainty flags them."""


def _pairs_only(task: EvalTask, **given: Any) -> None:
    """Abstention and OOD options are defined on pairs; say so rather than ignore them."""
    used = [name for name, value in given.items() if value is not None]
    if used and task is not EvalTask.PAIRS:
        flags = ", ".join("--" + name.replace("_", "-") for name in used)
        raise ConfigError(f"{flags} only apply to preference pairs, but the data holds {task}.")


@with_flags(flags=EVAL_FLAGS, extras=PairExtras, read=PairReadOptions, cache=CacheOptions)
def eval_cmd(
    model: Annotated[Path, typer.Option(help="Model folder written by train.")],
    data: Annotated[
        Path,
        typer.Option(
            help="Held-out pairs, one-to-many rows {prompt, chosen, rejected[]}, "
            "pools {prompt, candidates[], gold[]} or step solutions {prompt, steps[], labels[]}."
        ),
    ],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the metrics as JSON here.")
    ] = None,
    task: Annotated[
        str,
        typer.Option(help="auto (from the first row), pairs, one-to-many, pools or steps."),
    ] = "auto",
    step_threshold: Annotated[
        float | None,
        typer.Option(
            help="steps task: a step is called wrong when its reward is below this "
            "(default: fitted by balanced accuracy, cross-fitted over two halves)."
        ),
    ] = None,
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
    *,
    flags: dict[str, Any],
    extras: PairExtras,
    read: PairReadOptions,
    cache: CacheOptions,
) -> None:
    """Evaluate a model: accuracy with 95% CI (RewardBench sections when the subsets are
    RewardBench's), one-to-many and best-of-n scores, length and batch-size controls,
    calibration, uncertainty quality, member statistics, STARC distances and, on request,
    a paired test against a second model and prompt-perturbation consistency; on step
    solutions, per-step accuracy and first-error detection of a process reward model."""
    rejects = beside(json_out or Path(data.name), data.stem + ".rejects.jsonl")
    check_outputs(
        files={"--json": json_out} | read.rejects_output(rejects),
        folders={"--cache-dir": cache.cache_dir},
        inputs={
            "--model": model, "--data": data, "--against": against,
            "--calibration": extras.calibration, "--ood": extras.ood,
            "--perturb-file": perturb_file,
        },
    )  # fmt: skip
    kind = EvalTask.parse(task, "--task")
    if kind is EvalTask.AUTO:
        with flag_errors():
            kind = sniff_task(data, fields=read.fields, format=read.format, split=read.split)
    if kind is EvalTask.STEPS:
        _steps_only_flags(against, perturb, perturb_file, flags, extras)
        if step_threshold is not None and not np.isfinite(step_threshold):
            raise ConfigError(f"--step-threshold == {step_threshold!r}, must be a finite number.")
        config = EVAL_FLAGS.config(None, flags)
        rm = load_reward_model(model, **cache.kwargs)
        metrics, text = _evaluate_steps(rm, data, config, read, rejects, step_threshold,
                                        f"{model} on {data}")  # fmt: skip
        _finish(metrics, text, model, data, json_out)
        return
    if step_threshold is not None:
        raise ConfigError(f"--step-threshold only applies to the {EvalTask.STEPS} task, but the "
                          f"data holds {kind}.")  # fmt: skip
    _pairs_only(kind, abstain_alpha=flags.get("abstain_alpha"), calibration=extras.calibration,
                ood=extras.ood)  # fmt: skip
    perturbations = parse_perturbations(perturb)
    if kind is EvalTask.POOLS and (against is not None or perturbations or perturb_file):
        raise ConfigError("--against and --perturb apply to pairs and one-to-many rows.")
    config = replace(
        EVAL_FLAGS.config(None, flags),
        perturbations=perturbations,
        perturbation_file=str(perturb_file) if perturb_file is not None else None,
    )
    rm = load_reward_model(model, **cache.kwargs)
    other = None if against is None else (str(against), load_reward_model(against, **cache.kwargs))
    title = f"{model} on {data}"
    metrics, text = _evaluate(kind, rm, data, config, other, extras, read, rejects, title)
    _finish(metrics, text, model, data, json_out)


def _finish(
    metrics: dict[str, Any], text: str, model: Path, data: Path, json_out: Path | None
) -> None:
    """Print the table and write the JSON (the only write, after every check)."""
    metrics["model"] = str(model)
    metrics["data"] = str(data)
    out.print(text, markup=False, highlight=False)
    if json_out is not None:
        write_json_atomic(json_out, metrics)
        err.print(f"Wrote {json_out}")


def _steps_only_flags(
    against: Path | None,
    perturb: str,
    perturb_file: Path | None,
    flags: dict[str, Any],
    extras: PairExtras,
) -> None:
    """Refuse the options the step task has no use for, rather than ignore them."""
    given = {
        "--against": against is not None,
        "--perturb": perturb.strip().lower() != "none",
        "--perturb-file": perturb_file is not None,
        "--abstain-alpha": flags.get("abstain_alpha") is not None,
        "--calibration": extras.calibration is not None,
        "--ood": extras.ood is not None,
    }
    used = [name for name, on in given.items() if on]
    if used:
        raise ConfigError(
            f"{', '.join(used)} do not apply to the {EvalTask.STEPS} task (step solutions); "
            "drop them or evaluate pairs."
        )


def _evaluate_steps(
    rm: Any,
    data: Path,
    config: EvalConfig,
    read: PairReadOptions,
    rejects: Path | None,
    threshold: float | None,
    title: str,
) -> tuple[dict[str, Any], str]:
    """Load the step solutions and run :func:`evaluate_steps` on them."""
    with flag_errors():
        solutions, report = read_step_solutions(data, **read.kwargs(rejects))
    report_load(report)
    metrics = evaluate_steps(rm, solutions, config=config, threshold=threshold, progress=True)
    return metrics, format_steps(metrics, title=title)


def _evaluate(
    kind: EvalTask,
    rm: Any,
    data: Path,
    config: EvalConfig,
    other: Any,
    extras: PairExtras,
    read: PairReadOptions,
    rejects: Path | None,
    title: str,
) -> tuple[dict[str, Any], str]:
    """Read ``data`` as ``kind`` and run that evaluation; the metrics and their table."""
    if kind is EvalTask.PAIRS:
        pairs = read_pairs(data, read, rejects)
        others = replace(read, rejects=None)  # --rejects names where --data's bad rows go
        calibration = extras.calibration if config.abstain_alpha is not None else None
        more = {
            "calibration_pairs": calibration and read_pairs(calibration, others, rejects),
            "ood_pairs": extras.ood and read_pairs(extras.ood, others, rejects),
        }
        metrics = evaluate_pairs(rm, pairs, config=config, other=other, progress=True, **more)
        return metrics, format_metrics(metrics, title=title)
    with flag_errors():
        rows, report = (load_pools if kind is EvalTask.POOLS else load_one_to_many)(
            data, **read.kwargs(rejects)
        )
    report_load(report)
    if kind is EvalTask.POOLS:
        metrics = evaluate_pools(rm, rows, config=config, progress=True)
        return metrics, format_pools(metrics, title=title)
    metrics = evaluate_one_to_many(rm, rows, config=config, other=other, progress=True)
    return metrics, format_metrics(metrics, title=title)


def register(app: typer.Typer) -> None:
    """Add ``eval`` to the main app."""
    app.command(name="eval")(eval_cmd)
