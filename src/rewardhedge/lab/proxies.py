"""Who the lab trains: a factory of fitted proxies, so any model family runs in the lab.

The lab needs, for every label seed, a single model and a few ensembles fitted
on the same comparisons; it then only calls ``score`` and ``compare`` (the
:class:`~rewardhedge.estimators.base.RewardModelBase` API). What it needs from a
model family is therefore a :class:`ProxyFactory`:

- :class:`FrozenProxies` (the default): heads on one frozen multi-view encoder,
  every text embedded once for all seeds, models and aggregations; ensembles
  differ by a diversity option (``lab_options``).
- :class:`FinetunedProxies`: a Hugging Face backbone fine-tuned per seed and
  model (``FinetuneConfig`` gives the backbone, lengths and schedule); the
  ensembles are the fine-tuning trainer's kinds (``multihead``, ``lora``,
  ``independent``, ``mc_dropout``), so Coste et al.'s fine-tuned ensembles and
  the frozen ones run through the same curves, paired table and report.

Any object with the same methods can be passed to ``run_lab(proxies=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from rewardhedge.config import (
    EncoderConfig,
    EnsembleConfig,
    HeadConfig,
    MemberNormKind,
    TrainConfig,
    UncertaintyConfig,
)
from rewardhedge.config_finetune import FinetuneConfig, FinetuneEnsemble
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.base import RewardModelBase
from rewardhedge.lab.options import LAB_OPTIONS, base_encoder_config, model_encoders
from rewardhedge.types import PreferencePair

Stage = Callable[[str, int], Callable[[int], None]]
"""``stage(description, total)`` returns ``advance(k)``: how the lab reports progress."""


def no_stage(description: str, total: int) -> Callable[[int], None]:
    return lambda k: None


class ProxyFactory(Protocol):
    """What the lab needs from a model family."""

    def models(self) -> list[tuple[str, int]]:
        """``(name, members)`` of every model a seed trains, ``("single", 1)`` first."""
        ...

    @property
    def reads(self) -> str:
        """What reads the texts (an encoder id or a backbone), for the lab JSON."""
        ...

    def prepare(self, prompts: Sequence[str], responses: Sequence[str], progress: bool) -> None:
        """Work shared by every seed and model, done once before training (e.g. embedding)."""
        ...

    def train(
        self, name: str, seed: int, pairs: list[PreferencePair], stage: Stage
    ) -> RewardModelBase:
        """Model ``name`` fitted on ``pairs`` with ``seed``; long fits report through ``stage``."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The family and its settings, for the lab JSON."""
        ...


@dataclass
class FrozenProxies:
    """Heads on a frozen multi-view encoder: the single model reads the first view,
    each ensemble is one diversity option of ``LAB_OPTIONS``."""

    encoder: Any
    """The lab's multi-view encoder (a ``CachedEncoder`` in the CLI)."""
    encoder_config: EncoderConfig
    options: tuple[str, ...]
    members: int
    head: HeadConfig
    train_config: TrainConfig
    member_norm: MemberNormKind

    def __post_init__(self) -> None:
        self._encoders = model_encoders(self.encoder, self.encoder_config)

    def models(self) -> list[tuple[str, int]]:
        return [("single", 1)] + [(o, self.members) for o in self.options]

    @property
    def reads(self) -> str:
        return str(self.encoder.id)

    def prepare(self, prompts: Sequence[str], responses: Sequence[str], progress: bool) -> None:
        self.encoder.encode(prompts, responses, progress=progress)  # the cache, once for all

    def ensemble_config(self, name: str, seed: int) -> EnsembleConfig:
        """The single model (K = 1) or option ``name``'s ensemble.

        Best-of-n needs rewards, not calibrated probabilities, so no
        cross-fitted temperature is fitted (it would multiply the training time
        by the number of folds and change no pick).
        """
        k = 1 if name == "single" else self.members
        opt = LAB_OPTIONS["bootstrap" if name == "single" else name]
        train = replace(
            self.train_config, seed=seed, bootstrap=k > 1 and self.train_config.bootstrap
        )
        encoder = self.encoder_config if opt.all_views else base_encoder_config(self.encoder_config)
        return EnsembleConfig(
            n_members=k,
            head=self.head,
            train=train,
            encoder=encoder,
            uncertainty=UncertaintyConfig(calibration_folds=0),
            diversity=opt.diversity,
            member_norm=self.member_norm,
        )

    def train(
        self, name: str, seed: int, pairs: list[PreferencePair], stage: Stage
    ) -> RewardModelBase:
        from rewardhedge.estimators.ensemble import EnsembleRewardModel

        config = self.ensemble_config(name, seed)
        base, full = self._encoders
        encoder = full if name != "single" and LAB_OPTIONS[name].all_views else base
        return EnsembleRewardModel(config, encoder=encoder).fit(pairs)

    def to_dict(self) -> dict[str, Any]:
        return {"family": "frozen", "encoder": self.reads}


