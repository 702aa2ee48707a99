"""The ensembles the overoptimisation lab compares, and the features each one reads.

Why: an ensemble can only hedge where its members disagree, and members that
differ only by seed and bootstrap resample on one frozen representation tend
to agree on their mistakes (Eisenstein et al., "Helping or Herding"). The lab
therefore trains, beside the single model, one ensemble per diversity option
on the same labels and the same texts, so their curves differ by nothing but
what makes the members differ:

- ``bootstrap``: seeds and bootstrap resamples only (the herding baseline);
- ``subspace``: each member also sees its own random half of the features;
- ``views``: member k reads view k mod V of a multi-view encoder (layer mixes
  and poolings of MiniLM plus a hashing n-gram view).

All models read one multi-view pass per text (``LabConfig.encoder``): the
single model and the one-view ensembles get the first view's columns
(:class:`~rewardhedge.encoders.view_slice.ViewSlice`), exactly the features a
one-view encoder would give them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rewardhedge.config import (
    DEFAULT_HASHING_VIEWS,
    DEFAULT_VIEWS,
    DiversityConfig,
    EncoderConfig,
    EncoderKind,
)
from rewardhedge.encoders import build_encoder
from rewardhedge.encoders.view_slice import ViewSlice
from rewardhedge.errors import ConfigError


@dataclass(frozen=True)
class LabOption:
    """One way of making an ensemble's members differ."""

    name: str
    diversity: DiversityConfig
    all_views: bool
    """Members read every view of the lab encoder (else the first view only)."""
    summary: str


LAB_OPTIONS: dict[str, LabOption] = {
    "bootstrap": LabOption(
        "bootstrap",
        DiversityConfig(kind="bootstrap"),
        False,
        "seeds and bootstrap resamples only, one representation (the herding baseline)",
    ),
    "subspace": LabOption(
        "subspace",
        DiversityConfig(kind="subspace", subspace_fraction=0.5),
        False,
        "a random half of the feature dimensions per member, plus bootstrap",
    ),
    "views": LabOption(
        "views",
        DiversityConfig(kind="views"),
        True,
        "one encoder view per member (layer mixes, poolings, hashed n-grams), plus bootstrap",
    ),
}
"""The diversity options the lab knows, by name."""

DEFAULT_OPTIONS = ("bootstrap", "subspace", "views")


def lab_encoder_config(kind: str | EncoderKind = EncoderKind.MINILM) -> EncoderConfig:
    """The lab's multi-view encoder for ``kind``: the default views of that kind."""
    kind = EncoderKind.parse(kind, "encoder.kind")
    views = DEFAULT_HASHING_VIEWS if kind is EncoderKind.HASHING else DEFAULT_VIEWS
    return EncoderConfig(kind=kind, views=views)


def check_options(options: tuple[str, ...], encoder: EncoderConfig, members: int) -> None:
    """Raise a clear ConfigError for unknown or repeated options, or a views option
    with fewer than two views or fewer members than views (found before any encoding)."""
    unknown = [o for o in options if o not in LAB_OPTIONS]
    if unknown:
        raise ConfigError(
            f"lab: unknown diversity option {unknown[0]!r}; choose from {', '.join(LAB_OPTIONS)}."
        )
    if len(set(options)) != len(options):
        raise ConfigError(f"lab: options repeat: {list(options)}")
    if not encoder.views:
        raise ConfigError(
            "lab: the encoder needs views (the single model reads the first one); "
            "use lab_encoder_config()."
        )
    if "views" in options and len(encoder.views) < 2:
        raise ConfigError(
            f"lab: the views option needs at least two encoder views, got {list(encoder.views)}."
        )
    if "views" in options and members < len(encoder.views):
        raise ConfigError(
            f"lab: the views option needs at least one member per view: {members} members "
            f"for {len(encoder.views)} views ({', '.join(encoder.views)})."
        )


def base_encoder_config(encoder: EncoderConfig) -> EncoderConfig:
    """The one-view encoder that the single model and the one-view ensembles read."""
    return replace(encoder, views=encoder.views[:1])


def model_encoders(encoder: Any, config: EncoderConfig) -> tuple[Any, Any]:
    """``(base, full)``: the first view's slice of ``encoder`` and ``encoder`` itself.

    The slice carries the id of a one-view encoder built from
    :func:`base_encoder_config`, so a model saved from the lab loads with that
    encoder (its features are the same columns).
    """
    view = config.views[0]
    one_view = base_encoder_config(config)
    base_id = build_encoder(one_view).id if len(config.views) > 1 else encoder.id
    return ViewSlice(encoder, config, view, id=base_id), encoder


def options_dict(options: tuple[str, ...]) -> list[dict[str, Any]]:
    """The options as JSON: name, diversity settings and summary."""
    return [
        {
            "name": o,
            "diversity": {
                "kind": LAB_OPTIONS[o].diversity.kind.value,
                "subspace_fraction": LAB_OPTIONS[o].diversity.subspace_fraction,
            },
            "all_views": LAB_OPTIONS[o].all_views,
            "summary": LAB_OPTIONS[o].summary,
        }
        for o in options
    ]


__all__ = [
    "DEFAULT_OPTIONS",
    "LAB_OPTIONS",
    "LabOption",
    "base_encoder_config",
    "check_options",
    "lab_encoder_config",
    "model_encoders",
    "options_dict",
]
