"""The ``rewardhedge`` command line: train, score, eval (here); sandbox, bon, overopt, demo, report; serve.

Every command is a thin layer over the Python API, so the CLI and library
produce the same objects and files. Errors raised on purpose
(``RewardHedgeError``) print one clear line and exit with code 2.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress

from rewardhedge import __version__, cli_eval, cli_finetune, cli_optimize, cli_serve
from rewardhedge.cli_options import (
    AggregateOpt,
    BetaOpt,
    CacheDirOpt,
    DialogueOpt,
    FieldOpt,
    FormatOpt,
    LamOpt,
    MemberNormOpt,
    NoCacheOpt,
    ReferenceOpt,
    RejectsOpt,
    SkipOpt,
    SplitOpt,
    TransformOpt,
    load_train_eval_cli,
    progress_log,
    report_load,
    rule_from_flags,
    training_progress,
)
from rewardhedge.config import EnsembleConfig, from_dict
from rewardhedge.data import (
    load_items,
    parse_field_map,
    write_json_atomic,
    write_jsonl_atomic,
)
from rewardhedge.errors import ConfigError, RewardHedgeError
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.estimators.loading import load_reward_model
from rewardhedge.report.terminal import format_metrics
from rewardhedge.uncertainty.reward_rule import RewardRule

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Reward models that know when not to be trusted.",
)
err = Console(stderr=True)
out = Console()


class EpochBar:
    """Progress fed by the trainer's per-epoch callback: a rich bar on a terminal, else a
    plain line every 30 s (``REWARDHEDGE_LOG_EVERY_S``) and at the end."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress = progress
        self.task = progress.add_task(label, total=None, status="")
        self.log = progress_log(label, noun="epoch", unit="epochs")

    def __call__(self, epoch: int, n_epochs: int, info: dict[str, Any]) -> None:
        fields = [f"loss {info['train_loss']:.3f}"]
        if "val_loss" in info:
            vl = info["val_loss"]
            fields.append(f"val {sum(vl) / len(vl):.3f}")
        self.progress.update(self.task, completed=epoch, total=n_epochs, status=" ".join(fields))
        if self.log.done == 0:  # the pace counts from the first epoch (after encoding)
            self.log.restart(epoch)
        self.log.update(epoch, n_epochs, *fields)

    def close(self) -> None:
        """The final log line (early stopping ends before the last epoch)."""
        self.log.close()


FLAG_FIELDS: dict[str, tuple[str, str]] = {
    "members": ("ensemble", "n_members"),
    "head": ("head", "kind"),
    "epochs": ("train", "epochs"),
    "lr": ("train", "lr"),
    "weight_decay": ("train", "weight_decay"),
    "l2": ("train", "l2"),
    "center_coef": ("train", "center_coef"),
    "val_fraction": ("train", "val_fraction"),
    "patience": ("train", "patience"),
    "bootstrap": ("train", "bootstrap"),
    "seed": ("train", "seed"),
    "encoder": ("encoder", "kind"),
    "encoder_path": ("encoder", "path"),
    "max_length": ("encoder", "max_length"),
    "layers": ("encoder", "layers"),
    "normalize": ("encoder", "normalize"),
    "estimator": ("uncertainty", "estimator"),
    "mc_samples": ("uncertainty", "mc_samples"),
    "laplace_samples": ("uncertainty", "laplace_samples"),
    "laplace_prior": ("uncertainty", "laplace_prior"),
    "error_predictor": ("uncertainty", "error_predictor"),
    "calibration_folds": ("uncertainty", "calibration_folds"),
    "member_norm": ("ensemble", "member_norm"),
    "diversity": ("diversity", "kind"),
    "subspace_fraction": ("diversity", "subspace_fraction"),
    "views": ("encoder", "views"),
}
"""CLI flag -> (config section, field). A flag left at ``None`` keeps the config's value."""


def build_config(config_file: Path | None, **flags: Any) -> EnsembleConfig:
    """A config file (JSON, same keys as ``EnsembleConfig.to_dict()``) overridden by flags."""
    cfg = EnsembleConfig()
    if config_file is not None:
        try:
            data = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{config_file}: cannot read the config file ({exc}).") from exc
        cfg = from_dict(EnsembleConfig, data)
    changes: dict[str, dict[str, Any]] = {
        "ensemble": {},
        "head": {},
        "train": {},
        "encoder": {},
        "uncertainty": {},
        "diversity": {},
    }
    for flag, value in flags.items():
        if value is not None:
            section, field = FLAG_FIELDS[flag]
            changes[section][field] = value
    try:
        return replace(
            cfg,
            **changes["ensemble"],
            head=replace(cfg.head, **changes["head"]),
            train=replace(cfg.train, **changes["train"]),
            encoder=replace(cfg.encoder, **changes["encoder"]),
            uncertainty=replace(cfg.uncertainty, **changes["uncertainty"]),
            diversity=replace(cfg.diversity, **changes["diversity"]),
        )
    except ConfigError as exc:  # name the flag that set the bad value
        for flag, value in flags.items():
            section, field = FLAG_FIELDS[flag]
            if value is not None and str(exc).startswith(f"{section}.{field} "):
                raise ConfigError(f"--{flag.replace('_', '-')}: {exc}") from exc
        raise


