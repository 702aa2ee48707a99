"""``rewardhedge finetune``: fine-tune a local transformer into a reward model or ensemble.

The same command runs on one CPU, one GPU, or many GPUs through Accelerate:
``accelerate launch -m rewardhedge finetune ...`` (or ``torchrun``). Only the
main process prints, saves and evaluates.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from rewardhedge.cli.common import (
    ConfigFileOpt,
    ModelOutOpt,
    PairReadOptions,
    RuleOptions,
    TrainDataOpt,
    check_train_outputs,
    err,
    progress_log,
    read_train_eval,
    training_progress,
)
from rewardhedge.cli.flags import Flag, FlagSet, with_flags
from rewardhedge.cli.train import evaluate_and_print
from rewardhedge.config_finetune import FinetuneConfig
from rewardhedge.estimators.finetuned import FinetunedRewardModel
from rewardhedge.train.finetune import mixed_precision
from rewardhedge.train.top_layers import check_layer_count
from rewardhedge.uncertainty.reward_rule import RewardRule

FINETUNE_FLAGS = FlagSet(
    FinetuneConfig,
    (
        Flag("ensemble"),
        Flag("n_members", "members"),
        Flag("use_lora", decls=("--lora/--full",)),
        Flag("lora.r", "lora_r"),
        Flag("lora.alpha", "lora_alpha"),
        Flag("lora.dropout", "lora_dropout"),
        Flag("objective"),
        Flag("center_coef"),
        Flag("max_length"),
        Flag("batch_size"),
        Flag("grad_accum"),
        Flag("lr"),
        Flag("weight_decay"),
        Flag("epochs"),
        Flag("max_steps"),
        Flag("warmup_ratio"),
        Flag("schedule"),
        Flag("precision"),
        Flag("gradient_checkpointing"),
        Flag("compile"),
        Flag("group_by_length"),
        Flag("attention"),
        Flag("packing"),
        Flag("train_top_layers"),
        Flag("eval_every"),
        Flag("calibration_fraction"),
        Flag("checkpoint_every"),
        Flag("keep_checkpoints"),
        Flag("seed"),
        Flag("member_norm"),
    ),
)
"""The ``FinetuneConfig`` fields ``finetune`` takes as flags."""

BackboneOpt = Annotated[
    str,
    typer.Option(
        help="Local Hugging Face model folder (safetensors), or `minilm` for the "
        "all-MiniLM-L6-v2 that ships with rewardhedge."
    ),
]


def resolve_backbone(backbone: str) -> str:
    """``minilm`` → the shipped MiniLM folder; anything else as given."""
    if backbone == "minilm":
        from rewardhedge.encoders.transformer import minilm_path

        return str(minilm_path())
    return backbone


def finetune_config(config_file: Path | None, flags: dict[str, Any], backbone: str | None = None):
    """The config file overridden by the flags (and the backbone), with the top-layer
    count checked against the backbone's layers before anything loads."""
    cfg = FINETUNE_FLAGS.config(config_file, flags)
    if backbone is not None:
        cfg = replace(cfg, backbone=resolve_backbone(backbone))
    if cfg.backbone and cfg.train_top_layers is not None:
        check_layer_count(cfg.backbone, cfg.train_top_layers)
    return cfg


class StepBar:
    """Progress fed by the trainer: steps, pairs/s, tokens/s, loss, eval accuracy; a rich
    bar on a terminal, else a plain line every 30 s (``REWARDHEDGE_LOG_EVERY_S``)."""

    def __init__(self, progress: Progress, label: str, *, disable: bool = False) -> None:
        self.progress = progress
        self.task = progress.add_task(label, total=None, status="")
        self.log = progress_log(label, disable=disable, noun="step")
        self.loss: float | None = None
        self.acc: float | None = None

    def __call__(self, step: int, total: int, info: dict[str, Any]) -> None:
        self.loss = info.get("loss", self.loss)
        if "eval" in info:
            self.acc = info["eval"].get("accuracy")
        fields = [
            f"{info['pairs_per_second']:,.1f} pairs/s",
            f"{info['tokens_per_second']:,.0f} tok/s",
        ]
        if self.loss is not None:
            fields.append(f"loss {self.loss:.4f}")
        if self.acc is not None:
            fields.append(f"eval acc {self.acc:.3f}")
        self.progress.update(self.task, completed=step, total=total, status=" ".join(fields))
        if self.log.done == 0:  # the ETA counts from the first step (after loading, resuming)
            self.log.restart(step)
        self.log.update(step, total, *fields)

    def close(self) -> None:
        """The final log line (on a terminal, nothing)."""
        self.log.close()


