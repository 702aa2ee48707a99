"""``rewardhedge train-gpm``: fit a general preference model on preference pairs and save it.

A general preference model (Zhang et al. 2024; ``docs/general-preference.md``) scores a
pair directly, P(a ≻ b) = σ(v_aᵀ R v_b), so it can hold cyclic preferences that no
reward can; it gives no scalar reward. Its folder opens with ``load_reward_model``, so
``rewardhedge eval --model FOLDER --data PAIRS`` evaluates it (``score``, ``bon`` and
``serve``, which need one reward per response, refuse it with one line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rewardhedge.cli.common import (
    CacheOptions,
    ConfigFileOpt,
    EvalDataOpt,
    ModelOutOpt,
    PairReadOptions,
    TrainDataOpt,
)
from rewardhedge.cli.flags import Flag, FlagSet, with_flags
from rewardhedge.cli.train import (
    check_calibration_pairs,
    evaluate_and_print,
    feature_dim,
    fit_with_progress,
    prepare_training,
    refuse_oversized,
)
from rewardhedge.estimators.general_preference import GeneralPreferenceModel
from rewardhedge.models.general_preference import GPMConfig
from rewardhedge.types import PreferencePair

GPM_FLAGS = FlagSet(
    GPMConfig,
    (
        Flag("n_members", "members"),
        Flag("dim", "gpm_dim"),
        Flag("hidden"),
        Flag("epochs"),
        Flag("lr"),
        Flag("l2"),
        Flag("val_fraction"),
        Flag("patience"),
        Flag("bootstrap"),
        Flag("seed"),
        Flag("calibration_folds"),
        Flag("encoder.kind", "encoder"),
        Flag("encoder.path", "encoder_path"),
        Flag("encoder.max_length"),
    ),
)
"""The ``GPMConfig`` fields ``train-gpm`` takes as flags (a flag left out keeps the
``--config`` file's value, else the default)."""


def gpm_heads_bytes(config: GPMConfig, in_dim: int) -> int:
    """About the memory training the heads takes: every member's parameters (float32)
    with their gradients and AdamW's two moments."""
    h, m = config.hidden, config.dim
    per_member = (in_dim + 1) * m if h == 0 else (in_dim + 1) * h + (h + 1) * m
    return 4 * 4 * config.n_members * per_member


def check_gpm_memory(config: GPMConfig) -> None:
    """Refuse before any work heads that would not fit in memory."""
    in_dim = feature_dim(config.encoder)
    if in_dim is not None:
        refuse_oversized(
            gpm_heads_bytes(config, in_dim),
            f"--members {config.n_members} × --gpm-dim {config.dim} (hidden {config.hidden})",
            "use fewer or smaller",
        )


def fit_and_save(
    pairs: list[PreferencePair], config: GPMConfig, out: Path, *, cache: CacheOptions
) -> GeneralPreferenceModel:
    """Fit with progress bars (or log lines) and save the folder."""
    model = GeneralPreferenceModel(config, **cache.kwargs)
    label = f"train GPM K={config.n_members} dim={config.dim}"
    return fit_with_progress(model, pairs, out, label=label, folds=config.calibration_folds)


@with_flags(flags=GPM_FLAGS, read=PairReadOptions, cache=CacheOptions)
def train_gpm(
    data: TrainDataOpt,
    out: ModelOutOpt,
    config: ConfigFileOpt = None,
    eval_data: EvalDataOpt = None,
    *,
    flags: dict[str, Any],
    read: PairReadOptions,
    cache: CacheOptions,
) -> None:
    """Train a general preference model on preference pairs and save it: skew-symmetric
    pair scores P(a ≻ b) = σ(v_a·R·v_b) on a frozen encoder, which can hold cyclic
    preferences. It gives no scalar reward: evaluate it with eval on pairs."""
    cfg, pairs, test = prepare_training(
        GPM_FLAGS, check_gpm_memory, data, out, config, eval_data, flags, read, cache
    )
    check_calibration_pairs(len(pairs), cfg.calibration_folds)
    model = fit_and_save(pairs, cfg, out, cache=cache)
    if test is not None:
        evaluate_and_print(model, test, out, eval_data)


def register(app: typer.Typer) -> None:
    """Add ``train-gpm`` to the main app."""
    app.command(name="train-gpm")(train_gpm)
