"""Fit K reward heads on precomputed pair features, all members in one loop.

Members share minibatches but differ in initialisation and (optionally) in
bootstrap weights, so one batched step trains all K. Early stopping is per
member: each keeps the parameters of its best validation epoch.

The loss is ``train.objective``'s: Bradley-Terry on the pair, squared error on the
sides' ratings, both, or HL-Gauss on the ratings; a length head
(``head.length_head``) adds its reward to the head's inside the loss, and a
penalty keeps the head's reward uncorrelated with length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rewardhedge.config import RATING_OBJECTIVES, EnsembleConfig, Objective
from rewardhedge.models.heads import HeadStack, build_heads, single_thread
from rewardhedge.models.losses import (
    bradley_terry_loss,
    decorrelation_penalty,
    hl_gauss_loss,
    regression_loss,
)
from rewardhedge.train.member_loop import draw_split, train_members
from rewardhedge.train.pair_targets import PairTargets


@dataclass
class FitResult:
    """The fitted heads and what happened while fitting them."""

    heads: HeadStack
    history: list[dict[str, Any]] = field(default_factory=list)
    """One entry per epoch: ``train_loss`` (mean over members), ``val_loss`` and
    ``val_accuracy`` per member (when a validation split exists)."""
    best_epoch: list[int] = field(default_factory=list)
    """Per member, the epoch whose parameters were kept (1-based)."""
    n_train: int = 0
    n_val: int = 0
    train_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    """Positions of the pairs the heads were trained on (the rest validated)."""
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    """`(K, n_train)` each member's example weights (bootstrap counts or ones)."""


def fit_head_stack(
    x_chosen: np.ndarray,
    x_rejected: np.ndarray,
    config: EnsembleConfig,
    *,
    targets: PairTargets | None = None,
    progress: Any | None = None,
) -> FitResult:
    """Train ``config.n_members`` heads with ``config.train.objective``.

    Args:
        x_chosen: `(n, d)` features of the chosen responses.
        x_rejected: `(n, d)` features of the rejected responses.
        config: ensemble, head and training settings.
        targets: the pairs' margins, ratings and length features, as the objective
            and head need (:meth:`PairTargets.from_pairs`).
        progress: optional callable ``progress(epoch, n_epochs, info)`` called
            after each epoch (the CLI passes a progress-bar updater).

    Returns:
        The heads (in eval mode) with per-epoch history.
    """
    tc = config.train
    n, d = x_chosen.shape
    if x_rejected.shape != (n, d):
        raise ValueError(f"x_rejected has shape {x_rejected.shape}, expected {(n, d)}.")
    targets = _check_targets(targets or PairTargets(), config, n)
    train_idx, val_idx, counts = training_split(n, config)
    n_val = len(val_idx)

    with torch.random.fork_rng(devices=[]), single_thread():
        torch.manual_seed(tc.seed)
        gen = torch.Generator().manual_seed(tc.seed)
        xc = torch.as_tensor(x_chosen, dtype=torch.float32)
        xr = torch.as_tensor(x_rejected, dtype=torch.float32)
        t = targets.as_tensors()

        heads = build_heads(d, config, generator=gen)
        both = torch.cat([xc[train_idx], xr[train_idx]])  # (2*n_train, d)
        heads.set_standardisation(both.mean(0), both.std(0))
        _fit_output_ranges(heads, t.take(torch.as_tensor(train_idx)), tc.objective)

        weights = torch.as_tensor(counts, dtype=torch.float32)  # (K, n_train)

        decay = {id(p) for p in heads.decay_parameters()}
        optimiser = torch.optim.AdamW(
            [
                {
                    "params": [p for p in heads.parameters() if id(p) in decay],
                    "weight_decay": tc.weight_decay,
                },
                {
                    "params": [p for p in heads.parameters() if id(p) not in decay],
                    "weight_decay": 0.0,
                },
            ],
            lr=config.learning_rate,
        )
        train_t = torch.as_tensor(train_idx)

        def batch_loss(pos: torch.Tensor) -> torch.Tensor:
            idx = train_t[pos]
            return _pair_loss(heads, xc[idx], xr[idx], t.take(idx), config, weights[:, pos])

        def validate() -> tuple[np.ndarray, np.ndarray]:
            val = torch.as_tensor(val_idx)
            return _validate(heads, xc[val], xr[val], t.take(val), config)

        history, best_epoch = train_members(
            heads,
            optimiser,
            batch_loss,
            n_train=len(train_idx),
            batch_size=tc.batch_size,
            epochs=tc.epochs,
            patience=tc.patience,
            l2=config.l2_strength,
            generator=gen,
            validate=validate if n_val else None,
            progress=progress,
        )
        heads.settle_spectral()
    return FitResult(
        heads=heads,
        history=history,
        best_epoch=best_epoch,
        n_train=len(train_idx),
        n_val=n_val,
        train_index=train_idx,
        weights=weights.numpy(),
    )


