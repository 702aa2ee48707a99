"""``rewardhedge train`` and ``score``: fit a frozen-encoder model with its uncertainty,
and score items with a saved model of either kind."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from rewardhedge.cli.common import (
    CacheOptions,
    ConfigFileOpt,
    EvalDataOpt,
    ModelOutOpt,
    PairReadOptions,
    ReadOptions,
    RuleOptions,
    TrainDataOpt,
    beside,
    check_outputs,
    check_train_outputs,
    err,
    flag_errors,
    out_print,
    progress_log,
    read_train_eval,
    report_load,
    training_progress,
)
from rewardhedge.cli.flags import Flag, FlagSet, with_flags
from rewardhedge.config import (
    HASH_VIEWS,
    EncoderConfig,
    EncoderKind,
    EnsembleConfig,
    EstimatorKind,
    HeadKind,
    Objective,
    Pooling,
    View,
)
from rewardhedge.data import load_items, write_json_atomic, write_jsonl_atomic
from rewardhedge.errors import ConfigError, DataError
from rewardhedge.estimators.ensemble import EnsembleRewardModel, check_calibration_size
from rewardhedge.estimators.loading import load_reward_model
from rewardhedge.report.terminal import format_metrics
from rewardhedge.types import PreferencePair, RatedItem
from rewardhedge.uncertainty.reward_rule import RewardRule

TRAIN_FLAGS = FlagSet(
    EnsembleConfig,
    (
        Flag("n_members", "members"),
        Flag("head.kind", "head"),
        Flag("head.spectral_norm"),
        Flag("head.length_head"),
        Flag("train.length_decorrelation"),
        Flag("train.objective"),
        Flag("train.regression_weight"),
        Flag("head.bins"),
        Flag("head.hl_sigma"),
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
    unc = config.uncertainty
    label = f"train K={config.n_members} {config.head.kind} {unc.estimator}"
    return fit_with_progress(model, pairs, out_dir, label=label, folds=unc.calibration_folds)


def train_on_ratings(
    items: list[RatedItem],
    config: EnsembleConfig,
    out_dir: Path,
    data: Path,
    *,
    cache: CacheOptions,
    rule: RewardRule | None = None,
) -> EnsembleRewardModel:
    """``train`` on a file of rated items: the rating objectives only, no calibration
    (there are no pairs to calibrate on)."""
    objective = config.train.objective
    if objective not in (Objective.REGRESSION, Objective.HL_GAUSS):
        raise DataError(
            f"holds rated items (prompt, response, score), which train.objective "
            f"{objective.value!r} cannot use: it needs preference pairs. Pass --objective "
            "regression or --objective hl_gauss.",
            path=str(data),
        )
    if config.uncertainty.error_predictor:
        raise ConfigError(
            "--error-predictor is fitted on held-out preference pairs, and --data holds "
            "rated items; drop --error-predictor."
        )
    err.print(
        f"{data}: rated items, so no temperature is fitted (there are no pairs); "
        "--calibration-folds is not used."
    )
    model = EnsembleRewardModel(config, rule=rule, **cache.kwargs)
    label = f"train K={config.n_members} {config.head.kind} {objective.value} on ratings"
    return fit_with_progress(
        model, items, out_dir, label=label, folds=0, fit=model.fit_ratings, n_texts=len(items)
    )


def fit_with_progress(
    model: Any,
    pairs,
    out_dir: Path,
    *,
    label: str,
    folds: int,
    fit: Any = None,
    n_texts: int | None = None,
) -> Any:
    """``model.fit(pairs)`` (or ``fit(pairs)``) with an epoch bar and, when ``folds``, a
    bar for the cross-fitted calibration (log lines when stderr is not a terminal); then
    save the folder. Shared by ``train`` and ``train-gpm``."""
    n_texts = 2 * len(pairs) if n_texts is None else n_texts
    err.print(f"Encoding {n_texts} texts with [bold]{model.config.encoder.kind}[/] …")
    t0 = time.perf_counter()
    with training_progress() as progress:
        bar = EpochBar(progress, label)
        fold_task = progress.add_task("calibrate (cross-fit)", total=folds, status="")
        fold_log = progress_log("calibrate (cross-fit)", noun="fold")

        def on_fold(done: int, total: int) -> None:
            progress.update(fold_task, completed=done, total=total)
            if fold_log.done == 0:  # the pace counts from the first fold
                fold_log.restart(done)
            fold_log.update(done, total)

        if not folds:
            progress.remove_task(fold_task)
        (fit or model.fit)(pairs, progress=True, on_epoch=bar, on_fold=on_fold)
        bar.close()
        fold_log.close()
    err.print(
        f"Fitted in {time.perf_counter() - t0:.1f}s; best epochs {model.best_epoch_}; "
        f"temperature {model.temperature:.3f}"
    )
    model.save(out_dir)
    err.print(f"Saved model to [bold]{out_dir}[/]")
    return model


MINILM_HIDDEN = 384
"""Hidden size of the shipped all-MiniLM-L6-v2."""


def check_encoder_path(encoder: EncoderConfig) -> None:
    """``--encoder-path`` is read only by the ``hf`` encoder; refuse it with the others."""
    if encoder.path is not None and encoder.kind is not EncoderKind.HF:
        raise ConfigError(
            f"--encoder-path is only read with --encoder hf, not --encoder "
            f"{encoder.kind.value}; drop --encoder-path or pass --encoder hf."
        )


def feature_dim(encoder: EncoderConfig) -> int | None:
    """The width of the features ``encoder`` makes, from the config alone (``None``: an
    ``hf`` folder whose config.json does not say)."""
    if encoder.kind is EncoderKind.HASHING:
        return encoder.dim * max(len(encoder.views), 1)
    hidden = MINILM_HIDDEN
    if encoder.kind is EncoderKind.HF:
        try:
            info = json.loads((Path(str(encoder.path)) / "config.json").read_text("utf-8"))
            hidden = int(info["hidden_size"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    if encoder.views:
        return sum(encoder.dim if View(v) in HASH_VIEWS else hidden for v in encoder.views)
    return hidden * (2 if encoder.pooling is Pooling.DUAL else 1)


def heads_bytes(config: EnsembleConfig, dim: int) -> int:
    """About the memory training the heads takes: every member's parameters (float32)
    with their gradients and AdamW's two moments, plus the ``(K, dim)`` member masks."""
    k, h = config.n_members, config.head.hidden
    linear = config.head.kind is HeadKind.LINEAR
    per_member = dim + 1 if linear else dim * h + 2 * h + 1
    if config.uncertainty.estimator is EstimatorKind.GAUSSIAN:
        per_member += (dim if linear else h) + 1
    return 4 * (4 * k * per_member + k * dim)


