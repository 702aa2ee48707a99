"""Per-member early stopping for head stacks: each member keeps the weights of its best
validation epoch and stops counting once ``patience`` epochs pass without improving;
training ends when every member has stopped. Shared by the reward-head and the
general-preference trainers."""

from __future__ import annotations

from typing import Any

import numpy as np


class MemberEarlyStopping:
    """The best validation loss, epoch and weights of each of the ``heads.n_members``
    members of ``heads`` (anything with ``n_members``, ``member_slices()`` and
    ``load_member(snapshot, member)``)."""

    def __init__(self, heads: Any, patience: int) -> None:
        self.heads, self.k, self.patience = heads, heads.n_members, patience
        self.best_loss = np.full(self.k, np.inf)
        self.best_epoch = np.zeros(self.k, dtype=int)
        self.snapshot = heads.member_slices()

    def update(self, epoch: int, val_loss: np.ndarray) -> None:
        """Record one epoch's ``(k,)`` validation losses; snapshot the members that improved."""
        improved = val_loss < self.best_loss - 1e-6
        if improved.any():
            fresh = self.heads.member_slices()
            for member in np.flatnonzero(improved):
                for name in self.snapshot:
                    self.snapshot[name][member] = fresh[name][member]
        self.best_loss = np.where(improved, val_loss, self.best_loss)
        self.best_epoch = np.where(improved, epoch, self.best_epoch)

    def done(self, epoch: int) -> bool:
        """Whether every member has gone ``patience`` epochs without improving."""
        return bool(np.all(epoch - self.best_epoch >= self.patience))

    def restore(self) -> list[int]:
        """Load each member's best weights; their best epochs."""
        for member in range(self.k):
            self.heads.load_member(self.snapshot, member)
        return self.best_epoch.tolist()