def train_model(
    pairs,
    config: EnsembleConfig,
    out_dir: Path,
    *,
    cache_dir: Path | None,
    use_cache: bool,
    rule: RewardRule | None = None,
) -> EnsembleRewardModel:
    """Fit with progress bars and save the folder (shared by ``train`` and ``demo``)."""
    model = EnsembleRewardModel(config, cache_dir=cache_dir, use_cache=use_cache, rule=rule)
    err.print(f"Encoding {2 * len(pairs)} texts with [bold]{config.encoder.kind}[/] …")
    t0 = time.perf_counter()
    unc = config.uncertainty
    with training_progress() as progress:
        label = f"train K={config.n_members} {config.head.kind} {unc.estimator}"
        bar = EpochBar(progress, label)
        folds = progress.add_task("calibrate (cross-fit)", total=unc.calibration_folds, status="")
        fold_log = progress_log("calibrate (cross-fit)", noun="fold")

        def on_fold(done: int, total: int) -> None:
            progress.update(folds, completed=done, total=total)
            if fold_log.done == 0:  # the pace counts from the first fold
                fold_log.restart(done)
            fold_log.update(done, total)

        if not unc.calibration_folds:
            progress.remove_task(folds)
        model.fit(pairs, progress=True, on_epoch=bar, on_fold=on_fold)
        bar.close()
        fold_log.close()
    err.print(
        f"Fitted in {time.perf_counter() - t0:.1f}s; best epochs {model.best_epoch_}; "
        f"temperature {model.temperature:.3f}"
    )
    model.save(out_dir)
    err.print(f"Saved model to [bold]{out_dir}[/]")
    return model


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Training pairs (prompt, chosen, rejected).")],
    out: Annotated[Path, typer.Option(help="Model folder to write.")],
    members: Annotated[int | None, typer.Option(help="Ensemble size K (default 5).")] = None,
    head: Annotated[str | None, typer.Option(help="linear (default) or mlp.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="JSON config file; flags override it.")
    ] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    weight_decay: Annotated[float | None, typer.Option()] = None,
    l2: Annotated[float | None, typer.Option(help="L2 penalty on head weights.")] = None,
    center_coef: Annotated[float | None, typer.Option(help="Reward-centering coefficient.")] = None,
    val_fraction: Annotated[float | None, typer.Option(help="Held out for early stopping.")] = None,
    patience: Annotated[int | None, typer.Option()] = None,
    bootstrap: Annotated[bool | None, typer.Option("--bootstrap/--no-bootstrap")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    encoder: Annotated[str | None, typer.Option(help="minilm (default), hf or hashing.")] = None,
    encoder_path: Annotated[
        str | None, typer.Option(help="Local model folder for --encoder hf.")
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Token budget for prompt + response.")
    ] = None,
    layers: Annotated[
        int | None, typer.Option(help="Pool the mean of the last N hidden layers (default 4).")
    ] = None,
    normalize: Annotated[
        bool | None,
        typer.Option("--normalize/--no-normalize", help="L2-normalise each pooled view."),
    ] = None,
    estimator: Annotated[
        str | None,
        typer.Option(help="Uncertainty: ensemble (default), mc_dropout, gaussian or laplace."),
    ] = None,
    mc_samples: Annotated[
        int | None, typer.Option(help="MC dropout masks per head at scoring time (32).")
    ] = None,
    laplace_samples: Annotated[
        int | None, typer.Option(help="Laplace posterior samples per head (64).")
    ] = None,
    laplace_prior: Annotated[
        str | None, typer.Option(help="Laplace prior precision: train (default) or evidence.")
    ] = None,
    error_predictor: Annotated[
        bool | None,
        typer.Option(
            "--error-predictor/--no-error-predictor",
            help="Train a DEUP error predictor; epistemic becomes its predicted excess loss.",
        ),
    ] = None,
    calibration_folds: Annotated[
        int | None,
        typer.Option(help="Cross-fitting folds for the temperature (5; 0 = no calibration)."),
    ] = None,
    member_norm: MemberNormOpt = None,
    diversity: Annotated[
        str | None,
        typer.Option(
            help="What makes members differ: bootstrap (default: seeds + resamples), "
            "subspace (a random feature subset each) or views (one encoder view each)."
        ),
    ] = None,
    subspace_fraction: Annotated[
        float | None,
        typer.Option(help="--diversity subspace: share of the features each member sees (0.5)."),
    ] = None,
    views: Annotated[
        str | None,
        typer.Option(
            help="Encoder views, comma-separated (ctx_l4, ctx_last, ctx_low, ctx_cls, all_mean, "
            "whole, hash, hash_bigram, hash_char); --diversity views picks a default set."
        ),
    ] = None,
    aggregate: AggregateOpt = None,
    lam: LamOpt = None,
    beta: BetaOpt = None,
    transform: TransformOpt = None,
    reference: ReferenceOpt = None,
    eval_data: Annotated[
        Path | None, typer.Option(help="Held-out pairs to evaluate after training.")
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
    """Train a reward model with uncertainty on preference pairs and save it (with its
    temperature and, from --aggregate/--transform, the reward rule that score/bon use)."""
    flags = {name: value for name, value in locals().items() if name in FLAG_FIELDS}
    cfg = build_config(config, **flags)
    pairs, test = load_train_eval_cli(
        data, eval_data, out, field, format, dialogue, split, skip_invalid, rejects
    )
    rule = rule_from_flags(RewardRule(), aggregate, lam, beta, transform, reference)
    model = train_model(pairs, cfg, out, cache_dir=cache_dir, use_cache=not no_cache, rule=rule)
    if test is not None:
        metrics = model.evaluate(test, progress=True)
        write_json_atomic(out / "eval.json", metrics)
        out_print(format_metrics(metrics, title=f"Evaluation on {eval_data}"))


def out_print(text: str) -> None:
    out.print(text, markup=False, highlight=False)


@app.command()
def score(
    model: Annotated[Path, typer.Option(help="Model folder written by train.")],
    data: Annotated[Path, typer.Option(help="Items to score (prompt, response).")],
    out: Annotated[Path, typer.Option(help="JSONL file of rewards to write.")],
    field: FieldOpt = None,
    format: FormatOpt = "auto",
    split: SplitOpt = None,
    skip_invalid: SkipOpt = False,
    rejects: RejectsOpt = None,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    aggregate: AggregateOpt = None,
    lam: LamOpt = None,
    beta: BetaOpt = None,
    transform: TransformOpt = None,
    reference: ReferenceOpt = None,
) -> None:
    """Score (prompt, response) items: the reward (the model's aggregation and transform,
    or the flags'), mean, epistemic and aleatoric variance, members."""
    rm = load_reward_model(model, cache_dir=cache_dir, use_cache=not no_cache)
    rule = rule_from_flags(rm.rule, aggregate, lam, beta, transform, reference)
    items, report = load_items(
        data,
        fields=parse_field_map(field or []),
        format=format,
        split=split,
        skip_invalid=skip_invalid,
        rejects_path=(rejects or out.with_name(out.name + ".rejects.jsonl"))
        if skip_invalid
        else None,
    )
    report_load(report)
    t0 = time.perf_counter()
    est = rm.score_items(items, progress=True)
    reward = rule.apply(est, groups=[item.prompt for item in items])
    elapsed = time.perf_counter() - t0
    rows = (
        {
            "id": item.id,
            "reward": float(reward[i]),
            "mean": float(est.mean[i]),
            "epistemic": float(est.epistemic[i]),
            "aleatoric": float(est.aleatoric[i]),
            "std": float(est.std[i]),
            "members": est.members[:, i].tolist(),
        }
        for i, item in enumerate(items)
    )
    n = write_jsonl_atomic(out, rows)
    err.print(
        f"Scored {n} items in {elapsed:.1f}s ({n / max(elapsed, 1e-9):.0f} items/s), "
        f"reward = {rule.label()} → [bold]{out}[/]"
    )


def version_callback(value: bool) -> None:
    if value:
        out.print(f"rewardhedge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    """Reward models that know when not to be trusted."""


cli_eval.register(app)
cli_finetune.register(app)
cli_optimize.register(app)
cli_serve.register(app)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for the console script and ``python -m rewardhedge``.

    Usage errors are reported by typer (exit 2); errors this library raises on
    purpose print ``error: <message>`` on one line and exit 2; anything else is
    a bug and keeps its traceback.
    """
    try:
        app(args=list(argv) if argv is not None else None, prog_name="rewardhedge")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except RewardHedgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
