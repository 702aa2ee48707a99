"""The training loop every frozen-feature head stack shares: K members on one split,
shared minibatches, per-member bootstrap weights, and per-member early stopping.

What differs between model families is only the loss of a minibatch and the
validation numbers, which callers pass in; the reward heads
(:mod:`rewardhedge.train.head_training`) and the general preference heads
(:mod:`rewardhedge.train.general_preference`) both run :func:`train_members`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rewardhedge.train.early_stopping import MemberEarlyStopping

Progress = Callable[[int, int, dict[str, Any]], None]
"""Called after each epoch as ``progress(epoch, n_epochs, info)``."""
BatchLoss = Callable[[torch.Tensor], torch.Tensor]
"""`(B,)` positions within the training split -> `(K,)` loss of each member."""
Validate = Callable[[], tuple[np.ndarray, np.ndarray]]
"""-> ``(val_loss, val_accuracy)``, `(K,)` each, on the validation split."""


def draw_split(
    n: int, *, seed: int, val_fraction: float, bootstrap: bool, n_members: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train_idx, val_idx, weights)`` for ``n`` examples, drawn from ``seed``: the
    examples trained on, those held out for early stopping (none below 10 examples),
    and each member's `(K, n_train)` example weights (bootstrap counts, or ones)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = round(n * val_fraction) if n >= 10 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    m = len(train_idx)
    if bootstrap and n_members > 1:
        counts = rng.multinomial(m, np.full(m, 1 / m), size=n_members).astype(np.float32)
    else:
        counts = np.ones((n_members, m), dtype=np.float32)
    return train_idx, val_idx, counts


def draw_folds(n: int, folds: int, seed: int) -> np.ndarray:
    """`(n,)` the cross-fitting fold of each of ``n`` examples, drawn from ``seed``: a seeded
    permutation dealt round-robin, so fold sizes differ by at most one.

    Raises:
        ValueError: not ``2 <= folds <= n``.
    """
    if folds < 2 or n < folds:
        raise ValueError(f"cross-fitting needs 2 <= folds <= n pairs, got folds={folds}, n={n}.")
    rng = np.random.default_rng(seed + 7919)
    fold = np.empty(n, dtype=int)
    fold[rng.permutation(n)] = np.arange(n) % folds
    return fold


def train_members(
    heads: Any,
    optimiser: torch.optim.Optimizer,
    batch_loss: BatchLoss,
    *,
    n_train: int,
    batch_size: int,
    epochs: int,
    patience: int,
    l2: float,
    generator: torch.Generator,
    validate: Validate | None,
    progress: Progress | None = None,
) -> tuple[list[dict[str, Any]], list[int]]:
    """Run up to ``epochs`` passes over ``n_train`` examples in shuffled minibatches.

    Each step minimises the sum over members of ``batch_loss(positions)`` plus
    ``l2 · heads.l2_penalty()``. With ``validate``, every member keeps the weights of
    its best validation epoch and training ends once all have waited ``patience``
    epochs without improving (see :class:`MemberEarlyStopping`).

    Returns:
        ``(history, best_epoch)``: one dict per epoch (``train_loss``, and with
        ``validate`` the per-member ``val_loss`` and ``val_accuracy``), and each
        member's kept epoch (1-based; the last epoch without ``validate``).
    """
    stopping = None if validate is None else MemberEarlyStopping(heads, patience)
    history: list[dict[str, Any]] = []
    for epoch in range(1, epochs + 1):
        heads.train()
        perm = torch.randperm(n_train, generator=generator)
        epoch_loss = 0.0
        for start in range(0, n_train, batch_size):
            pos = perm[start : start + batch_size]
            loss = batch_loss(pos)
            if l2 > 0.0:
                loss = loss + l2 * heads.l2_penalty()
            optimiser.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimiser.step()
            epoch_loss += float(loss.detach().mean()) * len(pos)
        info: dict[str, Any] = {"epoch": epoch, "train_loss": epoch_loss / max(n_train, 1)}
        if validate is not None and stopping is not None:
            val_loss, val_acc = validate()
            info["val_loss"], info["val_accuracy"] = val_loss.tolist(), val_acc.tolist()
            stopping.update(epoch, val_loss)
        history.append(info)
        if progress is not None:
            progress(epoch, epochs, info)
        if stopping is not None and stopping.done(epoch):
            break
    best = [len(history)] * heads.n_members if stopping is None else stopping.restore()
    heads.eval()
    return history, best
