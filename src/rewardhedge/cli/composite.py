"""``rewardhedge compose``: combine saved reward models into one composite model folder.

The folder references each component folder by path and manifest hash
(``estimators/composite.py``); ``score``, ``bon``, ``serve`` and ``eval`` open it like
any model folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rewardhedge.cli.common import RuleOptions, check_outputs, err, flag_named_errors
from rewardhedge.cli.flags import with_flags
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.composite import CompositeRewardModel
from rewardhedge.estimators.loading import load_reward_model
from rewardhedge.uncertainty.composite import Combination
from rewardhedge.uncertainty.reward_rule import RewardRule


def parse_components(specs: list[str]) -> dict[str, Path]:
    """``NAME=FOLDER`` strings -> ``{name: folder}``, names unique."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise ConfigError(f"--component {spec!r}: expected NAME=FOLDER, e.g. help=rm-help/.")
        if name in out:
            raise ConfigError(f"--component: the name {name!r} is given twice.")
        out[name] = Path(folder)
    return out


def parse_numbers(text: str | None, flag: str, *, allow_none: bool = False) -> tuple | None:
    """``"1,0.5"`` -> ``(1.0, 0.5)``; ``none`` entries -> ``None`` where allowed."""
    if text is None:
        return None
    values: list[float | None] = []
    for part in text.split(","):
        part = part.strip()
        if allow_none and part.lower() == "none":
            values.append(None)
            continue
        try:
            values.append(float(part))
        except ValueError:
            allowed = "numbers or none" if allow_none else "numbers"
            raise ConfigError(f"{flag} {text!r}: {part!r} is not a number ({allowed}).") from None
    return tuple(values)


_COMBINATION_FLAGS = (
    ("combination.kind", "--combine"),
    ("combination.weights", "--weights"),
    ("combination.thresholds", "--thresholds"),
    ("combination.reference", "--combine-reference"),
    ("weights but", "--weights"),
)
"""Which flag a combination error is about (``--combine`` for the rest)."""


@with_flags(rule=RuleOptions)
def compose(
    component: Annotated[
        list[str], typer.Option(help="A component, NAME=FOLDER (repeat for each model).")
    ],
    out: Annotated[Path, typer.Option(help="Composite model folder to write.")],
    combine: Annotated[
        str, typer.Option(help="sum, and (sum of centred log-sigmoids) or constrained.")
    ] = "sum",
    weights: Annotated[
        str | None,
        typer.Option(help="One weight per component, comma-separated (all 1 when not given)."),
    ] = None,
    thresholds: Annotated[
        str | None,
        typer.Option(help="constrained: one cap per component, comma-separated; none = uncapped."),
    ] = None,
    combine_reference: Annotated[
        str,
        typer.Option(
            help="and: each component's reference: median or mean of the prompt's "
            "candidates, or zero (one response per prompt: serving, RL)."
        ),
    ] = "median",
    *,
    rule: RuleOptions,
) -> None:
    """Combine saved reward models into one composite model: a weighted sum, an AND-like
    sum of centred log-sigmoids, or a sum where each component counts only up to its
    threshold (docs/composite.md)."""
    components = parse_components(component)
    check_outputs(models={"--out": out}, inputs=[("--component", p) for p in components.values()])
    w = parse_numbers(weights, "--weights")
    t = parse_numbers(thresholds, "--thresholds", allow_none=True)
    with flag_named_errors(_COMBINATION_FLAGS, default="--combine"):
        combination = Combination(combine, weights=w, thresholds=t, reference=combine_reference)
        combination.check_components(len(components))
    models = {
        name: load_reward_model(folder, use_cache=False) for name, folder in components.items()
    }
    model = CompositeRewardModel(
        models, combination, rule=rule.rule(RewardRule()), paths=components
    )
    model.save(out)
    err.print(
        f"Composed {len(models)} components ({', '.join(models)}) with "
        f"{combination.label()} → [bold]{out}[/]"
    )


def register(app: typer.Typer) -> None:
    """Add ``compose`` to the main app."""
    app.command()(compose)
