"""A general preference model's heads: skew-symmetric scores over preference embeddings.

Zhang et al. 2024 ("General Preference Modeling with Preference Representations
for Aligning Language Models", arXiv:2410.02197) score a pair directly:

    P(a ≻ b | x) = σ(s(a, b)),    s(a, b) = v_aᵀ R v_b,

with a ``dim``-dimensional preference embedding ``v = f(features of (x, response))``
and ``R`` block-diagonal with ``dim / 2`` blocks ``[[0, −1], [1, 0]]``. ``R`` is
skew-symmetric, so ``s(a, b) = −s(b, a)`` and ``s(a, a) = 0``; unlike any
Bradley–Terry model it can hold a cycle (a ≻ b ≻ c ≻ a). A Bradley–Terry model is
the special case ``v = (1, r)``: then ``s(a, b) = r_a − r_b``.

Here ``f`` is a small head on frozen-encoder features: standardisation, then a
linear map to ``dim`` values (``hidden == 0``, the paper's projection head) or one
ReLU hidden layer. ``n_members`` heads are stacked on a leading member axis and
trained in one loop, as :mod:`rewardhedge.models.heads` does for reward heads.

The score is computed as ``u(a, b) − u(b, a)`` with ``u(a, b) = Σ_l a_{2l+1} b_{2l}``
(the same number as ``v_aᵀ R v_b``): IEEE subtraction is exactly antisymmetric, so
swapping the two responses negates every score bit for bit and ``s(a, a)`` is
exactly 0, whatever the rounding of the products.

This module also holds :class:`GPMConfig`, the model's typed configuration (its
attribute docstrings are the ``rewardhedge train-gpm`` flags' help).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rewardhedge.config import EncoderConfig, check_seed, from_dict, to_dict
from rewardhedge.errors import ConfigError
from rewardhedge.models.heads import CONSTANT_SCALE, MemberStack, single_thread

__all__ = [
    "GPMConfig",
    "GPMHeads",
    "gpm_loss",
    "skew_score",
    "skew_score_numpy",
]


@dataclass(frozen=True)
class GPMConfig:
    """A general preference model: K preference-embedding heads on one frozen encoder."""

    n_members: int = 5
    """Members K, each with its own initialisation and bootstrap resample; compare
    reports their spread (1 gives a single model)."""
    dim: int = 8
    """Width of the preference embedding, an even number: dim/2 skew-symmetric 2×2
    blocks, each able to hold one cyclic (rock-paper-scissors) pattern."""
    hidden: int = 0
    """Hidden width of the embedding head (one ReLU layer); 0 maps the standardised
    features linearly to the embedding (the paper's projection head)."""
    epochs: int = 300
    """Upper bound on passes over the training pairs; early stopping usually ends sooner."""
    batch_size: int = 512
    """Pairs per optimiser step (shared by all members)."""
    lr: float = 1e-2
    """AdamW learning rate."""
    l2: float = 0.1
    """L2 penalty ``l2 · ‖W‖²`` on each member's weights (biases excluded), added to
    its mean loss."""
    val_fraction: float = 0.1
    """Share of training pairs held out for early stopping (0 disables early stopping)."""
    patience: int = 50
    """Epochs without validation improvement before a member stops. Longer than the
    reward heads' 20: the validation loss of a skew-symmetric head often rises for
    tens of epochs (it fits the training pairs first) before it falls."""
    bootstrap: bool = True
    """Give each member its own bootstrap resample of the training pairs."""
    seed: int = 0
    """Seed for the split, the resamples, the initialisation and the batch order."""
    calibration_folds: int = 5
    """Cross-fitting folds for the held-out scores the temperature of compare is
    fitted on; 0 skips calibration (temperature 1)."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The frozen encoder whose features the heads read."""

    def __post_init__(self) -> None:
        check_seed("gpm.seed", self.seed)
        for name in ("n_members", "epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"gpm.{name} == {value!r}, must be an integer >= 1.")
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 2:
            raise ConfigError(f"gpm.dim == {self.dim!r}, must be an even integer >= 2.")
        if self.dim % 2:
            raise ConfigError(
                f"gpm.dim == {self.dim!r}, must be even: the embedding is read in 2×2 "
                "skew-symmetric blocks."
            )
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, int) or self.hidden < 0:
            raise ConfigError(f"gpm.hidden == {self.hidden!r}, must be an integer >= 0.")
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"gpm.lr == {self.lr!r}, must be a finite number > 0.")
        if not (isinstance(self.l2, int | float) and math.isfinite(self.l2) and self.l2 >= 0):
            raise ConfigError(f"gpm.l2 == {self.l2!r}, must be a finite number >= 0.")
        if not (isinstance(self.val_fraction, int | float) and 0.0 <= self.val_fraction < 1.0):
            raise ConfigError(f"gpm.val_fraction == {self.val_fraction!r}, must be in [0, 1).")
        folds = self.calibration_folds
        if isinstance(folds, bool) or not isinstance(folds, int) or folds == 1 or folds < 0:
            raise ConfigError(f"gpm.calibration_folds == {folds!r}, must be 0 or >= 2.")
        if not isinstance(self.bootstrap, bool):
            raise ConfigError(f"gpm.bootstrap == {self.bootstrap!r}, must be true or false.")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPMConfig:
        return from_dict(cls, data)


