"""Heads plus the estimator that turns them into a ``RewardEstimate``.

One object per fitted model, whatever the uncertainty method, so that
scoring, saving and loading are the same code for all of them:

- ``ensemble`` and ``gaussian``: each of the K heads is a member; a Gaussian
  head's predicted noise variance is the aleatoric part.
- ``mc_dropout``: each head is run with ``mc_samples`` fixed input-dropout
  masks (drawn from ``sample_seed``), so member ``k·T + t`` is one thinned
  network, the same for every item and every batch.
- ``laplace``: each head's last-layer weights have a Gaussian posterior; the
  mean is the trained (MAP) reward, the epistemic variance is the exact
  predictive variance ``φᵀΣφ`` (plus the spread between heads when K > 1),
  and the members are rewards under ``laplace_samples`` posterior draws,
  so pairwise probabilities integrate over the posterior. Draws come in
  antithetic pairs θ ± Lε, so each head's draws average exactly to its MAP
  reward (before the normalisation below, to ``mean``).

With a fitted :class:`MemberNorm` (``norm``), the members an aggregation sees
(and the epistemic variance) are normalised per head; ``mean`` stays the raw
mean, so the ``mean`` aggregation is unchanged (see ``models/member_norm.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from rewardhedge.config import EstimatorKind, MemberNormKind, UncertaintyConfig
from rewardhedge.models.heads import HeadStack
from rewardhedge.models.laplace import LastLayerLaplace
from rewardhedge.models.member_norm import NORM_PREFIX, MemberNorm, normalised_estimate
from rewardhedge.types import RewardEstimate

LAPLACE_PREFIX = "laplace"
NORM_CHUNK = 8192
"""Training items scored per chunk when fitting the member normalisation."""


@dataclass
class RewardHeads:
    """A fitted head stack and what its estimator needs at scoring time."""

    heads: HeadStack
    uncertainty: UncertaintyConfig
    laplace: list[LastLayerLaplace] = field(default_factory=list)
    norm: MemberNorm | None = None
    """Per-head normalisation fitted on the training items (``None``: identity)."""

    @property
    def kind(self) -> EstimatorKind:
        return self.uncertainty.estimator

    @property
    def n_outputs(self) -> int:
        """Rows of ``RewardEstimate.members``."""
        k = self.heads.n_members
        if self.kind is EstimatorKind.MC_DROPOUT:
            return k * self.uncertainty.mc_samples
        if self.kind is EstimatorKind.LAPLACE:
            return k * self.uncertainty.laplace_samples
        return k

    def dropout_masks(self) -> torch.Tensor:
        """`(T, dim)` 0/1 input masks, the same on every call (seeded)."""
        unc = self.uncertainty
        gen = torch.Generator().manual_seed(unc.sample_seed)
        keep = 1.0 - unc.mc_dropout
        return torch.bernoulli(torch.full((unc.mc_samples, self.heads.dim), keep), generator=gen)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> RewardEstimate:
        """`(n, dim)` features -> the estimate for those ``n`` items."""
        heads = self.heads
        heads.eval()
        if self.kind is EstimatorKind.LAPLACE:
            return self._predict_laplace(x)
        masks = self.dropout_masks() if self.kind is EstimatorKind.MC_DROPOUT else None
        reward, var = heads.forward_full(x, masks=masks)  # var: Gaussian or histogram heads
        return normalised_estimate(
            reward.double().numpy(), self.norm, None if var is None else var.double().numpy()
        )

    def fit_norm(self, x: torch.Tensor, kind: MemberNormKind) -> None:
        """Fit ``norm`` on `(n, dim)` training-item features (``none``: remove it)."""
        self.norm = None
        if kind is MemberNormKind.NONE:
            return
        # In chunks: MC dropout scores every item under every mask at once.
        raw = np.concatenate(
            [self.predict(x[i : i + NORM_CHUNK]).members for i in range(0, len(x), NORM_CHUNK)],
            axis=1,
        )
        self.norm = MemberNorm.fit(raw, kind, n_heads=self.heads.n_members)

    def _predict_laplace(self, x: torch.Tensor) -> RewardEstimate:
        heads = self.heads
        z = (x - heads.feature_mean) / heads.feature_scale
        feats = heads.last_layer_features(z).double()  # (K, n, p)
        _, bias = heads.last_layer_weights()
        means, variances, samples = [], [], []
        for k, post in enumerate(self.laplace):
            gen = torch.Generator().manual_seed(self.uncertainty.sample_seed + k)
            half = post.sample(self.uncertainty.laplace_samples // 2, generator=gen) - post.theta
            theta = torch.cat([post.theta + half, post.theta - half])  # (S, p), antithetic
            b = float(bias[k])
            means.append(feats[k] @ post.theta + b)
            variances.append(post.variance(feats[k]))
            samples.append(theta @ feats[k].T + b)  # (S, n)
        mean_k = torch.stack(means).numpy()  # (K, n)
        post_var = torch.stack(variances)  # (K, n)
        members = torch.cat(samples).numpy()
        raw_mean = mean_k.mean(axis=0)
        if self.norm is not None:  # the analytic variance, on the normalised heads
            mean_k = self.norm.apply(mean_k)
            post_var = torch.from_numpy(self.norm.apply_variance(post_var.numpy()))
            members = self.norm.apply(members)
        # Law of total variance over the K heads' posteriors.
        epistemic = post_var.mean(0).numpy() + mean_k.var(axis=0)
        return RewardEstimate(
            mean=raw_mean,
            epistemic=epistemic,
            aleatoric=np.zeros(mean_k.shape[1]),
            members=members,
        )

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor to save: the heads' state, each head's posterior, the member norm."""
        out = dict(self.heads.state_dict())
        for k, post in enumerate(self.laplace):
            out.update(post.to_tensors(prefix=f"{LAPLACE_PREFIX}.{k}."))
        if self.norm is not None:
            out.update(self.norm.to_tensors())
        return out

    @classmethod
    def from_tensors(
        cls, heads: HeadStack, uncertainty: UncertaintyConfig, tensors: dict[str, torch.Tensor]
    ) -> RewardHeads:
        """Inverse of :meth:`state_tensors` (``heads`` is an untrained stack of the right shape).

        Tensors saved before member normalisation existed load with ``norm=None``.

        Raises:
            ValueError: a tensor is missing, extra or of the wrong shape.
        """
        norm = MemberNorm.from_tensors(tensors)
        if norm is not None and norm.n_heads != heads.n_members:
            raise ValueError(f"member_norm has {norm.n_heads} heads for {heads.n_members} members.")
        tensors = {k: v for k, v in tensors.items() if not k.startswith(NORM_PREFIX)}
        head_state = {k: v for k, v in tensors.items() if not k.startswith(LAPLACE_PREFIX + ".")}
        try:
            heads.load_state_dict(head_state, strict=True)
        except RuntimeError as exc:
            raise ValueError(str(exc)) from exc
        laplace = []
        if uncertainty.estimator is EstimatorKind.LAPLACE:
            laplace = [
                LastLayerLaplace.from_tensors(tensors, prefix=f"{LAPLACE_PREFIX}.{k}.")
                for k in range(heads.n_members)
            ]
        elif len(head_state) != len(tensors):
            raise ValueError(f"unexpected {LAPLACE_PREFIX}.* tensors for a non-Laplace model.")
        heads.eval()
        return cls(heads, uncertainty, laplace, norm)