FINETUNED_OPTIONS = tuple(e.value for e in FinetuneEnsemble if e is not FinetuneEnsemble.SINGLE)
"""The ensembles a fine-tuned lab can compare with its single model."""


def check_finetuned_options(options: tuple[str, ...], config: FinetuneConfig) -> None:
    """A clear ConfigError for an unknown option, or a fine-tuning setting that one of
    the lab's models cannot use (found before anything trains)."""
    unknown = [o for o in options if o not in FINETUNED_OPTIONS]
    if unknown:
        raise ConfigError(
            f"lab: unknown fine-tuned ensemble option {unknown[0]!r}; choose from "
            f"{', '.join(FINETUNED_OPTIONS)}."
        )
    if len(set(options)) != len(options):
        raise ConfigError(f"lab: options repeat: {list(options)}")
    if not config.backbone:
        raise ConfigError("lab: finetune.backbone is empty; give a local model folder.")


@dataclass
class FinetunedProxies:
    """A backbone fine-tuned once per seed and model: a one-head single model and one
    ensemble per fine-tuning kind in ``options`` (K = ``members``; an ``mc_dropout``
    model's members are its ``mc_samples`` dropout draws)."""

    config: FinetuneConfig
    """The template: backbone, lengths, learning rate, epochs, top layers …; the lab
    sets each model's ensemble kind, members, seed and member normalisation."""
    options: tuple[str, ...]
    members: int
    member_norm: MemberNormKind

    def __post_init__(self) -> None:
        check_finetuned_options(self.options, self.config)
        for name, _ in self.models():  # every model's settings checked before training
            self.model_config(name, 0)

    def models(self) -> list[tuple[str, int]]:
        return [("single", 1)] + [
            (o, self.config.mc_samples if o == FinetuneEnsemble.MC_DROPOUT.value else self.members)
            for o in self.options
        ]

    @property
    def reads(self) -> str:
        return f"finetuned:{self.config.backbone}"

    def prepare(self, prompts: Sequence[str], responses: Sequence[str], progress: bool) -> None:
        """Nothing to share: a fine-tuned backbone reads each text anew."""

    def model_config(self, name: str, seed: int) -> FinetuneConfig:
        kind = FinetuneEnsemble.parse("single" if name == "single" else name, "lab.options")
        one = kind in (FinetuneEnsemble.SINGLE, FinetuneEnsemble.MC_DROPOUT)
        try:
            return replace(
                self.config,
                ensemble=kind,
                n_members=None if one else self.members,
                seed=seed,
                member_norm=self.member_norm,
            )
        except ConfigError as exc:
            raise ConfigError(f"lab: the {name} proxy: {exc}") from exc

    def train(
        self, name: str, seed: int, pairs: list[PreferencePair], stage: Stage
    ) -> RewardModelBase:
        from rewardhedge.estimators.finetuned import FinetunedRewardModel

        advance: Callable[[int], None] | None = None
        done = 0

        def on_step(step: int, total: int, info: dict[str, Any]) -> None:
            nonlocal advance, done
            if advance is None:  # made at the first step, so the pace leaves out the loading
                advance = stage(f"fine-tune {name} (seed {seed})", total)
                if step < total:
                    return  # counted from the next step on: one step's time is no pace yet
            advance(step - done)
            done = step

        return FinetunedRewardModel(self.model_config(name, seed)).fit(pairs, on_step=on_step)

    def to_dict(self) -> dict[str, Any]:
        return {"family": "finetuned", "finetune": self.config.to_dict()}


__all__ = [
    "FINETUNED_OPTIONS",
    "FinetunedProxies",
    "FrozenProxies",
    "ProxyFactory",
    "Stage",
    "check_finetuned_options",
    "no_stage",
]
