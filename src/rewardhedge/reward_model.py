"""The estimator users hold: an ensemble of reward heads on a frozen encoder.

This module composes the stages (data records → encoder features → heads →
``RewardEstimate`` → metrics) behind a scikit-learn-shaped lifecycle:
``EnsembleRewardModel(config).fit(pairs)``, then ``score``, ``compare``,
``evaluate``, ``save`` and ``load``. Like ``cli.py`` it sits at the end of the
import chain; the stages themselves never import it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardhedge.config import EncoderKind, EnsembleConfig
from rewardhedge.encoders import CachedEncoder, Encoder, build_encoder, default_cache_dir
from rewardhedge.errors import ConfigError, ModelFormatError, NotFittedError, unknown_option
from rewardhedge.evaluate import evaluate_pairwise
from rewardhedge.evaluate.pairwise import pairwise_correct
from rewardhedge.evaluate.uncertainty_quality import pair_uncertainties
from rewardhedge.models.heads import HeadStack
from rewardhedge.models.io import load_model_folder, save_model_folder
from rewardhedge.train.heads import fit_head_stack
from rewardhedge.types import (
    PairwiseEstimate,
    PreferencePair,
    RewardEstimate,
    ScoreItem,
    pairwise_from_estimates,
)
from rewardhedge.uncertainty.selective import fit_abstention, selective_report

SCORE_CHUNK = 8192
"""Items encoded per chunk when scoring, so memory stays bounded on large corpora."""


class EnsembleRewardModel:
    """K Bradley-Terry reward heads on one frozen encoder.

    Args:
        config: ensemble, head, training and encoder settings.
        encoder: an already built encoder (overrides ``config.encoder``).
        cache_dir: embedding cache folder (default: ``default_cache_dir()``).
        use_cache: cache embeddings on disk so re-training or re-scoring never
            re-encodes (ignored for the hashing encoder, which is cheaper than a
            cache look-up).

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
    ) -> None:
        self.config = config if config is not None else EnsembleConfig()
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self._encoder = encoder

    # -- encoder --------------------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        """The feature extractor, built on first use (loading MiniLM takes a second)."""
        if self._encoder is None:
            base = build_encoder(self.config.encoder)
            if self.use_cache and self.config.encoder.kind is not EncoderKind.HASHING:
                base = CachedEncoder(base, self.cache_dir or default_cache_dir())
            self._encoder = base
        return self._encoder

    def _features(
        self, prompts: Sequence[str], responses: Sequence[str], progress: bool
    ) -> np.ndarray:
        return np.asarray(
            self.encoder.encode(prompts, responses, progress=progress), dtype=np.float32
        )

    # -- lifecycle ------------------------------------------------------------------------
    def fit(
        self,
        pairs: Sequence[PreferencePair],
        *,
        progress: bool = False,
        on_epoch: Callable[[int, int, dict[str, Any]], None] | None = None,
    ) -> EnsembleRewardModel:
        """Encode the pairs and train every member. Returns ``self``.

        Args:
            pairs: training preferences.
            progress: show the encoding progress bar.
            on_epoch: called after every epoch as ``on_epoch(epoch, max_epochs, info)``
                (the CLI feeds its training progress bar with it).
        """
        pairs = _check_pairs(pairs, "fit")
        prompts = [p.prompt for p in pairs]
        feats = self._features(
            prompts + prompts,
            [p.chosen for p in pairs] + [p.rejected for p in pairs],
            progress,
        )
        n = len(pairs)
        margins = [p.margin for p in pairs]
        margin = None if all(m is None for m in margins) else np.array([m or 0.0 for m in margins])
        result = fit_head_stack(
            feats[:n],
            feats[n:],
            self.config,
            margin=margin,
            progress=on_epoch,
        )
        self.members_ = result.heads
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.n_pairs_ = n
        self.data_hash_ = hash_pairs(pairs)
        self.encoder_id_ = self.encoder.id
        return self

    def _check_fitted(self, method: str) -> HeadStack:
        heads = getattr(self, "members_", None)
        if heads is None:
            raise NotFittedError.for_method(self, method)
        return heads

    @torch.no_grad()
    def score(
        self, prompts: Sequence[str], responses: Sequence[str], *, progress: bool = False
    ) -> RewardEstimate:
        """Rewards for ``(prompts[i], responses[i])`` with their uncertainty.

        Returns:
            `RewardEstimate` with `(n,)` mean/epistemic/aleatoric and `(K, n)` members.
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
            parts.append(heads(torch.from_numpy(feats)).double().numpy())  # (K, chunk)
        members = np.concatenate(parts, axis=1) if parts else np.zeros((heads.n_members, 0))
        return RewardEstimate.from_members(members)

    def score_items(self, items: Sequence[ScoreItem], *, progress: bool = False) -> RewardEstimate:
        """``score`` for ``ScoreItem`` records."""
        return self.score([i.prompt for i in items], [i.response for i in items], progress=progress)

    def compare(
        self, pairs: Sequence[PreferencePair], *, progress: bool = False
    ) -> PairwiseEstimate:
        """P(chosen ≻ rejected) per member and for the ensemble (mean of member probabilities)."""
        pairs = _check_pairs(pairs, "compare")
        prompts = [p.prompt for p in pairs]
        est = self.score(
            prompts + prompts,
            [p.chosen for p in pairs] + [p.rejected for p in pairs],
            progress=progress,
        )
        n = len(pairs)
        return pairwise_from_estimates(est.take(np.arange(n)), est.take(np.arange(n, 2 * n)))

    def evaluate(
        self,
        pairs: Sequence[PreferencePair],
        *,
        reps: int = 2000,
        seed: int = 0,
        progress: bool = False,
        abstain_alpha: float | None = None,
        abstain_delta: float = 0.1,
        abstain_on: str = "prob_entropy",
        calibration_pairs: Sequence[PreferencePair] | None = None,
    ) -> dict[str, Any]:
        """Goodness of fit on held-out pairs: accuracy with CI, log loss, length baseline,
        subsets, calibration and uncertainty quality.

        With ``abstain_alpha``, also fit an abstention rule (keep a pair when
        its ``abstain_on`` uncertainty is at most a threshold) on
        ``calibration_pairs`` — or, if none are given, on a random half of
        ``pairs`` (seeded; the other half is then the test split every metric
        is computed on) — such that the kept pairs' misordering rate exceeds
        ``abstain_alpha`` with probability at most ``abstain_delta``, and
        report its coverage and error on the test pairs under ``"abstention"``.
        """
        pairs = _check_pairs(pairs, "evaluate")
        if abstain_alpha is None:
            return evaluate_pairwise(
                self.compare(pairs, progress=progress), pairs, reps=reps, seed=seed
            )
        source = "file"
        if calibration_pairs is None:
            if len(pairs) < 4:
                raise ValueError(
                    "abstention needs at least 4 pairs to split into calibration/test."
                )
            order = np.random.default_rng(seed).permutation(len(pairs))
            half = len(pairs) // 2
            calibration_pairs = [pairs[i] for i in order[:half]]
            pairs = [pairs[i] for i in order[half:]]
            source = "half of the evaluation pairs"
        cal = self.compare(_check_pairs(calibration_pairs, "evaluate"), progress=progress)
        test = self.compare(pairs, progress=progress)
        metrics = evaluate_pairwise(test, pairs, reps=reps, seed=seed)
        scores = pair_uncertainties(cal)
        if abstain_on not in scores:
            raise unknown_option("abstain_on", abstain_on, tuple(scores))
        cal_correct = pairwise_correct(cal.chosen.mean, cal.rejected.mean)
        rule = fit_abstention(
            scores[abstain_on],
            (cal_correct < 1).astype(float),
            alpha=abstain_alpha,
            delta=abstain_delta,
        )
        test_correct = pairwise_correct(test.chosen.mean, test.rejected.mean)
        report = selective_report(rule, pair_uncertainties(test)[abstain_on], 1.0 - test_correct)
        metrics["abstention"] = {
            "uncertainty": abstain_on,
            "calibration_source": source,
            **rule.to_dict(),
            "test": report,
        }
        return metrics

    def get_params(self) -> dict[str, Any]:
        return self.config.to_dict()

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model folder (config JSON + safetensors + manifest)."""
        heads = self._check_fitted("save")
        config = {
            "ensemble": self.config.to_dict(),
            "fitted": {
                "dim": heads.dim,
                "n_pairs": self.n_pairs_,
                "best_epoch": list(self.best_epoch_),
                "epochs_run": len(self.history_),
            },
        }
        info = {
            "encoder_id": self.encoder_id_,
            "training_data_hash": self.data_hash_,
            "n_members": heads.n_members,
        }
        return save_model_folder(
            path,
            model_class=type(self).__name__,
            config=config,
            tensors=heads.state_dict(),
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
    ) -> EnsembleRewardModel:
        """Read a model folder written by ``save``; verifies hashes, format and encoder."""
        config_dict, tensors, manifest = load_model_folder(path, expected_class=cls.__name__)
        config_path = Path(path) / "config.json"
        try:
            config = EnsembleConfig.from_dict(config_dict["ensemble"])
            fitted = config_dict["fitted"]
            dim = int(fitted["dim"])
        except (ConfigError, KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{config_path}: invalid model configuration ({exc}).") from exc
        heads = HeadStack(dim, config.n_members, config.head)
        try:
            heads.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise ModelFormatError(
                f"{Path(path) / 'weights.safetensors'}: weights do not match config.json ({exc})."
            ) from exc
        heads.eval()
        model = cls(config, encoder=encoder, cache_dir=cache_dir, use_cache=use_cache)
        if model.encoder.id != manifest.get("encoder_id"):
            raise ModelFormatError(
                f"{Path(path) / 'manifest.json'}: the model was trained on encoder "
                f"{manifest.get('encoder_id')!r}, but the encoder available here is "
                f"{model.encoder.id!r}; its scores would be meaningless."
            )
        model.members_ = heads
        model.history_ = []
        model.best_epoch_ = list(fitted.get("best_epoch", []))
        model.n_pairs_ = int(fitted.get("n_pairs", 0))
        model.data_hash_ = manifest.get("training_data_hash")
        model.encoder_id_ = manifest.get("encoder_id")
        return model


def hash_pairs(pairs: Sequence[PreferencePair]) -> str:
    """SHA-256 over the pairs' texts and margins, in order (recorded in the manifest)."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(
            json.dumps([p.prompt, p.chosen, p.rejected, p.margin], ensure_ascii=False).encode(
                "utf-8", "surrogatepass"
            )
        )
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def _check_pairs(pairs: Sequence[PreferencePair], method: str) -> list[PreferencePair]:
    pairs = list(pairs)
    if not pairs:
        raise ValueError(f"{method} needs at least one PreferencePair, got an empty sequence.")
    bad = next((i for i, p in enumerate(pairs) if not isinstance(p, PreferencePair)), None)
    if bad is not None:
        raise TypeError(
            f"{method} expects PreferencePair records; item {bad} is {type(pairs[bad]).__name__}. "
            "Load files with rewardhedge.data.load_pairs."
        )
    return pairs
