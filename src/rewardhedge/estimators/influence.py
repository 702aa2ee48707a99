"""Which training pairs made a frozen-encoder model prefer one response: influence functions.

:func:`influence` explains one test pair's margin ``r(chosen) − r(rejected)`` by the
training pairs, for an :class:`EnsembleRewardModel` with linear heads: for every
training pair, how much the margin would drop if that pair were removed and each
member retrained to convergence, predicted without retraining (Koh & Liang 2017,
"Understanding Black-box Predictions via Influence Functions"; the formula and its
normalisation are in :mod:`rewardhedge.models.influence` and ``docs/explain.md``).

Each member is explained on what it minimised: the pairs of its training split,
weighted by its bootstrap counts, with the feature standardisation of those pairs
(:func:`rewardhedge.train.head_training.training_split` redraws both from the seed).
MLP heads, Gaussian heads, MC dropout, decoupled weight decay and reward centering
are refused: their objective is not the convex one the formula differentiates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from rewardhedge.config import EstimatorKind, HeadKind, Objective
from rewardhedge.data.fingerprint import hash_pairs
from rewardhedge.errors import ConfigError, DataError, NotFittedError
from rewardhedge.estimators.base import RewardModelBase, check_pairs, refuse_soft_labels
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.models.influence import linear_bt_influence, standardisation_effect
from rewardhedge.types import PreferencePair

__all__ = ["InfluenceResult", "check_explainable", "influence"]


@dataclass(frozen=True)
class InfluenceResult:
    """How much each training pair adds to one test pair's margin.

    ``influence[i]`` is the predicted test margin with pair ``i`` minus the margin
    without it (the member retrained to convergence): positive values **help** (the
    pair pushes the test pair's chosen response up relative to its rejected one),
    negative values **hurt**. Margins are raw reward differences (the ensemble mean
    of the members' ``r_c − r_r``, the quantity ``score(...).mean`` differences give).
    """

    influence: np.ndarray
    """`(n,)` ensemble mean of ``members`` (the effect on the ensemble mean margin)."""
    members: np.ndarray
    """`(K, n)` each member's ``margin with pair i − margin without it``."""
    scale_part: np.ndarray
    """`(K, n)` the share of ``members`` that comes from the pair's effect on the feature
    standardisation (the rest comes from its loss term)."""
    trained: np.ndarray
    """`(n,)` bool: the pair was in the training split (``False``: held out for early
    stopping, so its influence is 0 here)."""
    test_margin: float
    """The ensemble mean margin of the test pair."""
    member_margins: np.ndarray
    """`(K,)` each member's margin of the test pair."""
    unconverged: np.ndarray
    """`(K,)` how much the member's test margin would still move if it were trained to
    convergence (one Newton step); near 0 when training converged. Large values next to
    ``influence`` mean early stopping left the member far from the minimiser the
    formula assumes."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    """The approximations that apply to this model, in words."""

    def __len__(self) -> int:
        return len(self.influence)

    @property
    def agreement(self) -> np.ndarray:
        """`(n,)` share of members whose influence has the ensemble's sign (1: all agree)."""
        sign = np.sign(self.influence)
        return (np.sign(self.members) == sign[None, :]).mean(axis=0)

    def top(self, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``(helping, hurting)``: indices of the ``k`` pairs with the largest positive
        influence (largest first) and the ``k`` with the most negative (most negative
        first); pairs of zero influence are in neither.

        Example:
            >>> r = InfluenceResult(np.array([0.3, -0.1, 0.0, 0.5]), np.zeros((1, 4)),
            ...     np.zeros((1, 4)), np.ones(4, bool), 1.0, np.ones(1), np.zeros(1))
            >>> [x.tolist() for x in r.top(2)]
            [[3, 0], [1]]
        """
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ConfigError(f"top k == {k!r}, must be an integer >= 1.")
        order = np.argsort(-self.influence, kind="stable")
        helping = order[self.influence[order] > 0][:k]
        hurting = order[::-1][self.influence[order[::-1]] < 0][:k]
        return helping, hurting


def check_explainable(model: RewardModelBase) -> EnsembleRewardModel:
    """The model, if influence functions apply to it; else one clear error.

    Raises:
        ConfigError: not an :class:`EnsembleRewardModel`, or an objective the formula
            does not differentiate (MLP or Gaussian heads, MC dropout, weight decay,
            reward centering, a rating objective, a length head).
        NotFittedError: the model is not fitted.
    """
    if not isinstance(model, EnsembleRewardModel):
        raise ConfigError(
            f"influence explains EnsembleRewardModel (heads on a frozen encoder), not "
            f"{type(model).__name__}: a fine-tuned backbone's influence would need its "
            "full Hessian."
        )
    if getattr(model, "heads_", None) is None:
        raise NotFittedError.for_method(model, "influence")
    cfg = model.config
    if cfg.head.kind is not HeadKind.LINEAR:
        raise ConfigError(
            f"influence needs linear heads, but this model's head.kind == "
            f"{cfg.head.kind.value!r}: an MLP head's loss is not convex, so its trained "
            "weights are one of many minima and neither the influence function nor "
            "retraining without a pair says what that pair did. Train with --head linear "
            "to explain the model."
        )
    if cfg.uncertainty.estimator in (EstimatorKind.GAUSSIAN, EstimatorKind.MC_DROPOUT):
        raise ConfigError(
            f"influence needs heads trained with the plain Bradley-Terry loss, but this "
            f"model's uncertainty.estimator == {cfg.uncertainty.estimator.value!r} (its "
            "training loss differs); use the ensemble or laplace estimator."
        )
    if cfg.train.objective is not Objective.BT or cfg.head.length_head:
        what = (
            "head.length_head is on"
            if cfg.head.length_head
            else f"train.objective == {cfg.train.objective.value!r}"
        )
        raise ConfigError(
            f"influence needs heads trained with the plain Bradley-Terry loss, but this "
            f"model's {what} (its training loss differs); retrain with the bt objective "
            "and no length head to explain it."
        )
    if cfg.train.weight_decay > 0 or cfg.train.center_coef > 0:
        name = "weight_decay" if cfg.train.weight_decay > 0 else "center_coef"
        raise ConfigError(
            f"influence needs the objective mean BT loss + l2·‖w‖², but this model has "
            f"train.{name} == {getattr(cfg.train, name)!r}; retrain with it 0 (use "
            "train.l2 for regularisation)."
        )
    return model


def influence(
    model: RewardModelBase,
    train_pairs: Sequence[PreferencePair],
    test_pair: PreferencePair,
    *,
    damping: float = 0.0,
    progress: bool = False,
) -> InfluenceResult:
    """The influence of every training pair on ``test_pair``'s margin.

    For member ``k`` (trained weights ``θ̂``, Hessian ``H`` of its objective ``mean BT
    loss + l2·‖θ‖²``, normalised weights ``a_i``) the change of the test margin when
    pair ``i`` is removed is ``a_i Δφ_testᵀ H⁻¹ (∇ℓ_i − ∇L̄) − 4·l2 Δφ_testᵀ H⁻¹
    (θ̂ ⊙ δ_i/s)`` (the second term: the change of the feature scale); the result
    reports minus it, the pair's contribution.

    Args:
        model: a fitted :class:`EnsembleRewardModel` with linear heads.
        train_pairs: exactly the pairs the model was trained on, in the same order
            (checked against the fingerprint in its manifest).
        test_pair: the pair to explain.
        damping: added to each Hessian's diagonal (needed only when ``train.l2 == 0``).
        progress: show the encoder's progress bar (training texts are usually cached).

    Returns:
        :class:`InfluenceResult` over ``train_pairs``.

    Raises:
        ConfigError: a model the formula does not apply to (see
            :func:`check_explainable`), or a bad ``damping``.
        DataError: ``train_pairs`` are not the model's training pairs.

    Example:
        >>> from rewardhedge import EnsembleConfig, EncoderConfig
        >>> from rewardhedge.config import TrainConfig, UncertaintyConfig
        >>> pairs = [PreferencePair("q", f"good {i}", f"bad {i}") for i in range(12)]
        >>> cfg = EnsembleConfig(n_members=2, encoder=EncoderConfig(kind="hashing", dim=16),
        ...     uncertainty=UncertaintyConfig(calibration_folds=0))
        >>> model = EnsembleRewardModel(cfg).fit(pairs)
        >>> result = influence(model, pairs, PreferencePair("q", "good", "bad"))
        >>> result.members.shape
        (2, 12)
    """
    rm = check_explainable(model)
    number = isinstance(damping, int | float) and not isinstance(damping, bool)
    if not (number and np.isfinite(damping) and damping >= 0):
        raise ConfigError(f"damping == {damping!r}, must be a finite number >= 0.")
    pairs = check_pairs(train_pairs, "influence")
    refuse_soft_labels(pairs, "the influence formula (it differentiates hard-label BT)")
    _check_same_data(rm, pairs)
    if not isinstance(test_pair, PreferencePair):
        raise TypeError(f"test_pair must be a PreferencePair, got {type(test_pair).__name__}.")
    from rewardhedge.train.head_training import training_split
    from rewardhedge.train.pair_targets import PairTargets

    cfg = rm.config
    n = len(pairs)
    prompts = [p.prompt for p in pairs]
    feats = np.asarray(
        rm.encoder.encode(
            [*prompts, *prompts, test_pair.prompt, test_pair.prompt],
            [p.chosen for p in pairs] + [p.rejected for p in pairs]
            + [test_pair.chosen, test_pair.rejected],
            progress=progress,
        ),
        dtype=np.float32,
    )  # fmt: skip
    xc, xr = torch.from_numpy(feats[:n]), torch.from_numpy(feats[n : 2 * n])
    test_c, test_r = torch.from_numpy(feats[2 * n]), torch.from_numpy(feats[2 * n + 1])
    train_idx, val_idx, counts = training_split(n, cfg)
    margin = PairTargets.from_pairs(pairs, cfg).margin
    margins = None if margin is None else torch.as_tensor(margin, dtype=torch.float64)

    stack = rm.heads_.heads
    scale = stack.feature_scale.double()  # (d,)
    weight, _ = stack.last_layer_weights()
    weight = (weight * stack.member_mask).detach().double()  # (K, d)
    mask = stack.member_mask.bool()
    dz_train = (xc[train_idx] - xr[train_idx]).double() / scale  # (n_train, d)
    dz_test = (test_c - test_r).double() / scale  # (d,)
    l2 = cfg.l2_strength
    k_members = stack.n_members
    loss_part = torch.zeros(k_members, n, dtype=torch.float64)
    coef = torch.zeros(stack.dim, k_members, dtype=torch.float64)
    unconverged = np.zeros(k_members)
    tidx = torch.as_tensor(train_idx)
    for k in range(k_members):
        active = mask[k]
        try:
            member = linear_bt_influence(
                dz_train[:, active],
                weight[k, active],
                torch.from_numpy(counts[k]),
                l2,
                dz_test[active],
                offset=None if margins is None else margins[tidx],
                damping=float(damping),
            )
        except ValueError as exc:
            raise ConfigError(f"member {k}: {exc}") from exc
        loss_part[k, tidx] = member.removal
        coef[active, k] = -4.0 * l2 * member.solve * weight[k, active]
        unconverged[k] = member.unconverged
    scale_part = torch.zeros(k_members, n, dtype=torch.float64)
    scale_part[:, tidx] = standardisation_effect(xc[train_idx], xr[train_idx], coef).T
    members = -(loss_part + scale_part).numpy()  # removal effects -> contributions
    trained = np.zeros(n, dtype=bool)
    trained[train_idx] = True
    member_margins = (weight @ dz_test).numpy()  # (K,) the bias cancels in a pair
    return InfluenceResult(
        influence=members.mean(axis=0),
        members=members,
        scale_part=-scale_part.numpy(),
        trained=trained,
        test_margin=float(member_margins.mean()),
        member_margins=member_margins,
        unconverged=unconverged,
        notes=_notes(rm, len(train_idx), len(val_idx)),
    )


def _check_same_data(model: EnsembleRewardModel, pairs: list[PreferencePair]) -> None:
    """The pairs must be the training pairs: the split and resamples depend on them."""
    expected = getattr(model, "data_hash_", None)
    n_expected = getattr(model, "n_pairs_", 0)
    got = hash_pairs(pairs) if expected is not None else None
    if len(pairs) != n_expected or got != expected:
        raise DataError(
            f"these {len(pairs)} pairs are not the ones the model was trained on "
            f"({n_expected} pairs, fingerprint {str(expected)[:19]}…, here "
            f"{str(got)[:19]}…); pass the training file read with the same options as "
            "at training time."
        )


def _notes(model: EnsembleRewardModel, n_train: int, n_val: int) -> tuple[str, ...]:
    """The approximations behind the numbers, for this model."""
    cfg = model.config
    tc = cfg.train
    notes = [
        "first order (Koh & Liang 2017): one Newton step from the trained weights with the "
        "full-data Hessian; exact only in the limit of small weight per pair."
    ]
    if n_val:
        notes.append(
            f"early stopping: {n_val} pairs were held out and each member kept its best "
            f"validation epoch ({model.best_epoch_}), so its weights are not the minimiser; "
            "influences describe retraining to convergence with the same split (see "
            "'unconverged'), and held-out pairs get 0."
        )
    if tc.bootstrap and cfg.n_members > 1:
        notes.append(
            "bootstrap: each member keeps its resample; removing a pair removes all its "
            "copies from every member (a pair a member never drew acts only through the "
            "feature scale)."
        )
    if tc.batch_size < n_train:
        notes.append(
            f"minibatches of {tc.batch_size} < {n_train} pairs: the trainer's fixed point "
            "only approximates the full-batch objective differentiated here."
        )
    return tuple(notes)
