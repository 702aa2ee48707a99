"""``rewardhedge sandbox``, ``bon`` and ``report``: example data, best-of-n with a saved
model, and the HTML report of lab and eval JSON files (the lab is in ``cli/lab.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from rewardhedge.cli.common import (
    AggregationOptions,
    CacheOptions,
    ReadOptions,
    beside,
    check_outputs,
    err,
    flag_errors,
    out,
)
from rewardhedge.cli.flags import Flag, FlagSet, with_flags
from rewardhedge.data import load_pools, write_json_atomic, write_jsonl_atomic
from rewardhedge.data.sandbox import SandboxConfig, generate_sandbox
from rewardhedge.data.sandbox.export import export_sandbox
from rewardhedge.data.sandbox.export_steps import STEP_FILES, export_step_sandbox
from rewardhedge.data.sandbox.steps import StepSandboxConfig, generate_step_sandbox
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.loading import load_reward_model
from rewardhedge.report.terminal_lab import bon_table

SANDBOX_FLAGS = FlagSet(
    SandboxConfig,
    (
        Flag("train_prompts"),
        Flag("test_prompts"),
        Flag("pool_prompts"),
        Flag("pool_size"),
        Flag("flip_rate"),
        Flag("temperature"),
        Flag("seed"),
    ),
)
"""The ``SandboxConfig`` fields ``sandbox`` takes as flags."""


# -- sandbox -------------------------------------------------------------------------------
@with_flags(flags=SANDBOX_FLAGS)
def sandbox(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the files into.")],
    label_seed: Annotated[int, typer.Option(help="Seed of the training labels.")] = 0,
    steps: Annotated[
        bool,
        typer.Option(
            "--steps",
            help="Also write the multi-step sandbox (same --seed): steps.jsonl for "
            "eval's step task, step_pairs.jsonl to train a process reward model, "
            "outcome_pairs.jsonl for an outcome model, step_sandbox.json.",
        ),
    ] = False,
    *,
    flags: dict[str, Any],
) -> None:
    """Write the sandbox task as example data: train/test pairs and best-of-n pools with gold
    (and with --steps, the multi-step tasks with gold step labels)."""
    written = ("train.jsonl", "test.jsonl", "pools.jsonl", "sandbox.json")
    if steps:
        written += tuple(STEP_FILES.values())
    check_outputs(
        folders={"--out": out_dir}, files={f"--out's {name}": out_dir / name for name in written}
    )
    cfg = SANDBOX_FLAGS.config(None, flags)
    paths = export_sandbox(generate_sandbox(cfg), out_dir, label_seed=label_seed)
    if steps:
        step_sandbox = generate_step_sandbox(StepSandboxConfig(seed=cfg.seed))
        paths |= export_step_sandbox(step_sandbox, out_dir)
    width = max(map(len, paths))
    for name, path in paths.items():
        err.print(f"{name:>{width}}: [bold]{escape(str(path))}[/]")


# -- bon -----------------------------------------------------------------------------------
@with_flags(aggregation=AggregationOptions, read=ReadOptions, cache=CacheOptions)
def bon(
    model: Annotated[Path, typer.Option(help="Model folder written by train or finetune.")],
    pools: Annotated[Path, typer.Option(help="Pools: {prompt, candidates[], gold[]?} per row.")],
    out_file: Annotated[Path, typer.Option("--out", help="JSONL file of picks to write.")],
    summary: Annotated[
        Path | None, typer.Option(help="Also write the gold summary as JSON here.")
    ] = None,
    *,
    aggregation: AggregationOptions,
    read: ReadOptions,
    cache: CacheOptions,
) -> None:
    """Best-of-n: pick each pool's candidate with the highest aggregated reward
    (the model's saved aggregation unless --aggregate is given)."""
    from rewardhedge.optimize.bon import best_of_n, summarise_picks

    rejects = beside(out_file, out_file.name + ".rejects.jsonl")
    check_outputs(
        files={"--out": out_file, "--summary": summary} | read.rejects_output(rejects),
        folders={"--cache-dir": cache.cache_dir},
        inputs={"--model": model, "--pools": pools},
    )
    rm = load_reward_model(model, **cache.kwargs)
    agg = aggregation.rule(rm.rule).aggregation
    with flag_errors():
        rows, report = load_pools(pools, **read.kwargs(rejects))
    err.print(f"[bold]{escape(str(pools))}[/]: {report.n_kept} pools kept of {report.n_read} read")
    picks = best_of_n(rm, rows, agg, progress=True)
    n = write_jsonl_atomic(out_file, (p.to_dict() | {"aggregation": agg.to_dict()} for p in picks))
    err.print(f"Wrote {n} picks ({agg.label()}) → [bold]{escape(str(out_file))}[/]")
    stats = summarise_picks(picks)
    if stats["n_pools_with_gold"]:
        out.print(bon_table(stats, agg.label()))
    if summary is not None:
        write_json_atomic(summary, stats | {"aggregation": agg.to_dict(), "model": str(model)})


# -- report --------------------------------------------------------------------------------
def report(
    inputs: Annotated[list[Path], typer.Argument(help="Lab or eval JSON files.")],
    out_file: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path(
        "report.html"
    ),
    title: Annotated[str | None, typer.Option(help="Page title.")] = None,
) -> None:
    """Render lab (overopt.json) and eval JSON files as one self-contained HTML page."""
    from rewardhedge.report import render_report

    check_outputs(files={"--out": out_file}, inputs=[("the input", path) for path in inputs])
    results = []
    for path in inputs:
        try:
            results.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read JSON ({exc})") from exc
    render_report(results if len(results) > 1 else results[0], out_file, title=title)
    err.print(f"Report: [bold]{escape(str(out_file.resolve()))}[/]")


def register(app: typer.Typer) -> None:
    """Add ``sandbox``, ``bon`` and ``report`` to the main app."""
    app.command()(sandbox)
    app.command()(bon)
    app.command()(report)
