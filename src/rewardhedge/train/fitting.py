"""Fit any of the estimators on pair features, and predict held-out pairs by cross-fitting.

Cross-fitting gives every training pair a prediction from a model that did
not see it, so temperature scaling and the error predictor are fitted on
honest held-out outputs without setting aside data the final model could
have learnt from (the final model is trained on all pairs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rewardhedge.config import EnsembleConfig, EstimatorKind, MemberNormKind
from rewardhedge.models.heads import single_thread
from rewardhedge.models.laplace import LastLayerLaplace
from rewardhedge.models.reward_heads import RewardHeads
from rewardhedge.train.head_training import FitResult, fit_head_stack
from rewardhedge.train.member_loop import draw_folds
from rewardhedge.train.pair_targets import PairTargets
from rewardhedge.types import RewardEstimate


def fit_estimator(
    x_chosen: np.ndarray,
    x_rejected: np.ndarray,
    config: EnsembleConfig,
    *,
    targets: PairTargets | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> tuple[RewardHeads, FitResult]:
    """Train the heads, then (Laplace) fit each head's last-layer posterior, then the
    per-member normalisation on both sides of every pair (``config.member_norm``).

    Cross-fitting calls this per fold, so each fold model is normalised on its own
    training items, as the final model is on all of them.
    """
    result = fit_head_stack(x_chosen, x_rejected, config, targets=targets, progress=progress)
    laplace: list[LastLayerLaplace] = []
    if config.uncertainty.estimator is EstimatorKind.LAPLACE:
        margin = None if targets is None else targets.margin
        laplace = fit_laplace(result, x_chosen, x_rejected, config, margin=margin)
    heads = RewardHeads(result.heads, config.uncertainty, laplace)
    if config.member_norm is not MemberNormKind.NONE:
        with single_thread():
            items = torch.cat([torch.as_tensor(x_chosen), torch.as_tensor(x_rejected)]).float()
            heads.fit_norm(items, config.member_norm)
    return heads, result


def fit_laplace(
    result: FitResult,
    x_chosen: np.ndarray,
    x_rejected: np.ndarray,
    config: EnsembleConfig,
    *,
    margin: np.ndarray | None = None,
) -> list[LastLayerLaplace]:
    """One posterior per head over its last-layer weights, on the pairs it was trained on
    (their curvature at the logit ``r_c − r_r − margin`` the loss saw).

    The head minimised ``mean_w(loss) + l2·‖θ‖²``; times ``Σw`` that is the
    summed loss plus ``(α/2)‖θ‖²`` with ``α = 2·l2·Σw``, the ``train`` prior.
    """
    heads = result.heads
    idx = result.train_index
    with torch.no_grad(), single_thread():
        heads.eval()
        z = torch.cat([torch.as_tensor(x_chosen[idx]), torch.as_tensor(x_rejected[idx])]).float()
        feats = heads.last_layer_features((z - heads.feature_mean) / heads.feature_scale)
        phi_c, phi_r = feats.double().chunk(2, dim=1)  # (K, n, p) each
        theta, _ = heads.last_layer_weights()
        offset = None if margin is None else -torch.as_tensor(margin[idx], dtype=torch.float64)
        out = []
        for k in range(heads.n_members):
            w = torch.as_tensor(result.weights[k], dtype=torch.float64)
            prior: float | str = config.uncertainty.laplace_prior
            if prior == "train":
                prior = max(2.0 * config.l2_strength * float(w.sum()), 1e-8)
            out.append(
                LastLayerLaplace.fit(
                    phi_c[k] - phi_r[k],
                    theta[k].detach(),
                    prior_precision=prior,
                    weights=w,
                    offset=offset,
                )
            )
    return out


@dataclass
class HeldOut:
    """Cross-fitted predictions for every training pair."""

    chosen: RewardEstimate
    rejected: RewardEstimate
    fold: np.ndarray
    """`(n,)` the fold each pair was held out in."""
    models: list[RewardHeads]
    """The fold models (model ``f`` never saw the pairs with ``fold == f``)."""


def cross_fit(
    x_chosen: np.ndarray,
    x_rejected: np.ndarray,
    config: EnsembleConfig,
    *,
    folds: int,
    targets: PairTargets | None = None,
    on_fold: Callable[[int, int], None] | None = None,
    fold: np.ndarray | None = None,
) -> HeldOut:
    """Train ``folds`` models, each on all pairs but one fold, and predict that fold.

    ``fold`` is each pair's fold in ``range(folds)``, each fold nonempty (the audit
    passes folds split by prompt); by default the folds are drawn from ``train.seed``
    (:func:`~rewardhedge.train.member_loop.draw_folds`).
    """
    if fold is None:
        fold = draw_folds(x_chosen.shape[0], folds, config.train.seed)
    parts_c: list[RewardEstimate] = []
    parts_r: list[RewardEstimate] = []
    models = []
    for f in range(folds):
        keep, out = fold != f, fold == f
        model, _ = fit_estimator(
            x_chosen[keep],
            x_rejected[keep],
            config,
            targets=None if targets is None else targets.take(keep),
        )
        models.append(model)
        with single_thread():
            parts_c.append(model.predict(torch.as_tensor(x_chosen[out]).float()))
            parts_r.append(model.predict(torch.as_tensor(x_rejected[out]).float()))
        if on_fold is not None:
            on_fold(f + 1, folds)
    order = np.concatenate([np.flatnonzero(fold == f) for f in range(folds)])
    inverse = np.argsort(order)
    chosen = _concat(parts_c).take(inverse)
    rejected = _concat(parts_r).take(inverse)
    return HeldOut(chosen, rejected, fold, models)


def _concat(parts: list[RewardEstimate]) -> RewardEstimate:
    return RewardEstimate(
        mean=np.concatenate([p.mean for p in parts]),
        epistemic=np.concatenate([p.epistemic for p in parts]),
        aleatoric=np.concatenate([p.aleatoric for p in parts]),
        members=np.concatenate([p.members for p in parts], axis=1),
    )
