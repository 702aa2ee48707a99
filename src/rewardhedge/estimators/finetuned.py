"""A fine-tuned transformer reward model (or ensemble) with the same API as the default.

``FinetunedRewardModel(FinetuneConfig(backbone="path/to/model")).fit(pairs)``
tokenises the pairs, builds the network the config asks for (one head, K heads
on a shared backbone, K LoRA adapters, K independent copies, or MC dropout),
trains it with ``train/finetune.py`` and returns the same ``RewardEstimate`` as
:class:`EnsembleRewardModel`, so best-of-n, the server, ``eval`` and the RL
adapters take either. It saves as safetensors + JSON (weights, the backbone's
``config.json`` and the tokenizer's JSON/text files): loading runs no code.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from rewardhedge.config import MemberNormKind
from rewardhedge.config_finetune import FinetuneConfig, FinetuneEnsemble, HeadPooling, Precision
from rewardhedge.data.fingerprint import hash_pairs
from rewardhedge.encoders.base import check_texts
from rewardhedge.encoders.packing import Pass, packed_inputs, scoring_passes
from rewardhedge.encoders.reward_tokenizer import RewardTokenizer, pad_batch
from rewardhedge.errors import ConfigError, ModelFormatError, NotFittedError
from rewardhedge.estimators.base import RewardModelBase, check_pairs, refuse_soft_labels
from rewardhedge.models.io import (
    EXTRA_SUFFIXES,
    folder_model_class,
    load_model_folder,
    save_model_folder,
)
from rewardhedge.models.member_norm import NORM_PREFIX, MemberNorm, normalised_estimate
from rewardhedge.models.reward_transformer import (
    IndependentEnsemble,
    LoraEnsemble,
    RewardTransformer,
    backbone_from_config,
    default_pooling,
    drop_pooler,
    load_backbone,
    uses_varlen_attention,
)
from rewardhedge.progress_log import LogProgress
from rewardhedge.types import PreferencePair, RewardEstimate, member_logits
from rewardhedge.uncertainty.calibration import TEMPERATURE_BOUNDS, TemperatureScaling
from rewardhedge.uncertainty.reward_rule import RewardRule

if TYPE_CHECKING:
    from rewardhedge.train.finetune import StepCallback

TOKENIZER_DIR = "tokenizer"
SCORE_CHUNK = 2048
"""Items tokenised per chunk while scoring: the host tokenises the next chunk
while the GPU still runs the last one (outputs stay on the device until the end)."""
NORM_MAX_PAIRS = 4096
"""Training pairs (a seeded sample of them when there are more) scored after training
to fit the member normalisation: a mean and a std per member need no more, and
scoring every pair of a large set would cost a sizeable share of an epoch."""
CALIBRATION_SPLIT_STREAM = 4129
"""Second word of the seed of the calibration/report split of the eval pairs, so the
split draws apart from the other streams seeded by ``config.seed``."""


def _lora_backbone(backbone: Any, config: FinetuneConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = config.lora
    cfg = LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.targets()
    )
    return get_peft_model(backbone, cfg)


def build_network(backbone: Any, config: FinetuneConfig, pooling: str) -> nn.Module:
    """The network ``config.ensemble`` names, around ``backbone`` (seeded from ``config.seed``)."""
    kind, k = config.ensemble, config.members
    backbone = drop_pooler(backbone)
    torch.manual_seed(config.seed)
    if kind is FinetuneEnsemble.LORA:
        return LoraEnsemble(backbone, k, pooling, config.lora, config.dropout, seed=config.seed)
    if kind is FinetuneEnsemble.INDEPENDENT:
        members = []
        for i in range(k):
            torch.manual_seed(config.seed + i)
            copy_i = backbone if i == k - 1 else copy.deepcopy(backbone)
            if config.use_lora:
                copy_i = _lora_backbone(copy_i, config)
            members.append(RewardTransformer(copy_i, 1, pooling, config.dropout))
        return IndependentEnsemble(members)
    if config.use_lora:
        backbone = _lora_backbone(backbone, config)
    return RewardTransformer(backbone, k, pooling, config.dropout)


def split_calibration(
    pairs: Sequence[PreferencePair], fraction: float, seed: int
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """Split held-out pairs by prompt into ``(calibration, report)`` parts.

    ``round(fraction · P)`` of the P distinct prompts, drawn with ``seed``, go to the
    calibration part with all their pairs; every other pair is in the report part, so a
    prompt is never on both sides. With ``0 < fraction < 1`` each part gets at least one
    prompt (fewer than 2 distinct prompts is a :class:`ConfigError`); ``0`` puts every
    pair in the report part, ``1`` every pair in the calibration part. Each part keeps
    the pairs' order.
    """
    pairs = list(pairs)
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"calibration_fraction == {fraction!r}, must be in [0, 1].")
    distinct = sorted({p.prompt for p in pairs})
    n_cal = math.floor(fraction * len(distinct) + 0.5)
    if 0.0 < fraction < 1.0:
        if len(distinct) < 2:
            raise ConfigError(
                f"the {len(pairs)} eval pairs have {len(distinct)} distinct prompt(s); a "
                f"calibration_fraction of {fraction} splits them by prompt and needs at "
                "least 2. Give more eval pairs, or calibration_fraction 0 (no temperature) "
                "or 1 (no reported metrics)."
            )
        n_cal = min(max(n_cal, 1), len(distinct) - 1)
    order = np.random.default_rng([seed, CALIBRATION_SPLIT_STREAM]).permutation(len(distinct))
    chosen = {distinct[i] for i in order[:n_cal]}
    return (
        [p for p in pairs if p.prompt in chosen],
        [p for p in pairs if p.prompt not in chosen],
    )


def dropout_masks(n_samples: int, width: int, p: float, seed: int) -> torch.Tensor:
    """`(S, H)` fixed inverted-dropout masks: the same masks for every item and batch,
    so an MC-dropout reward does not depend on what else is scored with it."""
    gen = torch.Generator().manual_seed(seed)
    keep = (torch.rand(n_samples, width, generator=gen) >= p).float()
    return keep / (1.0 - p)


class FinetunedRewardModel(RewardModelBase):
    """A Hugging Face backbone fine-tuned into a reward model or ensemble.

    Args:
        config: what to fine-tune and how (``config.backbone`` is a local folder).
        rule: how ``reward`` turns an estimate into one number (saved with the model).
        device: where to score and train (default: CUDA when available).

    Example:
        >>> # rm = FinetunedRewardModel(FinetuneConfig(backbone="models/qwen2.5-0.5b",
        >>> #                                          ensemble="multihead", n_members=4))
        >>> # rm.fit(pairs, eval_pairs=held_out).save("rm/")
        >>> # rm.evaluate(rm.report_pairs_)  # the held-out pairs the temperature never saw
    """

    def __init__(
        self,
        config: FinetuneConfig,
        *,
        rule: RewardRule | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.config = config
        self.rule = rule if rule is not None else RewardRule()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    # -- fitting ---------------------------------------------------------------------
    def fit(
        self,
        pairs: Sequence[PreferencePair],
        *,
        eval_pairs: Sequence[PreferencePair] | None = None,
        calibration_pairs: Sequence[PreferencePair] | None = None,
        checkpoint_dir: str | Path | None = None,
        resume: bool = True,
        on_step: StepCallback | None = None,
        accelerator: Any | None = None,
        progress: bool = False,
    ) -> FinetunedRewardModel:
        """Fine-tune on ``pairs``, then fit the ``compare`` temperature on held-out pairs
        that no reported metric may use. Returns ``self``.

        Args:
            eval_pairs: held-out pairs. During training, every ``eval_every`` steps and
                at the end, all of them are scored for the progress line and
                ``report_.history`` (accuracy, mean probability and epistemic std at
                temperature 1: the temperature is not fitted yet). After training they
                are split by prompt (:func:`split_calibration`, ``config.calibration_fraction``
                of the prompts, drawn with ``config.seed``) into ``calibration_pairs_``,
                which fit the temperature, and ``report_pairs_``, the pairs to report
                metrics on (``rewardhedge finetune`` evaluates on them alone).
            calibration_pairs: fit the temperature on exactly these instead of a share
                of ``eval_pairs`` (which are then all ``report_pairs_``); they must share
                no prompt with ``eval_pairs``.

        Without either, the temperature stays 1.0. After ``fit``:
        ``calibration_pairs_`` (the pairs the temperature saw, ``[]`` for none),
        ``calibration_pairs_hash_`` (their :func:`hash_pairs`, ``None`` for none;
        saved in the manifest as ``calibration_pairs_hash``) and ``report_pairs_``
        (``None`` without ``eval_pairs``). The split is drawn before training, so a
        bad one fails fast. ``progress`` prints plain lines while the member
        normalisation and the temperature score the training and calibration items
        after the last step."""
        from transformers import AutoTokenizer

        from rewardhedge.train.finetune import finetune  # training only: loading skips train/
        from rewardhedge.train.pair_data import EncodedPairs

        pairs = check_pairs(pairs, "fit")
        refuse_soft_labels(pairs, "fine-tuning")
        if not self.config.backbone:
            raise ConfigError("finetune.backbone is empty; give a local model folder.")
        if eval_pairs is not None:
            eval_pairs = check_pairs(eval_pairs, "fit")
        calibration, reported = self._calibration_split(eval_pairs, calibration_pairs)
        backbone = load_backbone(self.config.backbone, self.config.attn_implementation)
        tok = AutoTokenizer.from_pretrained(self.config.backbone, local_files_only=True)
        self.tokenizer_ = RewardTokenizer(
            tok, self.config.max_length, use_chat_template=self.config.use_chat_template
        )
        self.pooling_ = (
            default_pooling(backbone.config)
            if self.config.pooling is HeadPooling.AUTO
            else self.config.pooling.value
        )
        self.backbone_config_ = backbone.config.to_dict()
        self.network_ = build_network(backbone, self.config, self.pooling_)
        self.temperature_ = TemperatureScaling()
        self.norm_: MemberNorm | None = None
        data = EncodedPairs.encode(pairs, self.tokenizer_)
        evaluate = None
        if eval_pairs is not None:
            all_eval = eval_pairs

            def evaluate(network: nn.Module) -> dict[str, Any]:
                return self._quick_eval(all_eval)  # at temperature 1, before calibration

        self.report_ = finetune(
            self.network_,
            data,
            self.config,
            pad_id=self.tokenizer_.pad_id,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            evaluate=evaluate,
            on_step=on_step,
            accelerator=accelerator,
            fingerprint=self._fingerprint(pairs),
        )
        self.network_.to(self.device).eval()
        self._fit_norm(pairs, progress)
        if calibration:  # after the norm: compare sees normalised members
            est = self.compare(calibration, progress=progress)
            logits = member_logits(est.chosen, est.rejected)
            self.temperature_ = TemperatureScaling.fit(
                logits, np.ones(logits.shape[1]), bounds=TEMPERATURE_BOUNDS
            )
        self.calibration_pairs_ = calibration
        self.calibration_pairs_hash_ = hash_pairs(calibration) if calibration else None
        self.report_pairs_ = reported
        self.data_hash_ = hash_pairs(pairs)
        return self

    def _calibration_split(
        self,
        eval_pairs: list[PreferencePair] | None,
        calibration_pairs: Sequence[PreferencePair] | None,
    ) -> tuple[list[PreferencePair], list[PreferencePair] | None]:
        """``(pairs that fit the temperature, pairs left to report on)``: the explicit
        ``calibration_pairs`` and all of ``eval_pairs``, else a split of ``eval_pairs``."""
        if calibration_pairs is not None:
            calibration = check_pairs(calibration_pairs, "fit")
            shared = {p.prompt for p in calibration} & {p.prompt for p in eval_pairs or ()}
            if shared:
                raise ConfigError(
                    f"calibration_pairs and eval_pairs share {len(shared)} prompt(s), e.g. "
                    f"{min(shared)[:60]!r}; metrics on eval_pairs would use prompts the "
                    "temperature saw. Give disjoint sets, or only eval_pairs to split them."
                )
            return calibration, eval_pairs
        if eval_pairs is None:
            return [], None
        return split_calibration(eval_pairs, self.config.calibration_fraction, self.config.seed)

    def _fit_norm(self, pairs: list[PreferencePair], progress: bool = False) -> None:
        """The member normalisation on both sides of (a sample of) the training pairs."""
        self.norm_ = None
        if self.config.member_norm is MemberNormKind.NONE:
            return
        if len(pairs) > NORM_MAX_PAIRS:
            rng = np.random.default_rng(self.config.seed)
            pairs = [pairs[i] for i in np.sort(rng.choice(len(pairs), NORM_MAX_PAIRS, False))]
        prompts = [p.prompt for p in pairs]
        raw = self.score(
            prompts + prompts,
            [p.chosen for p in pairs] + [p.rejected for p in pairs],
            progress=progress,
        )
        # members are heads (K rows), or S dropout draws of one head
        self.norm_ = MemberNorm.fit(
            raw.members, self.config.member_norm, n_heads=self.config.members
        )

    def _fingerprint(self, pairs: Sequence[PreferencePair]) -> dict[str, Any]:
        """What a checkpoint must match to be resumed: the data and every setting that
        changes the trajectory (not how often to log, evaluate or checkpoint)."""
        free = {
            "eval_every",
            "calibration_fraction",
            "checkpoint_every",
            "keep_checkpoints",
            "log_every",
            "score_batch_size",
            "member_norm",
        }
        settings = {k: v for k, v in self.config.to_dict().items() if k not in free}
        return {"training data": hash_pairs(pairs), **settings}

    def _quick_eval(self, pairs: list[PreferencePair]) -> dict[str, Any]:
        """Accuracy, mean P(chosen ≻ rejected) and mean epistemic std during training."""
        est = self.compare(pairs)
        return {
            "n": len(pairs),
            "accuracy": float(np.mean(est.chosen.mean > est.rejected.mean)),
            "mean_prob": float(np.mean(est.prob)),
            "mean_epistemic_std": float(np.mean(np.sqrt(est.chosen.epistemic))),
        }

    def _check_fitted(self, method: str) -> nn.Module:
        net = getattr(self, "network_", None)
        if net is None:
            raise NotFittedError.for_method(self, method)
        return net

    # -- scoring ---------------------------------------------------------------------
    @torch.no_grad()
    def score(
        self, prompts: Sequence[str], responses: Sequence[str], *, progress: bool = False
    ) -> RewardEstimate:
        """Rewards with their uncertainty; members are the K heads/adapters/copies, or
        the ``mc_samples`` dropout draws of an ``mc_dropout`` model. ``progress``
        prints a plain line on stderr at the start, every 30 s and at the end."""
        return self.score_batched(
            prompts, responses, batch_size=self.config.score_batch_size, progress=progress
        )

    @torch.no_grad()
    def score_batched(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        *,
        batch_size: int,
        progress: bool = False,
    ) -> RewardEstimate:
        """``score`` with ``batch_size`` sequences per forward pass (longest first)."""
        net = self._check_fitted("score")
        prompts, responses = check_texts(prompts, responses)
        if batch_size < 1:
            raise ValueError(f"batch_size == {batch_size!r}, must be >= 1.")
        net.eval()
        outputs: list[torch.Tensor] = []
        positions: list[np.ndarray] = []
        log = LogProgress(
            "scoring", total=len(prompts), noun="item", unit="items", enabled=progress
        )
        # One autocast region for the whole call: the bf16 copies of the weights are
        # cast once and reused by every batch, not re-cast per batch.
        with self._autocast():
            for lo in range(0, len(prompts), SCORE_CHUNK):
                ids, _ = self.tokenizer_.encode_many(
                    prompts[lo : lo + SCORE_CHUNK], responses[lo : lo + SCORE_CHUNK]
                )
                for index, rows in self._passes(ids, batch_size):
                    seqs = [ids[i] for i in index]
                    out = (
                        self.forward_ids(seqs) if rows is None else self.forward_packed(seqs, rows)
                    )
                    outputs.append(out)
                    positions.append(index + lo)
                    log.advance(len(index))
        if not outputs:
            return RewardEstimate.from_members(np.zeros((self.n_members, 0)))
        members = torch.cat(outputs, dim=1).double().cpu().numpy()  # the one device sync
        result = np.empty_like(members)
        result[:, np.concatenate(positions)] = members
        return normalised_estimate(result, getattr(self, "norm_", None))

    def _passes(self, ids: list[list[int]], batch_size: int) -> list[Pass]:
        """The forward passes over ``ids`` (see :func:`scoring_passes`)."""
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        capacity = self.config.max_length if self.config.packing else None
        one_row = capacity is not None and uses_varlen_attention(self.network_)
        return scoring_passes(lengths, batch_size, capacity, one_row=one_row)

    def forward_ids(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """`(m, B)` member rewards of token sequences, left on the device."""
        ids, mask = pad_batch(sequences, self.tokenizer_.pad_id, self.config.pad_to_multiple_of)
        return self._forward(torch.from_numpy(ids), torch.from_numpy(mask))

    def forward_packed(
        self, sequences: Sequence[Sequence[int]], rows: list[list[int]]
    ) -> torch.Tensor:
        """`(m, B)` member rewards of sequences packed end to end in ``rows`` (indices
        into ``sequences``), left on the device."""
        pad, multiple = self.tokenizer_.pad_id, self.config.pad_to_multiple_of
        return self._forward(*packed_inputs(sequences, rows, pad, self.pooling_, multiple))

    def _forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The network on host tensors (ids, mask[, position ids, pool index])."""
        net = self._check_fitted("forward_ids")
        moved = [t.to(self.device, non_blocking=True) for t in inputs]
        with self._autocast():
            if self.config.ensemble is FinetuneEnsemble.MC_DROPOUT:
                assert isinstance(net, RewardTransformer)
                pooled = net.pooled(*moved).float()  # (B, H)
                masks = self._masks(pooled.shape[1])  # (S, H)
                heads = net.heads.float()
                draws = (masks[:, None, :] * pooled[None]) @ heads.weight.T + heads.bias
                return draws.permute(0, 2, 1).reshape(-1, pooled.shape[0])  # (S·K, B)
            return net(*moved).float()

    def _autocast(self) -> torch.autocast:
        """bf16 autocast on CUDA unless the config asks for fp32 (nested regions reuse the
        outer region's weight casts)."""
        use_bf16 = self.device.type == "cuda" and self.config.precision is not Precision.FP32
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_bf16)

    def _masks(self, width: int) -> torch.Tensor:
        cached = getattr(self, "_mask_cache", None)
        if cached is None or cached.shape[1] != width:
            cached = dropout_masks(
                self.config.mc_samples, width, self.config.dropout, self.config.seed
            ).to(self.device)
            self._mask_cache = cached
        return cached

    @property
    def n_members(self) -> int:
        k = self.config.members
        return (
            k * self.config.mc_samples if self.config.ensemble is FinetuneEnsemble.MC_DROPOUT else k
        )

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write weights (safetensors), config, backbone config and tokenizer (JSON/text)."""
        net = self._check_fitted("save")
        tensors = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
        norm = getattr(self, "norm_", None)
        if norm is not None:
            tensors.update(norm.to_tensors())
        with tempfile.TemporaryDirectory() as tmp:
            self.tokenizer_.tokenizer.save_pretrained(tmp)
            extra = {
                f"{TOKENIZER_DIR}/{f.name}": f.read_bytes()
                for f in sorted(Path(tmp).iterdir())
                if f.is_file() and f.name.endswith(EXTRA_SUFFIXES)
            }
        config = {
            "finetune": self.config.to_dict(),
            "reward_rule": self.rule.to_dict(),
            "calibration": {"temperature": self.temperature_.to_dict()},
            "backbone_config": self.backbone_config_,
            "network": {"pooling": self.pooling_, "layout": self.tokenizer_.layout},
            "training": self.report_.to_dict() if getattr(self, "report_", None) else {},
        }
        info = {
            "encoder_id": f"finetuned:{self.backbone_config_.get('model_type', 'unknown')}",
            "training_data_hash": getattr(self, "data_hash_", None),
            "calibration_pairs_hash": getattr(self, "calibration_pairs_hash_", None),
            "n_members": self.config.members,
            "estimator": f"finetuned_{self.config.ensemble.value}",
        }
        return save_model_folder(
            path,
            model_class=type(self).__name__,
            config=config,
            tensors=tensors,
            info=info,
            extra_files=extra,
        )

    @classmethod
    def load(
        cls, path: str | Path, *, device: str | torch.device | None = None
    ) -> FinetunedRewardModel:
        """Read a folder written by ``save`` (hashes verified; nothing unpickled)."""
        from transformers import AutoConfig, AutoTokenizer

        folder = Path(path)
        config_dict, tensors, _ = load_model_folder(folder, expected_class=cls.__name__)
        try:
            config = FinetuneConfig.from_dict(config_dict["finetune"])
            if "member_norm" not in config_dict["finetune"]:
                # Saved before member normalisation: its members are raw, and say so.
                config = dataclasses.replace(config, member_norm=MemberNormKind.NONE)
            norm = MemberNorm.from_tensors(tensors)
            if (norm is None) != (config.member_norm is MemberNormKind.NONE):
                raise ValueError(
                    f"finetune.member_norm is {config.member_norm.value!r} but "
                    f"weights.safetensors {'lacks' if norm is None else 'has'} "
                    "member_norm.loc/scale"
                )
            if norm is not None and norm.n_heads != config.members:
                raise ValueError(f"member_norm has {norm.n_heads} heads for {config.members}")
            tensors = {k: v for k, v in tensors.items() if not k.startswith(NORM_PREFIX)}
            rule = RewardRule.from_dict(config_dict.get("reward_rule", {}))
            temperature = TemperatureScaling.from_dict(
                config_dict.get("calibration", {}).get("temperature", {"temperature": 1.0})
            )
            backbone_cfg = dict(config_dict["backbone_config"])
            pooling = config_dict["network"]["pooling"]
        except (ConfigError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFormatError(
                f"{folder / 'config.json'}: invalid model configuration ({exc})."
            ) from exc
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "config.json").write_text(json.dumps(backbone_cfg))
            hf_config = AutoConfig.from_pretrained(tmp, local_files_only=True)
        tok = AutoTokenizer.from_pretrained(str(folder / TOKENIZER_DIR), local_files_only=True)
        model = cls(config, rule=rule, device=device)
        backbone = backbone_from_config(hf_config, config.attn_implementation)
        network = build_network(backbone, config, pooling)
        try:
            network.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise ModelFormatError(
                f"{folder / 'weights.safetensors'}: weights do not match config.json ({exc})."
            ) from exc
        model.network_ = network.to(model.device).eval()
        model.tokenizer_ = RewardTokenizer(
            tok, config.max_length, use_chat_template=config.use_chat_template
        )
        model.pooling_ = pooling
        model.backbone_config_ = backbone_cfg
        model.temperature_ = temperature
        model.norm_ = norm
        return model


def is_finetuned_folder(path: str | Path) -> bool:
    """Whether a model folder holds a :class:`FinetunedRewardModel` (by its manifest)."""
    return folder_model_class(path) == FinetunedRewardModel.__name__
