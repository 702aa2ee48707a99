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
from rewardhedge.train.early_stopping import MemberEarlyStopping
from rewardhedge.train.head_training import single_thread

__all__ = ["GPMFitResult", "cross_fit_gpm", "fit_gpm_heads"]

Progress = Callable[[int, int, dict[str, Any]], None]


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
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(n)
    n_val = round(n * config.val_fraction) if n >= 10 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    k = config.n_members

    with torch.random.fork_rng(devices=[]), single_thread():
        torch.manual_seed(config.seed)
        gen = torch.Generator().manual_seed(config.seed)
        xc = torch.as_tensor(x_chosen, dtype=torch.float32)
        xr = torch.as_tensor(x_rejected, dtype=torch.float32)
        heads = GPMHeads(d, k, config.dim, config.hidden, generator=gen)
        both = torch.cat([xc[train_idx], xr[train_idx]])
        heads.set_standardisation(both.mean(0), both.std(0))
        if config.bootstrap and k > 1:
            counts = rng.multinomial(
                len(train_idx), np.full(len(train_idx), 1 / len(train_idx)), size=k
            )
            weights = torch.as_tensor(counts, dtype=torch.float32)  # (K, n_train)
        else:
            weights = torch.ones(k, len(train_idx))
        decay = {id(p) for p in heads.decay_parameters()}
        optimiser = torch.optim.AdamW(
            [
                {"params": [p for p in heads.parameters() if id(p) in decay]},
                {"params": [p for p in heads.parameters() if id(p) not in decay]},
            ],
            lr=config.lr,
            weight_decay=0.0,
        )
        result = GPMFitResult(heads=heads)
        stopping = MemberEarlyStopping(heads, k, config.patience)
        train_t = torch.as_tensor(train_idx)
        for epoch in range(1, config.epochs + 1):
            heads.train()
            perm = torch.randperm(len(train_idx), generator=gen)
            epoch_loss = 0.0
            for start in range(0, len(perm), config.batch_size):
                pos = perm[start : start + config.batch_size]
                idx = train_t[pos]
                loss = gpm_loss(_scores(heads, xc[idx], xr[idx]), weights[:, pos])
                if config.l2 > 0.0:
                    loss = loss + config.l2 * heads.l2_penalty()
                optimiser.zero_grad(set_to_none=True)
                loss.sum().backward()
                optimiser.step()
                epoch_loss += float(loss.detach().mean()) * len(pos)
            info: dict[str, Any] = {"epoch": epoch, "train_loss": epoch_loss / max(len(perm), 1)}
            if n_val:
                val_loss, val_acc = _validate(heads, xc[val_idx], xr[val_idx])
                info["val_loss"], info["val_accuracy"] = val_loss.tolist(), val_acc.tolist()
                stopping.update(epoch, val_loss)
            result.history.append(info)
            if progress is not None:
                progress(epoch, config.epochs, info)
            if n_val and stopping.done(epoch):
                break
        if n_val:
            result.best_epoch = stopping.restore()
        else:
            result.best_epoch = [len(result.history)] * k
    heads.eval()
    return result


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
    if folds < 2 or n < folds:
        raise ValueError(f"cross-fitting needs 2 <= folds <= n pairs, got folds={folds}, n={n}.")
    rng = np.random.default_rng(config.seed + 7919)
    fold = np.empty(n, dtype=int)
    fold[rng.permutation(n)] = np.arange(n) % folds
    scores = np.empty((config.n_members, n))
    for f in range(folds):
        keep, out = fold != f, fold == f
        fitted = fit_gpm_heads(x_chosen[keep], x_rejected[keep], config)
        with single_thread():
            scores[:, out] = fitted.heads.pair_scores(x_chosen[out], x_rejected[out])
        if on_fold is not None:
            on_fold(f + 1, folds)
    return scores, fold
