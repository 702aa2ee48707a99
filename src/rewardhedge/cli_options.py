"""Command-line options that several commands share: how a reward is aggregated and transformed."""

from __future__ import annotations

from typing import Annotated

import typer

from rewardhedge.uncertainty.reward_rule import RewardRule

AggregateOpt = Annotated[
    str | None,
    typer.Option(
        "--aggregate", help="mean, wco, uwo, lcb, brme or softmin (default: the model's)."
    ),
]
LamOpt = Annotated[
    float | None,
    typer.Option(help="λ of uwo (× variance, default 0.5) or brme (weight of the mean)."),
]
BetaOpt = Annotated[
    float | None, typer.Option(help="β of lcb (× std, default 1) or softmin (temperature).")
]
TransformOpt = Annotated[
    str | None,
    typer.Option(
        help="none, centered_logsigmoid, par or running_mean, applied after the aggregation "
        "(default: the model's). References are per prompt: the median of its items."
    ),
]
ReferenceOpt = Annotated[
    str | None,
    typer.Option(help="centered_logsigmoid reference of a prompt: median (default) or mean."),
]


def rule_from_flags(
    base: RewardRule,
    aggregate: str | None,
    lam: float | None,
    beta: float | None,
    transform: str | None,
    reference: str | None,
) -> RewardRule:
    """``base`` (a model's saved rule) with whatever the flags override."""
    if aggregate is None and (lam is not None or beta is not None):
        aggregate = base.aggregation.name
    agg = base.aggregation.to_dict() if aggregate is None else {"name": aggregate}
    if aggregate is not None:
        agg.update({k: v for k, v in (("lam", lam), ("beta", beta)) if v is not None})
    tf = base.transform.to_dict() if transform is None else {"name": transform}
    if reference is not None:
        tf["reference"] = reference
    return RewardRule.from_dict({"aggregation": agg, "transform": tf})
