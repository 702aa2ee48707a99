"""Fit K reward heads on precomputed pair features, all members in one loop.

Members share minibatches but differ in initialisation and (optionally) in
bootstrap weights, so one batched step trains all K. Early stopping is per
member: each keeps the parameters of its best validation epoch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rewardhedge.config import EnsembleConfig
from rewardhedge.models.heads import HeadStack, build_heads
from rewardhedge.models.losses import bradley_terry_loss
from rewardhedge.train.member_loop import draw_split, train_members


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
    margin: np.ndarray | None = None,
    progress: Any | None = None,
) -> FitResult:
    """Train ``config.n_members`` heads with the Bradley-Terry loss.

    Args:
        x_chosen: `(n, d)` features of the chosen responses.
        x_rejected: `(n, d)` features of the rejected responses.
        config: ensemble, head and training settings.
        margin: `(n,)` required reward gaps, or ``None``.
        progress: optional callable ``progress(epoch, n_epochs, info)`` called
            after each epoch (the CLI passes a progress-bar updater).

    Returns:
        The heads (in eval mode) with per-epoch history.
    """
    tc = config.train
    n, d = x_chosen.shape
    if x_rejected.shape != (n, d):
        raise ValueError(f"x_rejected has shape {x_rejected.shape}, expected {(n, d)}.")
    train_idx, val_idx, counts = training_split(n, config)
    n_val = len(val_idx)

    with torch.random.fork_rng(devices=[]), single_thread():
        torch.manual_seed(tc.seed)
        gen = torch.Generator().manual_seed(tc.seed)
        xc = torch.as_tensor(x_chosen, dtype=torch.float32)
        xr = torch.as_tensor(x_rejected, dtype=torch.float32)
        m = None if margin is None else torch.as_tensor(margin, dtype=torch.float32)

        heads = build_heads(d, config, generator=gen)
        both = torch.cat([xc[train_idx], xr[train_idx]])  # (2*n_train, d)
        heads.set_standardisation(both.mean(0), both.std(0).clamp_min(1e-6))

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
            return _pair_loss(
                heads,
                xc[idx],
                xr[idx],
                None if m is None else m[idx],
                weights[:, pos],
                tc.center_coef,
            )

        def validate() -> tuple[np.ndarray, np.ndarray]:
            return _validate(heads, xc[val_idx], xr[val_idx], None if m is None else m[val_idx])

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


def _pair_loss(
    heads: HeadStack,
    xc: torch.Tensor,
    xr: torch.Tensor,
    margin: torch.Tensor | None,
    weights: torch.Tensor | None = None,
    center_coef: float = 0.0,
) -> torch.Tensor:
    """`(K,)` loss: chosen and rejected go through the heads in one call."""
    reward, var = heads.forward_full(torch.cat([xc, xr]))  # (K, 2B)
    r_c, r_r = reward.chunk(2, dim=1)
    v_c, v_r = (None, None) if var is None else var.chunk(2, dim=1)
    return bradley_terry_loss(r_c, r_r, margin, weights, center_coef, v_c, v_r)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block.

    The heads' matrices are small, so a second thread buys nothing and costs
    a lot whenever the other core is busy: measured 0.66 s on one thread vs
    8.7 s on two for the same 200-pair fit on a loaded 2-core machine.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def _validate(
    heads: HeadStack, xc: torch.Tensor, xr: torch.Tensor, margin: torch.Tensor | None
) -> tuple[np.ndarray, np.ndarray]:
    heads.eval()
    r_c, r_r = heads(torch.cat([xc, xr])).chunk(2, dim=1)  # (K, V) each
    loss = _pair_loss(heads, xc, xr, margin).numpy()
    acc = ((r_c > r_r).float() + 0.5 * (r_c == r_r).float()).mean(dim=1).numpy()
    return loss, acc