def skew_score(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``s(a, b) = aᵀ R b`` over the last axis (even width), as ``u(a, b) − u(b, a)``.

    Example:
        >>> a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
        >>> float(skew_score(a, b)), float(skew_score(b, a)), float(skew_score(a, a))
        (-1.0, 1.0, 0.0)
    """
    return (a[..., 1::2] * b[..., 0::2]).sum(-1) - (b[..., 1::2] * a[..., 0::2]).sum(-1)


def skew_score_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`skew_score` in numpy (float64 in, float64 out): exactly antisymmetric."""
    return (a[..., 1::2] * b[..., 0::2]).sum(-1) - (b[..., 1::2] * a[..., 0::2]).sum(-1)


def gpm_loss(score: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """`(K,)` per-member loss ``−log σ(s(chosen, rejected))``, the weighted mean over pairs.

    Args:
        score: `(K, B)` scores ``s(chosen, rejected)``.
        weights: `(K, B)` per-member example weights (bootstrap counts), or ``None``.

    Example:
        >>> round(float(gpm_loss(torch.zeros(1, 3))[0]), 4)  # log 2
        0.6931
    """
    per_pair = F.softplus(-score)
    if weights is None:
        return per_pair.mean(dim=1)
    return (per_pair * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-12)


def _uniform(
    shape: tuple[int, ...], bound: float, generator: torch.Generator | None
) -> torch.Tensor:
    return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound


ROW_BLOCK = 64
"""Rows per forward pass when scoring: every pass has this exact shape (the last one
padded with zero rows), so BLAS runs the same kernel for every item."""


class GPMHeads(MemberStack):
    """``n_members`` preference-embedding heads on ``in_dim``-dimensional features.

    Features are standardised with the training mean and scale (buffers, so a saved
    model reproduces its embeddings exactly); a feature that never varied in training
    is dropped (its inverse scale is 0), so a response with a value there never seen
    (a new hashing bucket) cannot blow its embedding up. :meth:`forward` maps
    `(n, in_dim)` features to `(K, n, dim)` embeddings.
    """

    def __init__(
        self,
        in_dim: int,
        n_members: int,
        dim: int,
        hidden: int = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"dim == {dim!r}, must be an even number >= 2.")
        self.in_dim, self.n_members, self.dim, self.hidden = in_dim, n_members, dim, hidden
        self.register_buffer("feature_mean", torch.zeros(in_dim))
        self.register_buffer("feature_inv_scale", torch.ones(in_dim))
        k, d = n_members, in_dim
        if hidden == 0:
            self.weight = nn.Parameter(_uniform((k, d, dim), 1.0 / math.sqrt(d), generator))
            self.bias = nn.Parameter(torch.zeros(k, dim))
        else:
            self.w1 = nn.Parameter(_uniform((k, d, hidden), 1.0 / math.sqrt(d), generator))
            self.b1 = nn.Parameter(torch.zeros(k, hidden))
            self.w2 = nn.Parameter(_uniform((k, hidden, dim), 1.0 / math.sqrt(hidden), generator))
            self.b2 = nn.Parameter(torch.zeros(k, dim))

    def set_standardisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Centre on ``mean`` and divide by ``std``; features with ``std <=``
        :data:`~rewardhedge.models.heads.CONSTANT_SCALE` get 0."""
        self.feature_mean.copy_(mean)
        varies = std > CONSTANT_SCALE
        self.feature_inv_scale.copy_(torch.where(varies, 1.0 / std.clamp_min(CONSTANT_SCALE), 0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings of every member: `(n, in_dim)` raw features -> `(K, n, dim)`."""
        z = (x - self.feature_mean) * self.feature_inv_scale
        k = range(self.n_members)
        # ReLU, not GELU: GELU's SIMD and scalar paths round differently, so an item's
        # embedding would depend on where it falls in its batch (see ``embed``).
        if self.hidden == 0:
            return torch.stack([z @ self.weight[j] for j in k]) + self.bias[:, None, :]
        h = F.relu(torch.stack([z @ self.w1[j] for j in k]) + self.b1[:, None, :])
        return torch.stack([h[j] @ self.w2[j] for j in k]) + self.b2[:, None, :]

    @torch.no_grad()
    def embed(self, x: np.ndarray) -> np.ndarray:
        """`(K, n, dim)` embeddings of `(n, in_dim)` features, as scoring sees them
        (float32 forward passes, returned as float64).

        The rows go through in blocks of exactly :data:`ROW_BLOCK` (the last padded
        with zeros): BLAS picks its kernel by the matrix shape (a single row takes
        another path and rounds differently), so with one shape for every pass an
        item's embedding is bit-identical whatever batch it is scored in.
        """
        self.eval()
        x32 = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        n = x32.shape[0]
        parts = [torch.zeros(self.n_members, 0, self.dim)]
        with single_thread():
            for start in range(0, n, ROW_BLOCK):
                block = x32[start : start + ROW_BLOCK]
                rows = block.shape[0]
                if rows < ROW_BLOCK:
                    block = torch.cat([block, block.new_zeros(ROW_BLOCK - rows, self.in_dim)])
                parts.append(self(block)[:, :rows])
        return torch.cat(parts, dim=1).double().numpy()

    def pair_scores(self, x_a: np.ndarray, x_b: np.ndarray) -> np.ndarray:
        """`(K, n)` float64 scores ``s_k(a_i, b_i)`` of feature rows ``x_a[i]``, ``x_b[i]``:
        the skew product of the float64 embeddings, exactly antisymmetric."""
        return skew_score_numpy(self.embed(x_a), self.embed(x_b))

    def decay_parameters(self) -> list[nn.Parameter]:
        """Weights that get the L2 penalty (biases do not)."""
        return [self.weight] if self.hidden == 0 else [self.w1, self.w2]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor to save (parameters and standardisation buffers)."""
        return {k: v.detach().clone() for k, v in self.state_dict().items()}

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`state_tensors`.

        Raises:
            ValueError: a tensor is missing, extra or of the wrong shape.
        """
        try:
            self.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise ValueError(str(exc)) from exc
