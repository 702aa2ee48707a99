"""Typed configuration of the fine-tuning trainer (a Hugging Face backbone on GPU).

Kept apart from ``config.py`` (the frozen-encoder defaults) because it is a
different model family with its own knobs; it shares the ``Option`` parsing
and the ``to_dict``/``from_dict`` round trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rewardhedge.config import (
    MemberNormKind,
    Objective,
    Option,
    _check_positive,
    check_seed,
    from_dict,
    to_dict,
)
from rewardhedge.errors import ConfigError


class FinetuneEnsemble(Option):
    SINGLE = "single"
    """One model, one head: no epistemic uncertainty."""
    MULTIHEAD = "multihead"
    """K heads on one shared backbone, each with its own bootstrap weights (cheap:
    one forward and backward pass for all K)."""
    LORA = "lora"
    """K LoRA adapters and heads on one frozen base (K passes, one base in memory)."""
    INDEPENDENT = "independent"
    """K full copies from different seeds (the gold standard; K× compute and memory)."""
    MC_DROPOUT = "mc_dropout"
    """One model; dropout kept on at scoring time, ``mc_samples`` draws."""


class Schedule(Option):
    COSINE = "cosine"
    LINEAR = "linear"
    CONSTANT = "constant"


class Precision(Option):
    AUTO = "auto"
    """bf16 autocast on a GPU that supports it, fp32 elsewhere."""
    BF16 = "bf16"
    FP32 = "fp32"


class HeadPooling(Option):
    AUTO = "auto"
    """``first`` for masked-LM encoders (BERT-like), ``last`` for decoders."""
    LAST = "last"
    """The last real token (right padding), where a decoder has read everything."""
    FIRST = "first"
    """The first token ([CLS])."""


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapters (peft) for ``lora`` ensembles or ``use_lora`` fine-tuning."""

    r: int = 16
    """LoRA rank of each adapter."""
    alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    dropout: float = 0.0
    """Dropout on the adapters' inputs while training."""
    target_modules: str = "all-linear"
    """peft's ``target_modules``: ``"all-linear"`` or comma-separated module names."""

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1:
            raise ConfigError(f"lora.r == {self.r}, lora.alpha == {self.alpha}; both must be >= 1.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora.dropout == {self.dropout!r}, must be in [0, 1).")

    def targets(self) -> str | list[str]:
        if self.target_modules == "all-linear":
            return "all-linear"
        return [t.strip() for t in self.target_modules.split(",") if t.strip()]


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tune a local Hugging Face backbone into a reward model (or an ensemble)."""

    backbone: str = ""
    """Local model folder (nothing is downloaded)."""
    ensemble: FinetuneEnsemble = FinetuneEnsemble.SINGLE
    """single, multihead, lora, independent or mc_dropout (see ``FinetuneEnsemble``)."""
    n_members: int | None = None
    """Members K; ``None`` picks 1 for ``single``/``mc_dropout`` and 4 otherwise."""
    use_lora: bool = False
    """Train LoRA adapters instead of every weight (implied by ``ensemble="lora"``)."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    objective: Objective = Objective.BT
    """bt, regression or bt_regression (see ``Objective``)."""
    regression_weight: float = 1.0
    """Weight of the regression term in ``bt_regression``."""
    center_coef: float = 0.0
    """Reward centering ``coef · mean((r_c + r_r)²)`` (TRL's ``center_rewards_coefficient``)."""
    bootstrap: bool = True
    """Give each member of a multi-member ensemble Poisson(1) weights per pair (diversity)."""
    pooling: HeadPooling = HeadPooling.AUTO
    head_dropout: float | None = None
    """Dropout on the pooled vector before the heads; ``None``: 0.1 for
    ``mc_dropout``, 0 otherwise."""
    mc_samples: int = 16
    """Dropout draws of an ``mc_dropout`` model at scoring time (fixed, seeded masks on
    the pooled vector: one backbone pass per item, independent of the batch)."""
    max_length: int = 1024
    """Tokens per sequence, fixed parts included; the prompt is cut from the left."""
    use_chat_template: bool = True
    batch_size: int = 8
    """Pairs per micro-batch (2× sequences per forward pass)."""
    grad_accum: int = 1
    """Micro-batches per optimizer step."""
    lr: float | None = None
    """AdamW learning rate; ``None``: 1e-5 for full fine-tuning, 1e-4 with LoRA."""
    head_lr: float | None = None
    """Learning rate of the heads; ``None``: the same as ``lr``."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    epochs: float = 1.0
    """Passes over the training pairs (fractions allowed)."""
    max_steps: int | None = None
    """Optimizer steps to run; overrides ``epochs`` when set."""
    warmup_ratio: float = 0.03
    """Share of the steps over which the learning rate warms up from 0."""
    schedule: Schedule = Schedule.COSINE
    """Learning-rate schedule after warm-up: cosine, linear or constant."""
    max_grad_norm: float | None = 1.0
    """Clip the gradient norm to this (``None``: no clipping)."""
    precision: Precision = Precision.AUTO
    """auto (bf16 on a GPU that supports it, else fp32), bf16 or fp32."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (less memory, more time)."""
    compile: bool = False
    """``torch.compile`` the backbone (pays off on long runs; pads lengths to
    multiples of ``pad_to_multiple_of`` to bound recompiles)."""
    group_by_length: bool | None = None
    """Form batches of pairs of similar length (less padding), in shuffled order.
    ``None``: on, unless ``packing`` (mixed lengths pack tighter: on HH at batch
    32, 1.4% padding shuffled against 5.4% grouped)."""
    pad_to_multiple_of: int = 8
    attention: str = "auto"
    """The backbone's ``attn_implementation``: ``auto`` (FlashAttention 2 when packing
    on a GPU with ``flash-attn`` installed, else transformers' default, SDPA),
    ``sdpa``, ``eager``, ``flash_attention_2``, ..."""
    packing: bool = False
    """Pack the sequences of a micro-batch end to end in rows of ``max_length``
    tokens, position ids restarting per sequence (padding-free; a decoder uses
    variable-length flash attention when it is installed, block-causal masks
    otherwise). Checked on a probe before training; a backbone whose outputs
    change when packed (e.g. RoBERTa) is refused."""
    train_top_layers: int | None = None
    """Train only the top N transformer layers (full weights) and the heads; the layers
    below stay frozen and their outputs are computed once per text and cached in
    memory, so later epochs cost about N/L of a full pass (BERT-style encoders; not
    with LoRA or packing). ``None``: every layer trains."""
    eval_every: int = 0
    """Evaluate on the eval pairs every N optimizer steps (0: only at the end)."""
    calibration_fraction: float = 0.5
    """Share of the eval pairs' prompts (drawn with ``seed``; all pairs of a prompt on
    one side) whose pairs fit the ``compare`` temperature after training; the other
    pairs are the report part, the only pairs ``finetune`` reports metrics on, so no
    reported metric uses a pair the temperature saw. 0: temperature 1, every eval pair
    reported; 1: every eval pair calibrates, none is reported."""
    checkpoint_every: int = 0
    """Write a resumable checkpoint every N optimizer steps (0: never)."""
    keep_checkpoints: int = 2
    """How many of the newest checkpoints to keep."""
    log_every: int = 10
    """Read the loss back from the device every N steps (the only host syncs)."""
    score_batch_size: int = 32
    seed: int = 0
    """Seed of the initialisation, the bootstrap weights and the batch order."""
    member_norm: MemberNormKind = MemberNormKind.STANDARDIZE
    """Per-member normalisation fitted on the training items after training, applied
    before every aggregation but the mean: ``standardize``, ``center`` or ``none``
    (see ``EnsembleConfig.member_norm``)."""

    def __post_init__(self) -> None:
        for name, cls in (
            ("ensemble", FinetuneEnsemble),
            ("objective", Objective),
            ("schedule", Schedule),
            ("precision", Precision),
            ("pooling", HeadPooling),
            ("member_norm", MemberNormKind),
        ):
            object.__setattr__(self, name, cls.parse(getattr(self, name), f"finetune.{name}"))
        if self.objective is Objective.HL_GAUSS:
            raise ConfigError(
                "finetune.objective 'hl_gauss' is a frozen-encoder head objective (rewardhedge "
                "train --objective hl_gauss); fine-tuning takes bt, regression or bt_regression."
            )
        if isinstance(self.lora, dict):
            object.__setattr__(self, "lora", from_dict(LoraSettings, self.lora, "finetune.lora."))
        check_seed("finetune.seed", self.seed)
        if self.n_members is not None and self.n_members < 1:
            raise ConfigError(f"finetune.n_members == {self.n_members!r}, must be >= 1.")
        if self.ensemble in (FinetuneEnsemble.SINGLE, FinetuneEnsemble.MC_DROPOUT) and (
            self.n_members not in (None, 1)
        ):
            raise ConfigError(
                f"finetune.n_members == {self.n_members} with ensemble "
                f"{self.ensemble.value!r}, which has one member; pick 'multihead', 'lora' or "
                "'independent' for K members."
            )
        for name in (
            "mc_samples",
            "max_length",
            "batch_size",
            "grad_accum",
            "keep_checkpoints",
            "log_every",
            "score_batch_size",
            "pad_to_multiple_of",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"finetune.{name} == {getattr(self, name)!r}, must be >= 1.")
        for name in ("eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"finetune.{name} == {getattr(self, name)!r}, must be >= 0.")
        if not self.attention.strip():
            raise ConfigError("finetune.attention is empty; use 'auto' or an attn_implementation.")
        if self.max_length < 8:
            raise ConfigError(f"finetune.max_length == {self.max_length!r}, must be >= 8.")
        if self.train_top_layers is not None:
            if self.train_top_layers < 1:
                raise ConfigError(
                    f"finetune.train_top_layers == {self.train_top_layers!r}, must be >= 1."
                )
            if self.lora_enabled or self.packing:
                what = "packing" if self.packing else "LoRA"
                raise ConfigError(
                    f"finetune.train_top_layers == {self.train_top_layers} trains whole top "
                    f"layers on cached states and does not combine with {what}; drop one."
                )
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"finetune.max_steps == {self.max_steps!r}, must be >= 1.")
        _check_positive("finetune.epochs", self.epochs)
        for name in ("lr", "head_lr"):
            if getattr(self, name) is not None:
                _check_positive(f"finetune.{name}", getattr(self, name))
        for name in ("weight_decay", "center_coef", "regression_weight"):
            _check_positive(f"finetune.{name}", getattr(self, name), strict=False)
        if self.max_grad_norm is not None:
            _check_positive("finetune.max_grad_norm", self.max_grad_norm)
        if not 0.0 <= self.calibration_fraction <= 1.0:
            raise ConfigError(
                f"finetune.calibration_fraction == {self.calibration_fraction!r}, "
                "must be in [0, 1]."
            )
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"finetune.warmup_ratio == {self.warmup_ratio!r}, must be in [0, 1).")
        if self.head_dropout is not None and not 0.0 <= self.head_dropout < 1.0:
            raise ConfigError(f"finetune.head_dropout == {self.head_dropout!r}, must be in [0, 1).")

    # -- effective values ---------------------------------------------------------------
    @property
    def grouped(self) -> bool:
        """Whether batches are grouped by length (see ``group_by_length``)."""
        return self.group_by_length if self.group_by_length is not None else not self.packing

    @property
    def attn_implementation(self) -> str | None:
        """What to pass as ``attn_implementation`` (``None``: transformers' default)."""
        if self.attention != "auto":
            return self.attention
        import importlib.util

        import torch

        if (
            self.packing
            and torch.cuda.is_available()
            and importlib.util.find_spec("flash_attn") is not None
        ):
            return "flash_attention_2"
        return None

    @property
    def members(self) -> int:
        if self.n_members is not None:
            return self.n_members
        single = self.ensemble in (FinetuneEnsemble.SINGLE, FinetuneEnsemble.MC_DROPOUT)
        return 1 if single else 4

    @property
    def lora_enabled(self) -> bool:
        return self.use_lora or self.ensemble is FinetuneEnsemble.LORA

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-4 if self.lora_enabled else 1e-5

    @property
    def dropout(self) -> float:
        if self.head_dropout is not None:
            return self.head_dropout
        return 0.1 if self.ensemble is FinetuneEnsemble.MC_DROPOUT else 0.0

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        return from_dict(cls, data)
