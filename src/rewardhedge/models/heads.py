"""K reward heads evaluated in one batched call.

Each member is an independent head on the same standardised features; their
parameters are stacked along a leading member axis so one einsum scores all
K members (batched heads cost far less than K separate forward passes).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from rewardhedge.config import HeadConfig, HeadKind


class HeadStack(nn.Module):
    """``n_members`` heads of one kind on ``dim``-dimensional features.

    Features are standardised with the training mean and scale, stored as
    buffers so that a saved model reproduces its scores exactly.
    """

    def __init__(
        self,
        dim: int,
        n_members: int,
        config: HeadConfig,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.n_members = n_members
        self.config = config
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_scale", torch.ones(dim))
        k, d = n_members, dim
        if config.kind is HeadKind.LINEAR:
            bound = 1.0 / math.sqrt(d)
            self.weight = nn.Parameter(_uniform((k, d), bound, generator))
            self.bias = nn.Parameter(torch.zeros(k))
        else:
            h = config.hidden
            self.w1 = nn.Parameter(_uniform((k, d, h), 1.0 / math.sqrt(d), generator))
            self.b1 = nn.Parameter(torch.zeros(k, h))
            self.w2 = nn.Parameter(_uniform((k, h), 1.0 / math.sqrt(h), generator))
            self.b2 = nn.Parameter(torch.zeros(k))

    def set_standardisation(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_scale.copy_(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rewards of every member: `(n, dim)` features -> `(K, n)` rewards."""
        z = (x - self.feature_mean) / self.feature_scale  # (n, d)
        if self.config.kind is HeadKind.LINEAR:
            return torch.einsum("nd,kd->kn", z, self.weight) + self.bias[:, None]  # (K, n)
        hidden = torch.einsum("nd,kdh->knh", z, self.w1) + self.b1[:, None, :]  # (K, n, h)
        hidden = F.dropout(F.gelu(hidden), p=self.config.dropout, training=self.training)
        return torch.einsum("knh,kh->kn", hidden, self.w2) + self.b2[:, None]  # (K, n)

    def decay_parameters(self) -> list[nn.Parameter]:
        """Weights that get weight decay (biases do not)."""
        if self.config.kind is HeadKind.LINEAR:
            return [self.weight]
        return [self.w1, self.w2]

    def l2_penalty(self) -> torch.Tensor:
        """`(K,)` squared norm of each member's weights (biases excluded)."""
        return sum(p.pow(2).flatten(1).sum(dim=1) for p in self.decay_parameters())  # type: ignore[return-value]

    def member_slices(self) -> dict[str, torch.Tensor]:
        """Every parameter, member axis first, for snapshotting the best epoch."""
        return {name: p.detach().clone() for name, p in self.named_parameters()}

    def load_member(self, snapshot: dict[str, torch.Tensor], member: int) -> None:
        """Copy member ``member``'s parameters from a snapshot into this stack."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                p[member].copy_(snapshot[name][member])


def _uniform(
    shape: tuple[int, ...], bound: float, generator: torch.Generator | None
) -> torch.Tensor:
    return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound
