"""``rewardhedge train`` and ``score``: fit a frozen-encoder model with its uncertainty,
and score items with a saved model of either kind."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from rewardhedge.cli.common import (
    CacheOptions,
    ConfigFileOpt,
    PairReadOptions,
    ReadOptions,
    RuleOptions,
    err,
    out_print,
    progress_log,
    read_train_eval,
    report_load,
    training_progress,
)
from rewardhedge.cli.flags import Flag, FlagSet, with_flags
from rewardhedge.config import EnsembleConfig
from rewardhedge.data import load_items, write_json_atomic, write_jsonl_atomic
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.estimators.loading import load_reward_model
from rewardhedge.report.terminal import format_metrics
from rewardhedge.types import PreferencePair
from rewardhedge.uncertainty.reward_rule import RewardRule

TRAIN_FLAGS = FlagSet(
    EnsembleConfig,
    (
        Flag("n_members", "members"),
        Flag("head.kind", "head"),
        Flag("train.epochs"),
        Flag("train.lr"),
        Flag("train.weight_decay"),
        Flag("train.l2"),
        Flag("train.center_coef"),
        Flag("train.val_fraction"),
        Flag("train.patience"),
        Flag("train.bootstrap"),
        Flag("train.seed"),
        Flag("encoder.kind", "encoder"),
        Flag("encoder.path", "encoder_path"),
        Flag("encoder.max_length"),
        Flag("encoder.layers"),
        Flag("encoder.normalize"),
        Flag("encoder.views"),
        Flag("uncertainty.estimator"),
        Flag("uncertainty.mc_samples"),
        Flag("uncertainty.laplace_samples"),
        Flag("uncertainty.laplace_prior"),
        Flag("uncertainty.error_predictor"),
        Flag("uncertainty.calibration_folds"),
        Flag("member_norm"),
        Flag("diversity.kind", "diversity"),
        Flag("diversity.subspace_fraction"),
    ),
)
"""The ``EnsembleConfig`` fields ``train`` takes as flags (a flag left out keeps the
``--config`` file's value, else the default)."""


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


def train_model(
    pairs,
    config: EnsembleConfig,
    out_dir: Path,
    *,
    cache: CacheOptions,
    rule: RewardRule | None = None,
) -> EnsembleRewardModel:
    """Fit with progress bars and save the folder."""
    model = EnsembleRewardModel(config, rule=rule, **cache.kwargs)
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


@with_flags(flags=TRAIN_FLAGS, read=PairReadOptions, rule=RuleOptions, cache=CacheOptions)
def train(
    data: Annotated[Path, typer.Option(help="Training pairs (prompt, chosen, rejected).")],
    out: Annotated[Path, typer.Option(help="Model folder to write.")],
    config: ConfigFileOpt = None,
    eval_data: Annotated[
        Path | None, typer.Option(help="Held-out pairs to evaluate after training.")
    ] = None,
    *,
    flags: dict[str, Any],
    read: PairReadOptions,
    rule: RuleOptions,
    cache: CacheOptions,
) -> None:
    """Train a reward model with uncertainty on preference pairs and save it (with its
    temperature and, from --aggregate/--transform, the reward rule that score/bon use)."""
    cfg = TRAIN_FLAGS.config(config, flags)
    pairs, test = read_train_eval(data, eval_data, out, read)
    model = train_model(pairs, cfg, out, cache=cache, rule=rule.rule(RewardRule()))
    if test is not None:
        evaluate_and_print(model, test, out, eval_data)


def evaluate_and_print(model: Any, test: list[PreferencePair], out: Path, source: Any) -> None:
    """Evaluate a freshly trained model on held-out pairs: ``OUT/eval.json`` and a table."""
    metrics = model.evaluate(test, progress=True)
    write_json_atomic(out / "eval.json", metrics)
    out_print(format_metrics(metrics, title=f"Evaluation on {source}"))


@with_flags(read=ReadOptions, rule=RuleOptions, cache=CacheOptions)
def score(
    model: Annotated[Path, typer.Option(help="Model folder written by train or finetune.")],
    data: Annotated[Path, typer.Option(help="Items to score (prompt, response).")],
    out: Annotated[Path, typer.Option(help="JSONL file of rewards to write.")],
    *,
    read: ReadOptions,
    rule: RuleOptions,
    cache: CacheOptions,
) -> None:
    """Score (prompt, response) items: the reward (the model's aggregation and transform,
    or the flags'), mean, epistemic and aleatoric variance, members."""
    rm = load_reward_model(model, **cache.kwargs)
    reward_rule = rule.rule(rm.rule)
    items, report = load_items(data, **read.kwargs(out.with_name(out.name + ".rejects.jsonl")))
    report_load(report)
    t0 = time.perf_counter()
    est = rm.score_items(items, progress=True)
    reward = reward_rule.apply(est, groups=[item.prompt for item in items])
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
        f"reward = {reward_rule.label()} → [bold]{out}[/]"
    )


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``score`` to the main app."""
    app.command()(train)
    app.command()(score)
