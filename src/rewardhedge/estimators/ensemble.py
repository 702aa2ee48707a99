"""The estimator users hold: reward heads on a frozen encoder, with their uncertainty.

This module composes the stages (data records → encoder features → heads →
``RewardEstimate`` → metrics) behind a scikit-learn-shaped lifecycle:
``EnsembleRewardModel(config).fit(pairs)``, then ``score``, ``compare``,
``evaluate``, ``save`` and ``load``. It sits after the stages it composes;
the training stage is imported only when ``fit`` runs, so loading and scoring a
saved model never import ``train/``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rewardhedge.config import EnsembleConfig, MemberNormKind, Objective
from rewardhedge.data.fingerprint import hash_pairs, hash_rated_items
from rewardhedge.encoders import CachedEncoder, Encoder
from rewardhedge.encoders.length import length_features
from rewardhedge.errors import ConfigError, ModelFormatError, NotFittedError
from rewardhedge.estimators.base import RewardModelBase, check_pairs
from rewardhedge.estimators.frozen_features import FrozenFeatures
from rewardhedge.models.heads import build_heads
from rewardhedge.models.io import load_model_folder, save_model_folder
from rewardhedge.models.reward_heads import RewardHeads
from rewardhedge.types import (
    PreferencePair,
    RatedItem,
    RewardEstimate,
    member_logits,
    pairwise_from_estimates,
)
from rewardhedge.uncertainty.calibration import TEMPERATURE_BOUNDS, TemperatureScaling
from rewardhedge.uncertainty.deup import ErrorPredictor, FeatureDensity, excess_loss
from rewardhedge.uncertainty.reward_rule import RewardRule

if TYPE_CHECKING:  # training code loads only when fitting
    from rewardhedge.train.pair_targets import PairTargets

SCORE_CHUNK = 8192
"""Items encoded per chunk when scoring, so memory stays bounded on large corpora."""


def check_calibration_size(
    n_pairs: int, folds: int, hint: str = "set uncertainty.calibration_folds=0"
) -> None:
    """Cross-fitting ``folds`` folds needs ``2 · folds`` pairs; checked before any fitting.

    Raises:
        ConfigError: too few pairs; ``hint`` says how to skip calibration.
    """
    if folds >= 2 and n_pairs < 2 * folds:
        raise ConfigError(
            f"calibration needs at least {2 * folds} pairs for {folds} cross-fitting folds, "
            f"got {n_pairs}; {hint} to skip calibration."
        )


class EnsembleRewardModel(FrozenFeatures, RewardModelBase):
    """K Bradley-Terry reward heads on one frozen encoder, with calibrated uncertainty.

    ``config.uncertainty.estimator`` picks how uncertainty is estimated (deep
    ensemble, MC dropout, Gaussian heads, last-layer Laplace; optionally a
    DEUP error predictor on top). Unless ``calibration_folds`` is 0, ``fit``
    also cross-fits the model to get held-out predictions for every training
    pair and fits a temperature for ``compare`` on them.

    Args:
        config: ensemble, head, training, encoder and uncertainty settings.
        encoder: an already built encoder (overrides ``config.encoder``).
        cache_dir: embedding cache folder (default: ``default_cache_dir()``).
        use_cache: cache embeddings on disk so re-training or re-scoring never
            re-encodes (ignored for the hashing encoder, which is cheaper than a
            cache look-up).
        rule: how ``reward`` turns an estimate into one number (aggregation and
            transform); saved with the model. Default: the members' mean.

    Example:
        >>> from rewardhedge import EnsembleConfig, EncoderConfig, PreferencePair
        >>> pairs = [PreferencePair("q", f"good answer {i}", f"bad answer {i}") for i in range(20)]
        >>> cfg = EnsembleConfig(n_members=3, encoder=EncoderConfig(kind="hashing", dim=64))
        >>> model = EnsembleRewardModel(cfg).fit(pairs)
        >>> est = model.score(["q", "q"], ["good answer", "bad answer"])
        >>> bool(est.mean[0] > est.mean[1]), est.members.shape
        (True, (3, 2))
    """

    def __init__(
        self,
        config: EnsembleConfig | None = None,
        *,
        encoder: Encoder | None = None,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        rule: RewardRule | None = None,
    ) -> None:
        self.config = config if config is not None else EnsembleConfig()
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.rule = rule if rule is not None else RewardRule()
        self._encoder = encoder

    # -- lifecycle ------------------------------------------------------------------------
    def fit(
        self,
        pairs: Sequence[PreferencePair],
        *,
        progress: bool = False,
        on_epoch: Callable[[int, int, dict[str, Any]], None] | None = None,
        on_fold: Callable[[int, int], None] | None = None,
    ) -> EnsembleRewardModel:
        """Encode the pairs, train every member, then calibrate. Returns ``self``.

        Args:
            pairs: training preferences.
            progress: show the encoding progress bar.
            on_epoch: called after every epoch of the final model as
                ``on_epoch(epoch, max_epochs, info)`` (the CLI's progress bar).
            on_fold: called after each cross-fitting fold as ``on_fold(fold, folds)``.
        """
        pairs = check_pairs(pairs, "fit")
        check_calibration_size(len(pairs), self.config.uncertainty.calibration_folds)
        prompts = [p.prompt for p in pairs]
        feats = self._features(
            prompts + prompts,
            [p.chosen for p in pairs] + [p.rejected for p in pairs],
            progress,
        )
        from rewardhedge.train.fitting import fit_estimator
        from rewardhedge.train.pair_targets import PairTargets

        n = len(pairs)
        targets = PairTargets.from_pairs(pairs, self.config)
        xc, xr = feats[:n], feats[n:]

        heads, result = fit_estimator(xc, xr, self.config, targets=targets, progress=on_epoch)
        self._store_fit(heads, result, n, hash_pairs(pairs))
        folds = self.config.uncertainty.calibration_folds
        if folds >= 2:
            self._calibrate(xc, xr, targets, folds, on_fold)
        return self

    def fit_ratings(
        self,
        items: Sequence[RatedItem],
        *,
        progress: bool = False,
        on_epoch: Callable[[int, int, dict[str, Any]], None] | None = None,
        on_fold: Callable[[int, int], None] | None = None,
    ) -> EnsembleRewardModel:
        """Fit on single rated responses (HelpSteer-style item rows) with the
        ``regression`` or ``hl_gauss`` objective. Returns ``self``.

        There are no preference pairs, so no temperature is fitted (it stays 1) and
        ``on_fold`` is never called; each item is trained as a pair with itself whose
        second side carries no rating, which the rating losses skip.

        Raises:
            ConfigError: a BT objective, or the error predictor (both need pairs).
        """
        from rewardhedge.train.fitting import fit_estimator
        from rewardhedge.train.pair_targets import PairTargets

        objective = self.config.train.objective
        if objective not in (Objective.REGRESSION, Objective.HL_GAUSS):
            raise ConfigError(
                f"rated items (prompt, response, score) train train.objective 'regression' "
                f"or 'hl_gauss'; {objective.value!r} needs preference pairs."
            )
        if self.config.uncertainty.error_predictor:
            raise ConfigError(
                "uncertainty.error_predictor is fitted on held-out preference pairs; rated "
                "items have none."
            )
        items = list(items)
        if not items:
            raise ValueError("fit_ratings needs at least one RatedItem, got none.")
        feats = self._features([i.prompt for i in items], [i.response for i in items], progress)
        scores = np.array([i.score for i in items], dtype=np.float64)
        ratings = np.column_stack([scores, np.full(len(items), np.nan)])
        lengths = None
        if self.config.head.length_head:
            one = length_features([i.response for i in items])
            lengths = np.stack([one, one], axis=1)
        targets = PairTargets(ratings=ratings, lengths=lengths)
        heads, result = fit_estimator(feats, feats, self.config, targets=targets, progress=on_epoch)
        self._store_fit(heads, result, len(items), hash_rated_items(items))
        return self

    def _store_fit(self, heads: RewardHeads, result: Any, n: int, data_hash: str) -> None:
        """Keep a fresh fit, uncalibrated (temperature 1, no error predictor)."""
        self.heads_ = heads
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.n_pairs_ = n
        self.data_hash_ = data_hash
        self.encoder_id_ = self.encoder.id
        self.temperature_ = TemperatureScaling()
        self.density_: FeatureDensity | None = None
        self.error_predictor_: ErrorPredictor | None = None

    def _calibrate(
        self,
        xc: np.ndarray,
        xr: np.ndarray,
        targets: PairTargets,
        folds: int,
        on_fold: Callable[[int, int], None] | None,
    ) -> None:
        """Temperature (and the error predictor) from cross-fitted held-out predictions."""
        from rewardhedge.train.fitting import cross_fit

        held = cross_fit(xc, xr, self.config, folds=folds, targets=targets, on_fold=on_fold)
        logits = member_logits(held.chosen, held.rejected)
        self.temperature_ = TemperatureScaling.fit(
            logits, np.ones(logits.shape[1]), bounds=TEMPERATURE_BOUNDS
        )
        if not self.config.uncertainty.error_predictor:
            return
        density_c = np.empty(len(xc))
        density_r = np.empty(len(xr))
        for f in range(folds):
            train = held.fold != f
            density = FeatureDensity.fit(np.concatenate([xc[train], xr[train]]))
            density_c[~train] = density.score(xc[~train])
            density_r[~train] = density.score(xr[~train])
        prob = pairwise_from_estimates(held.chosen, held.rejected, self.temperature_.temperature)
        self.error_predictor_ = ErrorPredictor.fit(
            _deup_features(held.chosen, density_c),
            _deup_features(held.rejected, density_r),
            excess_loss(prob.prob),
            feature_names=DEUP_FEATURES,
        )
        self.density_ = FeatureDensity.fit(np.concatenate([xc, xr]))

    def _check_fitted(self, method: str) -> RewardHeads:
        heads = getattr(self, "heads_", None)
        if heads is None:
            raise NotFittedError.for_method(self, method)
        return heads

    @torch.no_grad()
    def score(
        self, prompts: Sequence[str], responses: Sequence[str], *, progress: bool = False
    ) -> RewardEstimate:
        """Rewards for ``(prompts[i], responses[i])`` with their uncertainty.

        Returns:
            `RewardEstimate` with `(n,)` mean/epistemic/aleatoric and `(m, n)`
            members (m = K heads, times the samples of MC dropout or Laplace).
            With an error predictor, ``epistemic`` is its predicted excess loss.
        """
        heads = self._check_fitted("score")
        if len(prompts) != len(responses):
            raise ValueError(
                f"prompts and responses differ in length: {len(prompts)} vs {len(responses)}."
            )
        parts = []
        for start in range(0, len(prompts), SCORE_CHUNK):
            feats = self._features(
                prompts[start : start + SCORE_CHUNK],
                responses[start : start + SCORE_CHUNK],
                progress,
            )
            parts.append(self._estimate(heads, feats))
        return _concat(parts, heads.n_outputs)

    @torch.no_grad()
    def score_batched(
        self, prompts: Sequence[str], responses: Sequence[str], *, batch_size: int
    ) -> RewardEstimate:
        """``score`` as a harness that scores ``batch_size`` items at a time would see it.

        The embedding cache is bypassed (a cached vector would hide any
        difference), the encoder runs with ``batch_size`` texts per forward
        pass, and the heads see one batch at a time. Used by the batch-size
        invariance control of ``evaluate``: a reward must not depend on which
        other texts shared its batch.
        """
        heads = self._check_fitted("score_batched")
        if batch_size < 1:
            raise ValueError(f"batch_size == {batch_size!r}, must be >= 1.")
        if len(prompts) != len(responses):
            raise ValueError(
                f"prompts and responses differ in length: {len(prompts)} vs {len(responses)}."
            )
        enc = self.encoder
        base = enc.encoder if isinstance(enc, CachedEncoder) else enc
        old = getattr(base, "batch_size", None)
        parts = []
        try:
            if old is not None:
                base.batch_size = batch_size
            for start in range(0, len(prompts), batch_size):
                feats = base.encode(
                    prompts[start : start + batch_size], responses[start : start + batch_size]
                )
                parts.append(self._estimate(heads, np.asarray(feats, dtype=np.float32)))
        finally:
            if old is not None:
                base.batch_size = old
        return _concat(parts, heads.n_outputs)

    def _estimate(self, heads: RewardHeads, feats: np.ndarray) -> RewardEstimate:
        est = heads.predict(torch.from_numpy(feats))
        if self.error_predictor_ is None or self.density_ is None:
            return est
        unfamiliarity = self.density_.score(feats)
        epistemic = self.error_predictor_.predict(_deup_features(est, unfamiliarity))
        return RewardEstimate(est.mean, epistemic, est.aleatoric, est.members)

    def get_params(self) -> dict[str, Any]:
        return self.config.to_dict()

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model folder (config JSON + safetensors + manifest)."""
        heads = self._check_fitted("save")
        tensors = heads.state_tensors()
        calibration: dict[str, Any] = {"temperature": self.temperature_.to_dict()}
        if self.error_predictor_ is not None and self.density_ is not None:
            calibration["error_predictor"] = self.error_predictor_.to_json()
            arrays = {**self.density_.to_arrays(), **self.error_predictor_.to_arrays()}
            tensors.update({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()})
        config = {
            "ensemble": self.config.to_dict(),
            "reward_rule": self.rule.to_dict(),
            "calibration": calibration,
            "fitted": self._fitted_record(dim=heads.heads.dim),
        }
        info = self._manifest_info(heads.heads.n_members, self.config.uncertainty.estimator.value)
        return save_model_folder(
            path, model_class=type(self).__name__, config=config, tensors=tensors, info=info
        )

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        encoder: Encoder | None = None,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
    ) -> EnsembleRewardModel:
        """Read a model folder written by ``save``; verifies hashes, format and encoder."""
        config_dict, tensors, manifest = load_model_folder(path, expected_class=cls.__name__)
        config_path = Path(path) / "config.json"
        try:
            config = EnsembleConfig.from_dict(config_dict["ensemble"])
            fitted = config_dict["fitted"]
            dim = int(fitted["dim"])
            if "member_norm" not in config_dict["ensemble"]:
                # Saved before member normalisation: its members are raw, and say so.
                config = replace(config, member_norm=MemberNormKind.NONE)
            rule = RewardRule.from_dict(config_dict.get("reward_rule", {}))
            calibration = config_dict.get("calibration", {})
            temperature = TemperatureScaling.from_dict(
                calibration.get("temperature", TemperatureScaling().to_dict())
            )
        except (ConfigError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFormatError(f"{config_path}: invalid model configuration ({exc}).") from exc
        arrays = {k: v.numpy() for k, v in tensors.items() if k.startswith(_DEUP_PREFIXES)}
        head_tensors = {k: v for k, v in tensors.items() if not k.startswith(_DEUP_PREFIXES)}
        try:
            heads = RewardHeads.from_tensors(
                build_heads(dim, config), config.uncertainty, head_tensors
            )
            density = predictor = None
            if "error_predictor" in calibration:
                density = FeatureDensity.from_arrays(arrays)
                predictor = ErrorPredictor.from_arrays(
                    arrays, calibration["error_predictor"]["feature_names"]
                )
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelFormatError(
                f"{Path(path) / 'weights.safetensors'}: weights do not match config.json ({exc})."
            ) from exc
        model = cls(config, encoder=encoder, cache_dir=cache_dir, use_cache=use_cache, rule=rule)
        model._restore_fitted(path, manifest, fitted, temperature)
        if (heads.norm is None) != (config.member_norm is MemberNormKind.NONE):
            raise ModelFormatError(
                f"{config_path}: ensemble.member_norm is {config.member_norm.value!r} but "
                f"weights.safetensors {'lacks' if heads.norm is None else 'has'} "
                "member_norm.loc/scale."
            )
        model.heads_ = heads
        model.density_ = density
        model.error_predictor_ = predictor
        return model


DEUP_FEATURES = ("log_epistemic", "log_unfamiliarity")
"""What the error predictor sees per response: the base estimator's epistemic
variance and how far its features lie from the training features (both logged)."""
_DEUP_PREFIXES = ("density.", "deup.")


def _concat(parts: list[RewardEstimate], n_outputs: int) -> RewardEstimate:
    """One estimate from consecutive chunks (an empty one when there are none)."""
    if not parts:
        empty = np.zeros(0)
        return RewardEstimate(empty, empty, empty, np.zeros((n_outputs, 0)))
    if len(parts) == 1:
        return parts[0]
    return RewardEstimate(
        mean=np.concatenate([p.mean for p in parts]),
        epistemic=np.concatenate([p.epistemic for p in parts]),
        aleatoric=np.concatenate([p.aleatoric for p in parts]),
        members=np.concatenate([p.members for p in parts], axis=1),
    )


def _deup_features(est: RewardEstimate, unfamiliarity: np.ndarray) -> np.ndarray:
    return np.column_stack([np.log(est.epistemic + 1e-8), np.log(unfamiliarity + 1e-12)])
