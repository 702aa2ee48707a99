"""A general preference model (GPM) on a frozen encoder: pairs in, preference probabilities out.

Zhang et al. 2024, "General Preference Modeling with Preference Representations for
Aligning Language Models" (arXiv:2410.02197): each (prompt, response) gets a
``dim``-dimensional preference embedding ``v`` (a small head on the frozen encoder's
features), and

    P(a ≻ b | x) = σ(s(a, b) / T),    s(a, b) = v_aᵀ R v_b,

with ``R`` block-diagonal of 2×2 blocks ``[[0, −1], [1, 0]]``: ``s(a, b) = −s(b, a)``
and ``s(a, a) = 0`` exactly, and cyclic preferences (a ≻ b ≻ c ≻ a), which no
Bradley–Terry reward can hold, are representable. ``T`` is the temperature
(cross-fitted, as for :class:`~rewardhedge.estimators.ensemble.EnsembleRewardModel`;
1 without calibration).

There is **no scalar reward**: ``score`` without a reference raises
:class:`NoScalarRewardError`; ``score(..., reference=...)`` gives ``s(response,
reference)``, the logit of P(response ≻ reference). ``compare`` returns the
library's :class:`~rewardhedge.types.PairwiseEstimate` with, for member ``k``,
``chosen.members[k] = s_k(c, r) / 2`` and ``rejected.members[k] = −s_k(c, r) / 2``:
each side's value is relative to the other side of its pair (centred on the pair),
so ``member_logits`` is ``s_k`` exactly, ``margin`` is the members' mean score and
``prob`` the mean of ``σ(s_k / T)``, and everything computed from a
``PairwiseEstimate`` (accuracy, log loss, calibration, uncertainty quality,
abstention) works unchanged. A side's value means nothing outside its pair.
See ``docs/general-preference.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardhedge.data.fingerprint import hash_pairs
from rewardhedge.encoders import Encoder
from rewardhedge.errors import ConfigError, ModelFormatError, NotFittedError, RewardHedgeError
from rewardhedge.estimators.base import RewardModelBase, check_pairs, refuse_soft_labels
from rewardhedge.estimators.ensemble import check_calibration_size
from rewardhedge.estimators.frozen_features import FrozenFeatures
from rewardhedge.models.general_preference import GPMConfig, GPMHeads
from rewardhedge.models.io import load_model_folder, save_model_folder
from rewardhedge.types import (
    PairwiseEstimate,
    PreferencePair,
    RewardEstimate,
    pairwise_from_estimates,
)
from rewardhedge.uncertainty.calibration import TEMPERATURE_BOUNDS, TemperatureScaling
from rewardhedge.uncertainty.reward_rule import RewardRule

__all__ = [
    "GeneralPreferenceModel",
    "NoScalarRewardError",
]

SCORE_CHUNK = 8192
"""Pairs encoded and scored per chunk, so memory stays bounded on large inputs."""


class NoScalarRewardError(RewardHedgeError, TypeError):
    """A model that only compares responses was asked for one reward per response."""


def _no_scalar_reward(name: str) -> NoScalarRewardError:
    return NoScalarRewardError(
        f"{name} gives no scalar reward: a general preference model scores pairs, "
        "P(a ≻ b) = σ(s(a, b)), and its preferences may be cyclic, so no single number "
        "per response can hold them. Use compare(pairs) (on the command line: "
        "rewardhedge eval --data PAIRS), or score(prompts, responses, reference=...) "
        "for s(response, reference), the logit of P(response ≻ reference)."
    )


class GeneralPreferenceModel(FrozenFeatures, RewardModelBase):
    """K general-preference heads on one frozen encoder, with their spread.

    Each member maps the features of a (prompt, response) to a preference embedding
    and scores a pair by the skew-symmetric product ``s(a, b) = v_aᵀ R v_b``;
    members differ by initialisation and bootstrap resample, so ``compare`` reports
    each member's probability and their spread, like the reward ensembles.

    Args:
        config: embedding, training and encoder settings.
        encoder: an already built encoder (overrides ``config.encoder``).
        cache_dir: embedding cache folder (default: ``default_cache_dir()``).
        use_cache: cache embeddings on disk (ignored for the hashing encoder).

    Example:
        >>> from rewardhedge.config import EncoderConfig
        >>> from rewardhedge.data.cyclic import rock_paper_scissors_pairs
        >>> cfg = GPMConfig(n_members=2, calibration_folds=0, lr=0.05, epochs=60,
        ...                 encoder=EncoderConfig(kind="hashing", dim=64))
        >>> model = GeneralPreferenceModel(cfg).fit(rock_paper_scissors_pairs(100))
        >>> held_out = rock_paper_scissors_pairs(20, seed=1)
        >>> float((model.compare(held_out).prob > 0.5).mean())
        1.0
    """

    scalar_rewards = False

    def __init__(
        self,
        config: GPMConfig | None = None,
        *,
        encoder: Encoder | None = None,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
    ) -> None:
        self.config = config if config is not None else GPMConfig()
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.rule = RewardRule()
        self._encoder = encoder

    # -- lifecycle ------------------------------------------------------------------------
    def fit(
        self,
        pairs: Sequence[PreferencePair],
        *,
        progress: bool = False,
        on_epoch: Callable[[int, int, dict[str, Any]], None] | None = None,
        on_fold: Callable[[int, int], None] | None = None,
    ) -> GeneralPreferenceModel:
        """Encode the pairs, train every member with ``−log σ(s(chosen, rejected))``,
        then (``calibration_folds >= 2``) fit the temperature on cross-fitted held-out
        scores. Pair margins are not used. Returns ``self``.

        Args:
            pairs: training preferences.
            progress: show the encoding progress bar.
            on_epoch: called after every epoch of the final model as
                ``on_epoch(epoch, max_epochs, info)``.
            on_fold: called after each cross-fitting fold as ``on_fold(fold, folds)``.
        """
        pairs = check_pairs(pairs, "fit")
        refuse_soft_labels(pairs, "the general preference model")
        folds = self.config.calibration_folds
        check_calibration_size(len(pairs), folds, hint="set calibration_folds=0")
        prompts = [p.prompt for p in pairs]
        feats = self._features(
            prompts + prompts, [p.chosen for p in pairs] + [p.rejected for p in pairs], progress
        )
        n = len(pairs)
        xc, xr = feats[:n], feats[n:]
        from rewardhedge.train.general_preference import cross_fit_gpm, fit_gpm_heads

        result = fit_gpm_heads(xc, xr, self.config, progress=on_epoch)
        self.heads_ = result.heads
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.n_pairs_ = n
        self.data_hash_ = hash_pairs(pairs)
        self.encoder_id_ = self.encoder.id
        self.temperature_ = TemperatureScaling()
        if folds >= 2:
            held, _ = cross_fit_gpm(xc, xr, self.config, folds=folds, on_fold=on_fold)
            self.temperature_ = TemperatureScaling.fit(held, np.ones(n), bounds=TEMPERATURE_BOUNDS)
        return self

    def _check_fitted(self, method: str) -> GPMHeads:
        heads = getattr(self, "heads_", None)
        if heads is None:
            raise NotFittedError.for_method(self, method)
        return heads

    def pair_logits(
        self,
        prompts: Sequence[str],
        responses_a: Sequence[str],
        responses_b: Sequence[str],
        *,
        progress: bool = False,
    ) -> np.ndarray:
        """`(K, n)` float64 member scores ``s_k(a_i, b_i)`` at temperature 1: the logit of
        P(``responses_a[i]`` ≻ ``responses_b[i]`` | ``prompts[i]``). Swapping ``a`` and
        ``b`` negates every score exactly; ``a == b`` gives exactly 0."""
        heads = self._check_fitted("pair_logits")
        n = len(prompts)
        if len(responses_a) != n or len(responses_b) != n:
            raise ValueError(
                f"prompts, responses_a and responses_b differ in length: {n}, "
                f"{len(responses_a)}, {len(responses_b)}."
            )
        parts = [np.zeros((heads.n_members, 0))]
        for start in range(0, n, SCORE_CHUNK):
            p = list(prompts[start : start + SCORE_CHUNK])
            a = list(responses_a[start : start + SCORE_CHUNK])
            b = list(responses_b[start : start + SCORE_CHUNK])
            feats = self._features(p + p, a + b, progress)
            parts.append(heads.pair_scores(feats[: len(p)], feats[len(p) :]))
        return np.concatenate(parts, axis=1)

    def compare(
        self, pairs: Sequence[PreferencePair], *, progress: bool = False
    ) -> PairwiseEstimate:
        """P(chosen ≻ rejected) per member (``σ(s_k(c, r) / T)``) and their mean.

        ``chosen`` and ``rejected`` hold ``±s_k(c, r) / 2`` per member: values relative
        to the other side of the same pair (see the module docstring), so
        ``member_logits(chosen, rejected)`` is ``s_k`` and ``margin`` the mean score.
        """
        pairs = check_pairs(pairs, "compare")
        self._check_fitted("compare")
        s = self.pair_logits(
            [p.prompt for p in pairs],
            [p.chosen for p in pairs],
            [p.rejected for p in pairs],
            progress=progress,
        )
        half = s / 2.0
        return pairwise_from_estimates(
            RewardEstimate.from_members(half), RewardEstimate.from_members(-half), self.temperature
        )

    def score(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        *,
        reference: str | Sequence[str] | None = None,
        progress: bool = False,
    ) -> RewardEstimate:
        """A GPM has no scalar reward: without ``reference`` this raises
        :class:`NoScalarRewardError` (use :meth:`compare`).

        With ``reference`` (one response for every item, or one per item), the
        estimate of ``s(response, reference)`` per member: the logit of
        P(response ≻ reference | prompt) at temperature 1, comparable across items
        only when they share a reference. ``epistemic`` is the members' variance,
        ``aleatoric`` is 0.

        Raises:
            NotFittedError: before ``fit``.
            NoScalarRewardError: no ``reference``.
        """
        self._check_fitted("score")
        if reference is None:
            raise _no_scalar_reward(type(self).__name__)
        if len(prompts) != len(responses):
            raise ValueError(
                f"prompts and responses differ in length: {len(prompts)} vs {len(responses)}."
            )
        if isinstance(reference, str):
            refs = [reference] * len(prompts)
        else:
            refs = list(reference)
            if len(refs) != len(prompts):
                raise ValueError(
                    f"reference has {len(refs)} responses for {len(prompts)} items; give one "
                    "string for all of them or one per item."
                )
        return RewardEstimate.from_members(
            self.pair_logits(prompts, responses, refs, progress=progress)
        )

    def get_params(self) -> dict[str, Any]:
        return self.config.to_dict()

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model folder (config JSON + safetensors + manifest)."""
        heads = self._check_fitted("save")
        config = {
            "gpm": self.config.to_dict(),
            "calibration": {"temperature": self.temperature_.to_dict()},
            "fitted": self._fitted_record(in_dim=heads.in_dim),
        }
        info = self._manifest_info(heads.n_members, "general_preference")
        return save_model_folder(
            path,
            model_class=type(self).__name__,
            config=config,
            tensors=heads.state_tensors(),
            info=info,
        )

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        encoder: Encoder | None = None,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
    ) -> GeneralPreferenceModel:
        """Read a model folder written by ``save``; verifies hashes, format and encoder."""
        config_dict, tensors, manifest = load_model_folder(path, expected_class=cls.__name__)
        config_path = Path(path) / "config.json"
        try:
            config = GPMConfig.from_dict(config_dict["gpm"])
            fitted = config_dict["fitted"]
            in_dim = int(fitted["in_dim"])
            calibration = config_dict.get("calibration", {})
            temperature = TemperatureScaling.from_dict(
                calibration.get("temperature", TemperatureScaling().to_dict())
            )
        except (ConfigError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFormatError(f"{config_path}: invalid model configuration ({exc}).") from exc
        try:
            heads = GPMHeads(in_dim, config.n_members, config.dim, config.hidden)
            heads.load_tensors(tensors)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelFormatError(
                f"{Path(path) / 'weights.safetensors'}: weights do not match config.json ({exc})."
            ) from exc
        heads.eval()
        model = cls(config, encoder=encoder, cache_dir=cache_dir, use_cache=use_cache)
        model._restore_fitted(path, manifest, fitted, temperature)
        model.heads_ = heads
        return model