def memory_limit() -> int:
    """Half this machine's memory (16 GiB where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


def refuse_oversized(need: int, what: str, advice: str) -> None:
    """A one-line error, before any work, when ``need`` bytes exceed :func:`memory_limit`;
    ``what`` names the flags and the sizes, ``advice`` what to change."""
    limit = memory_limit()
    if need > limit:
        raise ConfigError(
            f"{what}: the heads would need about {need / 1e9:,.1f} GB, more than half "
            f"this machine's memory ({limit / 1e9:,.1f} GB); {advice}."
        )


def check_heads_memory(config: EnsembleConfig) -> None:
    """Refuse before any work an ensemble whose heads would not fit in memory."""
    dim = feature_dim(config.encoder)
    if dim is not None:
        refuse_oversized(
            heads_bytes(config, dim),
            f"--members {config.n_members} ({config.n_members} members × {dim} features, "
            f"{config.head.kind.value} heads)",
            "use fewer members",
        )


@with_flags(flags=TRAIN_FLAGS, read=PairReadOptions, rule=RuleOptions, cache=CacheOptions)
def train(
    data: TrainDataOpt,
    out: ModelOutOpt,
    config: ConfigFileOpt = None,
    eval_data: EvalDataOpt = None,
    *,
    flags: dict[str, Any],
    read: PairReadOptions,
    rule: RuleOptions,
    cache: CacheOptions,
) -> None:
    """Train a reward model with uncertainty on preference pairs and save it (with its
    temperature and, from --aggregate/--transform, the reward rule that score/bon use)."""
    cfg, pairs, test = prepare_training(
        TRAIN_FLAGS, check_heads_memory, data, out, config, eval_data, flags, read, cache,
        rated_items=True,
    )  # fmt: skip
    if pairs and isinstance(pairs[0], RatedItem):
        model = train_on_ratings(pairs, cfg, out, data, cache=cache, rule=rule.rule(RewardRule()))
        if test is not None:
            evaluate_and_print(model, test, out, eval_data)
        return
    check_calibration_pairs(len(pairs), cfg.uncertainty.calibration_folds)
    check_targets(pairs, cfg, data)
    model = train_model(pairs, cfg, out, cache=cache, rule=rule.rule(RewardRule()))
    if test is not None:
        evaluate_and_print(model, test, out, eval_data)


def prepare_training(
    flag_set: FlagSet,
    check_memory: Callable[[Any], None],
    data: Path,
    out: Path,
    config: Path | None,
    eval_data: Path | None,
    flags: dict[str, Any],
    read: PairReadOptions,
    cache: CacheOptions,
    *,
    rated_items: bool = False,
) -> tuple[Any, list[Any], list[PreferencePair] | None]:
    """What ``train`` and ``train-gpm`` do before fitting, in this order: refuse outputs
    that cannot be written, make the config (``flag_set`` over ``--config``), refuse a
    misplaced ``--encoder-path`` and heads that ``check_memory`` finds too large, then
    read ``--data`` and ``--eval-data``. Returns the config, the training rows, the
    held-out pairs (or ``None``)."""
    inputs = {"--data": data, "--eval-data": eval_data, "--config": config}
    folders = {"--cache-dir": cache.cache_dir}
    check_train_outputs(out, read, eval_data, inputs=inputs, folders=folders)
    cfg = flag_set.config(config, flags)
    check_encoder_path(cfg.encoder)
    check_memory(cfg)
    pairs, test = read_train_eval(data, eval_data, out, read, rated_items=rated_items)
    return cfg, pairs, test


def check_calibration_pairs(n_pairs: int, folds: int) -> None:
    """Enough pairs for ``--calibration-folds`` ``folds``, else a one-line error that
    says how to turn calibration off."""
    check_calibration_size(n_pairs, folds, hint="pass --calibration-folds 0")


def check_targets(pairs: list[PreferencePair], config: EnsembleConfig, data: Path) -> None:
    """Before encoding anything: the pairs hold what ``config``'s objective needs (a
    rating objective, ratings), said against the file they came from."""
    from rewardhedge.train.pair_targets import pair_ratings  # training code: only here

    try:
        pair_ratings(pairs, config)
    except DataError as exc:
        raise DataError(exc.reason, path=str(data)) from exc


def evaluate_and_print(
    model: Any, test: list[PreferencePair], out: Path, source: Any, *, title: str | None = None
) -> None:
    """Evaluate a freshly trained model on held-out pairs: ``OUT/eval.json`` and a table
    titled ``title`` (default: ``Evaluation on SOURCE``)."""
    metrics = model.evaluate(test, progress=True)
    write_json_atomic(out / "eval.json", metrics)
    out_print(format_metrics(metrics, title=title or f"Evaluation on {source}"))


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
    rejects = beside(out, out.name + ".rejects.jsonl")
    check_outputs(
        files={"--out": out} | read.rejects_output(rejects),
        folders={"--cache-dir": cache.cache_dir},
        inputs={"--model": model, "--data": data},
    )
    rm = load_reward_model(model, **cache.kwargs)
    reward_rule = rule.rule(rm.rule)
    with flag_errors():
        items, report = load_items(data, **read.kwargs(rejects))
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