@with_flags(flags=FINETUNE_FLAGS, read=PairReadOptions, rule=RuleOptions)
def finetune(
    backbone: BackboneOpt,
    data: TrainDataOpt,
    out: ModelOutOpt,
    eval_data: Annotated[
        Path | None,
        typer.Option(
            help="Held-out pairs: all evaluated during training; after it, split by prompt "
            "(--calibration-fraction) into pairs that fit the temperature and pairs the "
            "final metrics (OUT/eval.json) are reported on."
        ),
    ] = None,
    config: ConfigFileOpt = None,
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="Checkpoint folder (default: OUT.checkpoints).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="Continue from the newest checkpoint.")
    ] = True,
    *,
    flags: dict[str, Any],
    read: PairReadOptions,
    rule: RuleOptions,
) -> None:
    """Fine-tune a local transformer (full or LoRA) into a reward model or an ensemble
    (multihead, lora, independent, mc_dropout), with resumable checkpoints; multi-GPU
    with `accelerate launch -m rewardhedge finetune ...`."""
    inputs = {"--data": data, "--eval-data": eval_data, "--config": config}
    if Path(backbone).exists():
        inputs["--backbone"] = Path(backbone)
    check_train_outputs(
        out, read, eval_data, inputs=inputs, folders={"--checkpoint-dir": checkpoint_dir}
    )
    from accelerate import Accelerator

    cfg = finetune_config(config, flags, backbone)
    accelerator = Accelerator(
        mixed_precision=mixed_precision(cfg), gradient_accumulation_steps=cfg.grad_accum
    )
    main = accelerator.is_main_process
    pairs, test = read_train_eval(data, eval_data, out, read)
    ckpt = checkpoint_dir or (
        out.with_name(out.name + ".checkpoints") if cfg.checkpoint_every else None
    )
    model = FinetunedRewardModel(cfg, rule=rule.rule(RewardRule()), device=accelerator.device)
    label = f"finetune {cfg.ensemble.value} K={cfg.members}" + (" LoRA" if cfg.lora_enabled else "")
    t0 = time.perf_counter()
    with training_progress(disable=not main) as progress:
        bar = StepBar(progress, label, disable=not main)
        model.fit(
            pairs,
            eval_pairs=test,
            checkpoint_dir=ckpt,
            resume=resume,
            on_step=bar,
            accelerator=accelerator,
            progress=main,
        )
        bar.close()
    if not main:
        return
    _report(model, time.perf_counter() - t0, ckpt)
    model.save(out)
    _save_and_evaluate_lines(model, out, eval_data, test)


def _report(model: FinetunedRewardModel, seconds: float, ckpt: Path | None) -> None:
    """How training went: resumed from where, pace, padding, truncation."""
    rep, cfg = model.report_, model.config
    if rep.resumed_from_step:
        err.print(f"Resumed from the checkpoint at step {rep.resumed_from_step} in {ckpt}.")
    err.print(
        f"Trained {rep.steps} steps in {seconds:.1f}s: "
        f"{rep.pairs_per_second:,.1f} pairs/s, {rep.tokens_per_second:,.0f} tokens/s, "
        f"padding {rep.padding_fraction:.1%}; {rep.n_truncated} of {rep.n_pairs} pairs were "
        f"longer than {cfg.max_length} tokens and were truncated (prompt cut from the left), "
        "none dropped."
    )


def _save_and_evaluate_lines(
    model: FinetunedRewardModel, out: Path, eval_data: Path | None, test: Any
) -> None:
    """Say where the model went and what calibrated it; evaluate on the eval pairs the
    temperature did not see."""
    n_cal = len(model.calibration_pairs_)
    err.print(
        f"Saved model to [bold]{out}[/] (temperature {model.temperature:.3f}, "
        f"fitted on {n_cal} of the eval pairs)"
    )
    held = model.report_pairs_
    if held:
        title = f"Evaluation on {eval_data} (the {len(held)} pairs not used to calibrate)"
        evaluate_and_print(model, held, out, eval_data, title=title)
    elif test is not None:
        err.print(
            f"All {n_cal} eval pairs calibrated the temperature (--calibration-fraction 1): "
            "no metrics reported; run `rewardhedge eval` on other pairs."
        )


def register(app: typer.Typer) -> None:
    """Add ``finetune`` to the main app."""
    app.command()(finetune)
