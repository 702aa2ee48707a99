"""K reward heads evaluated in one batched call.

Each member is an independent head on the same standardised features; their
parameters are stacked along a leading member axis so one einsum scores all
K members (batched heads cost far less than K separate forward passes).

Two estimator options change the heads themselves: a Gaussian head adds a
second output per member, the noise variance σ² (softplus of a linear map of
the same hidden representation), and MC dropout drops input features during
training and, with fixed masks shared by all items, at scoring time.

Member feature masks (``member_mask``, `(K, dim)` of 0/1, all ones by
default) let each member see only some standardised features (random
subspaces, or one view of a multi-view encoder): a linear member uses the
weights ``w_k · mask_k``, an MLP member masks the inputs of its first layer.
Masked-out weights are zeroed when the mask is set and then get no gradient,
so they stay exactly 0 under AdamW and the L2 penalty.

Three options change what a member outputs or how it is bounded:

- ``bins`` > 0 (the ``hl_gauss`` objective): the last layer gives logits over fixed
  bins (``bin_centers``); the reward is the histogram's mean and its variance the
  aleatoric term.
- ``length_features`` > 0 (``head.length_head``): a linear head on standardised
  length features, trained beside the reward head; ``forward`` never adds it, so
  scores are the length-free reward alone.
- ``config.spectral_norm`` (MLP): each member's hidden layer is divided by
  max(1, σ_max / c), so the map from features to hidden units is c-Lipschitz.
  σ_max comes from power iteration, as in Miyato et al.: one step per training
  forward pass on a stored vector ``sn_u`` (an exact SVD each step doubled the fit
  time), and :meth:`HeadStack.settle_spectral` iterates it to convergence after
  training, so scoring divides by the trained weights' σ_max.
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from rewardhedge.config import EnsembleConfig, EstimatorKind, HeadConfig, HeadKind, Objective
from rewardhedge.encoders.length import LENGTH_FEATURES
from rewardhedge.models.diversity import member_masks

CONSTANT_SCALE = 1e-6
"""A feature whose training standard deviation is at most this counts as constant: the
heads give it no weight (:meth:`HeadStack.set_standardisation` keeps its scale at 1
and zeroes its weights; the general preference heads set its inverse scale to 0)."""


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


class MemberStack(nn.Module, ABC):
    """K members batched on a leading axis: the per-member L2 penalty and the snapshots
    early stopping keeps (subclasses say which weights ``decay_parameters`` are)."""

    @abstractmethod
    def decay_parameters(self) -> list[nn.Parameter]:
        """The weights the L2 penalty and weight decay apply to (biases excluded)."""

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


class HeadStack(MemberStack):
    """``n_members`` heads of one kind on ``dim``-dimensional features.

    Features are standardised with the training mean and scale, stored as
    buffers so that a saved model reproduces its scores exactly, as is the
    `(K, dim)` ``member_mask`` (see :meth:`set_member_mask`; a state dict
    without it, from folders saved before masks existed, loads as all ones).
    """

    def __init__(
        self,
        dim: int,
        n_members: int,
        config: HeadConfig,
        generator: torch.Generator | None = None,
        *,
        gaussian: bool = False,
        input_dropout: float = 0.0,
        bins: int = 0,
        length_features: int = 0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.n_members = n_members
        self.config = config
        self.gaussian = gaussian
        self.input_dropout = input_dropout
        self.bins = bins
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_scale", torch.ones(dim))
        self.register_buffer("member_mask", torch.ones(n_members, dim))
        k, d = n_members, dim
        out = (bins,) if bins else ()
        if config.kind is HeadKind.LINEAR:
            bound = 1.0 / math.sqrt(d)
            self.weight = nn.Parameter(_uniform((k, d, *out), bound, generator))
            self.bias = nn.Parameter(torch.zeros(k, *out))
        else:
            h = config.hidden
            self.w1 = nn.Parameter(_uniform((k, d, h), 1.0 / math.sqrt(d), generator))
            self.b1 = nn.Parameter(torch.zeros(k, h))
            self.w2 = nn.Parameter(_uniform((k, h, *out), 1.0 / math.sqrt(h), generator))
            self.b2 = nn.Parameter(torch.zeros(k, *out))
            if config.spectral_norm is not None:  # a fixed start: ``generator`` stays as
                # without the bound, so a bound that never binds changes nothing
                self.register_buffer("sn_u", torch.full((k, h), h**-0.5))
        if bins:
            self.register_buffer("bin_centers", torch.linspace(-1.0, 1.0, bins))
        self.n_length = length_features
        if length_features:
            self.length_weight = nn.Parameter(torch.zeros(k, length_features))
            self.register_buffer("length_mean", torch.zeros(length_features))
            self.register_buffer("length_scale", torch.ones(length_features))
        if gaussian:
            width = d if config.kind is HeadKind.LINEAR else config.hidden
            self.var_weight = nn.Parameter(torch.zeros(k, width))
            self.var_bias = nn.Parameter(torch.zeros(k))

    def set_standardisation(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """Centre on ``mean`` and divide by ``scale``. A feature whose training ``scale``
        is at most :data:`CONSTANT_SCALE` (constant, e.g. a hashing bucket no training text
        hit) keeps scale 1 and starts with zero weights, which its zero training signal
        leaves at zero: dividing by a clamped 1e-6 had turned any later value into a
        million, and the random initial weight on it into a huge reward."""
        varies = scale > CONSTANT_SCALE
        self.feature_mean.copy_(mean)
        self.feature_scale.copy_(torch.where(varies, scale, 1.0))
        self._zero_input_weights(varies.to(self.member_mask.dtype).expand_as(self.member_mask))

    def set_bins(self, low: float, high: float) -> None:
        """Spread the histogram's bin centres evenly over ``[low, high]``."""
        if not low < high:
            raise ValueError(f"bin range [{low}, {high}] is empty; the ratings must differ.")
        self.bin_centers.copy_(torch.linspace(low, high, self.bins))

    def set_length_standardisation(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        self.length_mean.copy_(mean)
        self.length_scale.copy_(scale)

    def length_reward(self, lengths: torch.Tensor) -> torch.Tensor:
        """The length head's reward: `(n, L)` length features -> `(K, n)`."""
        z = (lengths - self.length_mean) / self.length_scale
        return _last_layer(z.unsqueeze(0).expand(self.n_members, *z.shape), self.length_weight, 0)

    def set_member_mask(self, mask: torch.Tensor) -> None:
        """Member ``k`` sees feature ``i`` only where ``mask[k, i] == 1``.

        Also zeroes the weights on masked-out features (first-layer rows of an
        MLP), which then get no gradient and stay 0.
        """
        mask = torch.as_tensor(mask, dtype=self.member_mask.dtype)
        if mask.shape != self.member_mask.shape:
            raise ValueError(
                f"member mask has shape {tuple(mask.shape)}, expected "
                f"{tuple(self.member_mask.shape)}."
            )
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("member mask must hold only 0 and 1.")
        with torch.no_grad():
            self.member_mask.copy_(mask)
        self._zero_input_weights(mask)

    @torch.no_grad()
    def _zero_input_weights(self, mask: torch.Tensor) -> None:
        """Zero every weight that reads feature ``i`` for member ``k`` where ``mask[k, i]``
        is 0 (the first layer of an MLP)."""
        if self.config.kind is HeadKind.LINEAR:
            self.weight.mul_(mask[:, :, None] if self.bins else mask)
            if self.gaussian:
                self.var_weight.mul_(mask)
        else:
            self.w1.mul_(mask[:, :, None])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        key = prefix + "member_mask"
        if key not in state_dict:  # saved before member masks existed: every member sees all
            state_dict[key] = torch.ones_like(self.member_mask)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rewards of every member: `(n, dim)` features -> `(K, n)` rewards."""
        return self.forward_full(x)[0]

    def forward_full(
        self, x: torch.Tensor, masks: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Rewards and (Gaussian heads) noise variances.

        Args:
            x: `(n, dim)` raw features.
            masks: `(T, dim)` fixed input-dropout masks (0/1) for MC dropout at
                scoring time; every item shares mask ``t``, so sample ``t`` is
                one thinned network and results do not depend on batching.

        Returns:
            ``(rewards, variances)``: `(K, n)` each, or `(K·T, n)` with masks
            (member-major: row ``k·T + t``); variances are ``None`` unless the
            head is Gaussian.
        """
        feats, w, b, var_w = self._last_layer_inputs(x, masks)
        var = None
        if self.bins:
            probs = torch.softmax(_bin_logits(feats, w, b), dim=-1)  # (K, [T,] n, B)
            reward = probs @ self.bin_centers
            var = (probs @ self.bin_centers**2 - reward**2).clamp_min(1e-12)
        else:
            reward = _last_layer(feats, w, b)
        if var_w is not None:
            var = F.softplus(_last_layer(feats, var_w, self.var_bias)) + 1e-6
        if masks is not None:
            k, t, n = reward.shape
            reward = reward.reshape(k * t, n)
            var = None if var is None else var.reshape(k * t, n)
        return reward, var

    def bin_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``bins`` heads: `(n, dim)` features -> `(K, n, B)` histogram logits."""
        return _bin_logits(*self._last_layer_inputs(x, None)[:3])

    def _last_layer_inputs(
        self, x: torch.Tensor, masks: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(features, weight, bias, variance weight)`` of each member's last layer."""
        z = (x - self.feature_mean) / self.feature_scale  # (n, d)
        if masks is not None:
            scale = masks / (1.0 - self.input_dropout)  # (T, d)
            z = z[None, :, :] * scale[:, None, :]  # (T, n, d)
        elif self.input_dropout > 0.0:
            z = F.dropout(z, p=self.input_dropout, training=self.training)
        var_w = self.var_weight if self.gaussian else None
        if self.config.kind is not HeadKind.LINEAR:
            return self.last_layer_features(z), self.w2, self.b2, var_w  # (K, [T,] n, p)
        # (z·mask_k)·w_k == z·(w_k·mask_k): mask the weights, not K copies of z.
        feats = z.unsqueeze(0).expand(self.n_members, *z.shape)
        mask = self.member_mask[:, :, None] if self.bins else self.member_mask
        var_w = None if var_w is None else var_w * self.member_mask
        return feats, self.weight * mask, self.bias, var_w

    def last_layer_features(self, z: torch.Tensor) -> torch.Tensor:
        """What each member's last linear layer sees, from standardised features.

        `(n, d)` -> `(K, n, p)` (or `(T, n, d)` -> `(K, T, n, p)`): the features
        themselves times each member's mask for a linear head, the hidden
        activations (of the masked inputs) for an MLP head. The last-layer
        Laplace approximation is taken over the weights that multiply these.
        """
        k = self.n_members
        mask = self.member_mask
        if self.config.kind is HeadKind.LINEAR:
            return z.unsqueeze(0) * mask.reshape(k, *([1] * (z.dim() - 1)), -1)
        w1 = self.w1 * mask[:, :, None]
        if self.config.spectral_norm is not None:
            w1 = self._bounded(w1)
        if z.dim() == 2:
            hidden = torch.einsum("nd,kdh->knh", z, w1) + self.b1[:, None, :]
        else:
            hidden = torch.einsum("tnd,kdh->ktnh", z, w1) + self.b1[:, None, None, :]
        return F.dropout(F.gelu(hidden), p=self.config.dropout, training=self.training)

    def _bounded(self, w1: torch.Tensor) -> torch.Tensor:
        """`(K, d, h)` hidden weights divided by max(1, σ_max / bound), σ_max by power
        iteration on ``sn_u`` (one step per forward pass while training; the gradient
        flows through σ_max's dependence on the weights, the vectors held fixed)."""
        if self.training:
            with torch.no_grad():
                self._power_step(w1)
        u = self.sn_u
        v = F.normalize(torch.einsum("kdh,kh->kd", w1, u), dim=1).detach()
        sigma = torch.einsum("kd,kdh,kh->k", v, w1, u)
        scale = (self.config.spectral_norm / sigma.clamp_min(1e-12)).clamp(max=1.0)
        return w1 * scale[:, None, None]

    def _power_step(self, w1: torch.Tensor) -> None:
        v = F.normalize(torch.einsum("kdh,kh->kd", w1, self.sn_u), dim=1)
        self.sn_u.copy_(F.normalize(torch.einsum("kdh,kd->kh", w1, v), dim=1))

    @torch.no_grad()
    def settle_spectral(self, steps: int = 200) -> None:
        """Iterate ``sn_u`` to the trained hidden layer's top singular vector, so the
        σ_max scoring divides by is the weights' own (a no-op without the bound)."""
        if self.config.spectral_norm is None:
            return
        w1 = self.w1 * self.member_mask[:, :, None]
        for _ in range(steps):
            self._power_step(w1)

    def last_layer_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight (K, p), bias (K,))`` of the reward output."""
        if self.config.kind is HeadKind.LINEAR:
            return self.weight, self.bias
        return self.w2, self.b2

    def l2_penalty(self) -> torch.Tensor:
        """`(K,)` squared norm of each member's weights; a histogram head's output weights
        count by their mean over the bins, so the same ``l2`` is as strong as on a scalar
        head (summed, the default l2 dwarfed the cross-entropy and flattened every
        histogram)."""
        if not self.bins:
            return super().l2_penalty()
        out = self.weight if self.config.kind is HeadKind.LINEAR else self.w2
        return sum(  # type: ignore[return-value]
            p.pow(2).flatten(1).sum(dim=1) / (self.bins if p is out else 1)
            for p in self.decay_parameters()
        )

    def decay_parameters(self) -> list[nn.Parameter]:
        """Weights that get weight decay (biases do not)."""
        params = [self.weight] if self.config.kind is HeadKind.LINEAR else [self.w1, self.w2]
        if self.gaussian:
            params.append(self.var_weight)
        return params


def _bin_logits(feats: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """`(K, ..., p)` features · `(K, p, B)` weights + `(K, B)` bias -> `(K, ..., B)`."""
    out = torch.einsum("k...p,kpb->k...b", feats, weight)
    return out + bias.reshape(bias.shape[0], *([1] * (out.dim() - 2)), bias.shape[1])


def _last_layer(
    feats: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | float
) -> torch.Tensor:
    """`(K, ..., p)` features · `(K, p)` weights + `(K,)` bias -> `(K, ...)`.

    A product and a sum over ``p``, not a matrix product: BLAS picks its kernel (and
    so its rounding) by the number of items, which made one item scored alone differ
    from the same item in a batch by a float32 ulp; each item's sum here is reduced
    the same way whatever the batch."""
    shape = (weight.shape[0], *([1] * (feats.dim() - 2)), weight.shape[1])
    out = (feats * weight.reshape(shape)).sum(dim=-1)
    if isinstance(bias, torch.Tensor):
        out = out + bias.reshape(-1, *([1] * (out.dim() - 1)))
    return out


def _uniform(
    shape: tuple[int, ...], bound: float, generator: torch.Generator | None
) -> torch.Tensor:
    return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound


def build_heads(
    dim: int, config: EnsembleConfig, generator: torch.Generator | None = None
) -> HeadStack:
    """An untrained head stack with the options the estimator needs, and the
    member feature masks of ``config.diversity`` (see :mod:`rewardhedge.models.diversity`)."""
    unc = config.uncertainty
    heads = HeadStack(
        dim,
        config.n_members,
        config.head,
        generator=generator,
        gaussian=unc.estimator is EstimatorKind.GAUSSIAN,
        input_dropout=unc.mc_dropout if unc.estimator is EstimatorKind.MC_DROPOUT else 0.0,
        bins=config.head.bins if config.train.objective is Objective.HL_GAUSS else 0,
        length_features=len(LENGTH_FEATURES) if config.head.length_head else 0,
    )
    masks = member_masks(config, dim)
    if masks is not None:
        heads.set_member_mask(torch.from_numpy(masks))
    return heads
