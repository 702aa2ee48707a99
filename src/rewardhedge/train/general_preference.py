"""Fit a general preference model's heads on precomputed pair features, and cross-fit them.

The same loop as :mod:`rewardhedge.train.head_training`, with the loss
``−log σ(s(chosen, rejected))`` on the skew-symmetric score of
:mod:`rewardhedge.models.general_preference`: members share minibatches, differ in
initialisation and bootstrap weights, and each keeps the parameters of its best
validation epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rewardhedge.models.general_preference import GPMConfig, GPMHeads, gpm_loss, skew_score
from rewardhedge.models.heads import single_thread
from rewardhedge.train.member_loop import Progress, draw_folds, draw_split, train_members

__all__ = ["GPMFitResult", "cross_fit_gpm", "fit_gpm_heads"]


@dataclass
class GPMFitResult:
    """The fitted heads and what happened while fitting them."""

    heads: GPMHeads
    history: list[dict[str, Any]] = field(default_factory=list)
    """One entry per epoch: ``train_loss`` (mean over members), ``val_loss`` and
    ``val_accuracy`` per member (when a validation split exists)."""
    best_epoch: list[int] = field(default_factory=list)
    """Per member, the epoch whose parameters were kept (1-based)."""


def fit_gpm_heads(
    x_chosen: np.ndarray,
    x_rejected: np.ndarray,
    config: GPMConfig,
    *,
    progress: Progress | None = None,
) -> GPMFitResult:
    """Train ``config.n_members`` embedding heads with the loss ``−log σ(s(c, r))``.

    Args:
        x_chosen: `(n, d)` features of the chosen responses.
        x_rejected: `(n, d)` features of the rejected responses.
        config: the model's settings.
        progress: called after each epoch as ``progress(epoch, n_epochs, info)``.

    Returns:
        The heads (in eval mode) with their per-epoch history.
    """
    n, d = x_chosen.shape
    if x_rejected.shape != (n, d):
        raise ValueError(f"x_rejected has shape {x_rejected.shape}, expected {(n, d)}.")
    train_idx, val_idx, counts = draw_split(
        n,
        seed=config.seed,
        val_fraction=config.val_fraction,
        bootstrap=config.bootstrap,
        n_members=config.n_members,
    )

    with torch.random.fork_rng(devices=[]), single_thread():
        torch.manual_seed(config.seed)
        gen = torch.Generator().manual_seed(config.seed)
        xc = torch.as_tensor(x_chosen, dtype=torch.float32)
        xr = torch.as_tensor(x_rejected, dtype=torch.float32)
        heads = GPMHeads(d, config.n_members, config.dim, config.hidden, generator=gen)
        both = torch.cat([xc[train_idx], xr[train_idx]])
        heads.set_standardisation(both.mean(0), both.std(0))
        weights = torch.as_tensor(counts)  # (K, n_train)
        optimiser = torch.optim.AdamW(heads.parameters(), lr=config.lr, weight_decay=0.0)
        train_t = torch.as_tensor(train_idx)

        def batch_loss(pos: torch.Tensor) -> torch.Tensor:
            idx = train_t[pos]
            return gpm_loss(_scores(heads, xc[idx], xr[idx]), weights[:, pos])

        def validate() -> tuple[np.ndarray, np.ndarray]:
            return _validate(heads, xc[val_idx], xr[val_idx])

        history, best_epoch = train_members(
            heads,
            optimiser,
            batch_loss,
            n_train=len(train_idx),
            batch_size=config.batch_size,
            epochs=config.epochs,
            patience=config.patience,
            l2=config.l2,
            generator=gen,
            validate=validate if len(val_idx) else None,
            progress=progress,
        )
    return GPMFitResult(heads=heads, history=history, best_epoch=best_epoch)


def _scores(heads: GPMHeads, xc: torch.Tensor, xr: torch.Tensor) -> torch.Tensor:
    """`(K, B)` training scores ``s(chosen, rejected)``: both sides in one forward pass."""
    v_c, v_r = heads(torch.cat([xc, xr])).chunk(2, dim=1)
    return skew_score(v_c, v_r)


@torch.no_grad()
def _validate(heads: GPMHeads, xc: torch.Tensor, xr: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    heads.eval()
    s = _scores(heads, xc, xr)
    acc = ((s > 0).float() + 0.5 * (s == 0).float()).mean(dim=1)
    return gpm_loss(s).numpy(), acc.numpy()


def cross_fit_gpm(
    x_chosen: np.ndarray,
    x_rejected: np.ndarray,
    config: GPMConfig,
    *,
    folds: int,
    on_fold: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Train ``folds`` models, each on all pairs but one fold, and score that fold.

    Returns:
        ``(scores, fold)``: `(K, n)` held-out scores ``s(chosen, rejected)`` of every
        training pair (from the one fold model that did not see it), and `(n,)` the
        fold each pair was held out in. Folds are drawn from ``config.seed``, as
        :func:`rewardhedge.train.fitting.cross_fit` draws them.
    """
    n = x_chosen.shape[0]
    fold = draw_folds(n, folds, config.seed)
    scores = np.empty((config.n_members, n))
    for f in range(folds):
        keep, out = fold != f, fold == f
        fitted = fit_gpm_heads(x_chosen[keep], x_rejected[keep], config)
        with single_thread():
            scores[:, out] = fitted.heads.pair_scores(x_chosen[out], x_rejected[out])
        if on_fold is not None:
            on_fold(f + 1, folds)
    return scores, fold