def training_split(n: int, config: EnsembleConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train_idx, val_idx, weights)`` for ``n`` pairs, as :func:`fit_head_stack` draws
    them from ``train.seed`` (see :func:`draw_split`). Influence functions read it to know
    what each member minimised."""
    tc = config.train
    return draw_split(
        n,
        seed=tc.seed,
        val_fraction=tc.val_fraction,
        bootstrap=tc.bootstrap,
        n_members=config.n_members,
    )


def _check_targets(targets: PairTargets, config: EnsembleConfig, n: int) -> PairTargets:
    """Refuse targets the objective or head needs and lacks, or of the wrong length."""
    objective = config.train.objective
    if objective in RATING_OBJECTIVES and (
        targets.ratings is None or not np.isfinite(targets.ratings).any()
    ):
        raise ValueError(f"train.objective {objective.value!r} needs ratings; none were given.")
    if config.head.length_head and targets.lengths is None:
        raise ValueError("head.length_head needs the pairs' length features; none were given.")
    for name in ("margin", "ratings", "lengths", "soft_label"):
        value = getattr(targets, name)
        if value is not None and len(value) != n:
            raise ValueError(f"targets.{name} has {len(value)} rows for {n} pairs.")
    return targets


def _fit_output_ranges(heads: HeadStack, train: PairTargets, objective: Objective) -> None:
    """Histogram bins over the training ratings' range; a regression head's output bias
    at their mean (from 0, AdamW's small steps took thousands of epochs to get there on
    small data); length standardisation."""
    if objective in (Objective.REGRESSION, Objective.BT_REGRESSION) and not heads.bins:
        rated = train.ratings[torch.isfinite(train.ratings)]
        with torch.no_grad():
            heads.last_layer_weights()[1].fill_(float(rated.mean()))
    if heads.bins:
        rated = train.ratings[torch.isfinite(train.ratings)]
        low, high = float(rated.min()), float(rated.max())
        if low == high:  # one rating value: a symmetric range around it
            low, high = low - 1.0, high + 1.0
        heads.set_bins(low, high)
    if heads.n_length:
        lengths = train.lengths.reshape(-1, heads.n_length)
        heads.set_length_standardisation(lengths.mean(0), lengths.std(0).clamp_min(1e-6))


def _pair_loss(
    heads: HeadStack,
    xc: torch.Tensor,
    xr: torch.Tensor,
    t: PairTargets,
    config: EnsembleConfig,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """`(K,)` loss of ``config.train.objective``: chosen and rejected go through the heads
    in one call."""
    tc = config.train
    both = torch.cat([xc, xr])
    item_weights = None if weights is None else torch.cat([weights, weights], dim=1)
    ratings = None if t.ratings is None else torch.cat([t.ratings[:, 0], t.ratings[:, 1]])
    if heads.bins:
        sigma = config.head.hl_sigma * float(heads.bin_centers[1] - heads.bin_centers[0])
        logits = heads.bin_logits(both)
        rated = torch.isfinite(ratings)
        return hl_gauss_loss(logits, ratings, heads.bin_centers, sigma, rated, item_weights)
    reward, var = heads.forward_full(both)  # (K, 2B)
    total = reward
    if heads.n_length:
        lengths = torch.cat([t.lengths[:, 0], t.lengths[:, 1]])
        total = reward + heads.length_reward(lengths)
    loss = torch.zeros(heads.n_members)
    if tc.objective in (Objective.BT, Objective.BT_REGRESSION):
        r_c, r_r = total.chunk(2, dim=1)
        v_c, v_r = (None, None) if var is None else var.chunk(2, dim=1)
        loss = loss + bradley_terry_loss(
            r_c, r_r, t.margin, weights, tc.center_coef, v_c, v_r, t.soft_label
        )
    if tc.objective in (Objective.REGRESSION, Objective.BT_REGRESSION):
        scale = tc.regression_weight if tc.objective is Objective.BT_REGRESSION else 1.0
        rated = torch.isfinite(ratings)
        loss = loss + scale * regression_loss(total, torch.nan_to_num(ratings), rated, item_weights)
    if heads.n_length and tc.length_decorrelation > 0.0:
        loss = loss + tc.length_decorrelation * decorrelation_penalty(reward, lengths[:, 0])
    return loss


@torch.no_grad()
def _validate(
    heads: HeadStack, xc: torch.Tensor, xr: torch.Tensor, t: PairTargets, config: EnsembleConfig
) -> tuple[np.ndarray, np.ndarray]:
    """`(K,)` validation loss (the training objective) and pairwise accuracy of the head."""
    heads.eval()
    r_c, r_r = heads(torch.cat([xc, xr])).chunk(2, dim=1)  # (K, V) each
    loss = _pair_loss(heads, xc, xr, t, config).numpy()
    acc = ((r_c > r_r).float() + 0.5 * (r_c == r_r).float()).mean(dim=1).numpy()
    return loss, acc
