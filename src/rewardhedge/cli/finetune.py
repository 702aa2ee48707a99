"""``rewardhedge finetune``: fine-tune a local transformer into a reward model or ensemble.

The same command runs on one CPU, one GPU, or many GPUs through Accelerate:
``accelerate launch -m rewardhedge finetune ...`` (or ``torchrun``). Only the
main process prints, saves and evaluates.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress

from rewardhedge.cli_options import (
    AggregateOpt,
    BetaOpt,
    DialogueOpt,
    FieldOpt,
    FormatOpt,
    LamOpt,
    MemberNormOpt,
    ReferenceOpt,
    RejectsOpt,
    SkipOpt,
    SplitOpt,
    TransformOpt,
    load_train_eval_cli,
    progress_log,
    rule_from_flags,
    training_progress,
)
from rewardhedge.config import from_dict
from rewardhedge.config_finetune import FinetuneConfig
from rewardhedge.data import write_json_atomic
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.finetuned import FinetunedRewardModel
from rewardhedge.report.terminal import format_metrics
from rewardhedge.train.finetune import mixed_precision
from rewardhedge.train.top_layers import check_layer_count
from rewardhedge.uncertainty.reward_rule import RewardRule

err = Console(stderr=True)
stdout = Console()

LORA_FLAGS = {"lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout"}


def finetune_config(config_file: Path | None, flags: dict[str, Any]) -> FinetuneConfig:
    """A JSON config file (``FinetuneConfig.to_dict()`` keys) overridden by the flags given."""
    cfg = FinetuneConfig()
    if config_file is not None:
        try:
            data = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{config_file}: cannot read the config file ({exc}).") from exc
        cfg = from_dict(FinetuneConfig, data)
    lora = {LORA_FLAGS[k]: v for k, v in flags.items() if k in LORA_FLAGS and v is not None}
    rest = {k: v for k, v in flags.items() if k not in LORA_FLAGS and v is not None}
    if "members" in rest:
        rest["n_members"] = rest.pop("members")
    return replace(cfg, **rest, lora=replace(cfg.lora, **lora) if lora else cfg.lora)


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


def finetune(
    backbone: Annotated[
        str,
        typer.Option(
            help="Local Hugging Face model folder (safetensors), or `minilm` for the "
            "all-MiniLM-L6-v2 that ships with rewardhedge."
        ),
    ],
    data: Annotated[Path, typer.Option(help="Training pairs (prompt, chosen, rejected).")],
    out: Annotated[Path, typer.Option(help="Model folder to write.")],
    eval_data: Annotated[
        Path | None,
        typer.Option(help="Held-out pairs: evaluated during training, then used to calibrate."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="JSON FinetuneConfig file; flags override it.")
    ] = None,
    ensemble: Annotated[
        str | None,
        typer.Option(help="single (default), multihead, lora, independent or mc_dropout."),
    ] = None,
    members: Annotated[
        int | None, typer.Option(help="Members K (default 4 for ensembles).")
    ] = None,
    use_lora: Annotated[
        bool | None, typer.Option("--lora/--full", help="LoRA adapters or all weights.")
    ] = None,
    lora_r: Annotated[int | None, typer.Option()] = None,
    lora_alpha: Annotated[int | None, typer.Option()] = None,
    lora_dropout: Annotated[float | None, typer.Option()] = None,
    objective: Annotated[
        str | None, typer.Option(help="bt (default), regression or bt_regression.")
    ] = None,
    center_coef: Annotated[float | None, typer.Option(help="Reward-centering coefficient.")] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Tokens per sequence (1024); the prompt is cut first.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Pairs per micro-batch (8).")] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Micro-batches per step (1).")] = None,
    lr: Annotated[float | None, typer.Option(help="1e-5 full, 1e-4 LoRA by default.")] = None,
    weight_decay: Annotated[float | None, typer.Option()] = None,
    epochs: Annotated[float | None, typer.Option()] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Optimizer steps; overrides epochs.")
    ] = None,
    warmup_ratio: Annotated[float | None, typer.Option()] = None,
    schedule: Annotated[str | None, typer.Option(help="cosine, linear or constant.")] = None,
    precision: Annotated[str | None, typer.Option(help="auto (bf16 on GPU), bf16 or fp32.")] = None,
    gradient_checkpointing: Annotated[
        bool | None, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing")
    ] = None,
    compile: Annotated[bool | None, typer.Option("--compile/--no-compile")] = None,
    group_by_length: Annotated[
        bool | None,
        typer.Option(
            "--group-by-length/--no-group-by-length",
            help="Batches of similar lengths (default: on, off with --packing).",
        ),
    ] = None,
    attention: Annotated[
        str | None,
        typer.Option(help="attn_implementation: auto, sdpa, eager, flash_attention_2."),
    ] = None,
    packing: Annotated[
        bool | None,
        typer.Option(
            "--packing/--no-packing",
            help="Pack sequences end to end, position ids restarting (padding-free).",
        ),
    ] = None,
    train_top_layers: Annotated[
        int | None,
        typer.Option(
            help="Train only the top N layers (full weights) and the heads, on cached "
            "outputs of the frozen layers below (BERT-style encoders; not with LoRA)."
        ),
    ] = None,
    eval_every: Annotated[int | None, typer.Option(help="Evaluate every N steps.")] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Write a resumable checkpoint every N steps.")
    ] = None,
    keep_checkpoints: Annotated[int | None, typer.Option()] = None,
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="Checkpoint folder (default: OUT.checkpoints).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="Continue from the newest checkpoint.")
    ] = True,
    seed: Annotated[int | None, typer.Option()] = None,
    member_norm: MemberNormOpt = None,
    aggregate: AggregateOpt = None,
    lam: LamOpt = None,
    beta: BetaOpt = None,
    transform: TransformOpt = None,
    reference: ReferenceOpt = None,
    field: FieldOpt = None,
    format: FormatOpt = "auto",
    dialogue: DialogueOpt = "auto",
    split: SplitOpt = None,
    skip_invalid: SkipOpt = False,
    rejects: RejectsOpt = None,
) -> None:
    """Fine-tune a local transformer (full or LoRA) into a reward model or an ensemble
    (multihead, lora, independent, mc_dropout), with resumable checkpoints; multi-GPU
    with `accelerate launch -m rewardhedge finetune ...`."""
    from accelerate import Accelerator

    names = {f.name for f in dataclasses.fields(FinetuneConfig)} | set(LORA_FLAGS) | {"members"}
    names.discard("backbone")
    given = {name: value for name, value in locals().items() if name in names}
    if backbone == "minilm":
        from rewardhedge.encoders.transformer import minilm_path

        backbone = str(minilm_path())
    cfg = replace(finetune_config(config, given), backbone=backbone)
    if cfg.train_top_layers is not None:
        check_layer_count(cfg.backbone, cfg.train_top_layers)
    accelerator = Accelerator(
        mixed_precision=mixed_precision(cfg), gradient_accumulation_steps=cfg.grad_accum
    )
    main = accelerator.is_main_process
    pairs, test = load_train_eval_cli(
        data, eval_data, out, field, format, dialogue, split, skip_invalid, rejects
    )
    rule = rule_from_flags(RewardRule(), aggregate, lam, beta, transform, reference)
    ckpt = checkpoint_dir or (
        out.with_name(out.name + ".checkpoints") if cfg.checkpoint_every else None
    )
    model = FinetunedRewardModel(cfg, rule=rule, device=accelerator.device)
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
    rep = model.report_
    if rep.resumed_from_step:
        err.print(f"Resumed from the checkpoint at step {rep.resumed_from_step} in {ckpt}.")
    err.print(
        f"Trained {rep.steps} steps in {time.perf_counter() - t0:.1f}s: "
        f"{rep.pairs_per_second:,.1f} pairs/s, {rep.tokens_per_second:,.0f} tokens/s, "
        f"padding {rep.padding_fraction:.1%}; {rep.n_truncated} of {rep.n_pairs} pairs were "
        f"longer than {cfg.max_length} tokens and were truncated (prompt cut from the left), "
        "none dropped."
    )
    model.save(out)
    err.print(f"Saved model to [bold]{out}[/] (temperature {model.temperature:.3f})")
    if test is not None:
        metrics = model.evaluate(test, progress=True)
        write_json_atomic(out / "eval.json", metrics)
        stdout.print(
            format_metrics(metrics, title=f"Evaluation on {eval_data}"),
            markup=False,
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add ``finetune`` to the main app."""
    app.command()(finetune)
