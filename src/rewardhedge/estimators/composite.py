"""A composite reward model: several saved reward models (components) whose rewards are
combined by a :class:`~rewardhedge.uncertainty.composite.Combination` (weighted sum,
AND of centred log-sigmoids, or thresholds), so that no single component can be pumped
up at the expense of the others.

Its folder holds no weights, only the combination and, per component, where its folder
is and the SHA-256 of that folder's ``manifest.json`` (which itself hashes every file):
a component retrained or swapped after composing is refused on load rather than
silently combined. ``score``, ``bon``, ``serve`` and ``eval`` open it like any model
folder (``load_reward_model``).

What is combined: each component's member rows as an aggregation sees them (after its
own member normalisation, ``member_norm``; standardised by default, so the weights and
thresholds are in units of each component's training spread). Components with the
same number of members are combined member by member, so the composite keeps an
ensemble's spread for the conservative aggregations; otherwise each component's mean
row is used and the composite has one member.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardhedge.errors import ConfigError, ModelFormatError
from rewardhedge.estimators.base import RewardModelBase
from rewardhedge.models.io import load_model_folder, save_model_folder
from rewardhedge.types import RewardEstimate
from rewardhedge.uncertainty.composite import Combination
from rewardhedge.uncertainty.reward_rule import RewardRule

__all__ = ["CompositeRewardModel", "folder_hash"]


def folder_hash(path: str | Path) -> str:
    """``sha256:…`` of a model folder's ``manifest.json`` (its files' hashes and sizes)."""
    manifest = Path(path) / "manifest.json"
    try:
        return "sha256:" + hashlib.sha256(manifest.read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelFormatError(
            f"{manifest}: cannot read the component's manifest ({exc})."
        ) from exc


class CompositeRewardModel(RewardModelBase):
    """Components (name → fitted reward model) and the combination of their rewards."""

    def __init__(
        self,
        components: Mapping[str, RewardModelBase],
        combination: Combination | None = None,
        *,
        rule: RewardRule | None = None,
        paths: Mapping[str, str | Path] | None = None,
    ) -> None:
        if not components:
            raise ConfigError("a composite model needs at least one component.")
        for name, model in components.items():
            if not getattr(model, "scalar_rewards", True):
                raise ConfigError(
                    f"component {name!r} ({type(model).__name__}) gives no reward per "
                    "response, so it cannot be combined; use a reward model."
                )
        self.components = dict(components)
        self.combination = combination or Combination()
        self.combination.check_components(len(self.components))
        self.rule = rule if rule is not None else RewardRule()
        self.paths = {k: Path(v) for k, v in (paths or {}).items()}

    @property
    def names(self) -> list[str]:
        return list(self.components)

    @property
    def batch_independent(self) -> bool:
        """Whether each item's reward depends on that item alone, not on the other items
        scored with it (see :attr:`Combination.batch_independent`), components included;
        a server that batches requests together can only serve such a model."""
        return self.combination.batch_independent and all(
            getattr(model, "batch_independent", True) for model in self.components.values()
        )

    def component_scores(
        self, prompts: Sequence[str], responses: Sequence[str], *, progress: bool = False
    ) -> dict[str, RewardEstimate]:
        """Each component's own estimate, for per-component reporting."""
        return {
            name: model.score(prompts, responses, progress=progress)
            for name, model in self.components.items()
        }

    def score(
        self, prompts: Sequence[str], responses: Sequence[str], *, progress: bool = False
    ) -> RewardEstimate:
        """The combined rewards (member by member when the components' member counts
        agree), with the spread over the combined members as epistemic variance."""
        ests = list(self.component_scores(prompts, responses, progress=progress).values())
        if len({e.members.shape[0] for e in ests}) == 1:
            members = np.stack([e.members for e in ests])  # (J, m, n)
        else:
            members = np.stack([e.members.mean(axis=0, keepdims=True) for e in ests])
        return RewardEstimate.from_members(self.combination.apply(members, groups=list(prompts)))

    def get_params(self) -> dict[str, Any]:
        return {"combination": self.combination.to_dict(), "components": self.names}

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the folder: the combination, the rule, and each component's folder (as
        given, relative to this folder where it can be) with its manifest hash."""
        missing = [name for name in self.components if name not in self.paths]
        if missing:
            raise ConfigError(
                f"component {missing[0]!r} has no folder to reference; a composite saves "
                "references to saved components (pass paths=, or compose from folders)."
            )
        dest = Path(path)
        refs = []
        for name in self.components:
            folder = self.paths[name]
            try:
                shown = os.path.relpath(folder.resolve(), dest.resolve())
            except ValueError:  # another drive
                shown = str(folder.resolve())
            refs.append({"name": name, "path": shown, "hash": folder_hash(folder)})
        config = {
            "composite": {
                "combination": self.combination.to_dict(),
                "reward_rule": self.rule.to_dict(),
                "components": refs,
            }
        }
        info = {"n_components": len(refs)}
        return save_model_folder(
            dest, model_class=type(self).__name__, config=config, tensors={}, info=info
        )

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        device: str | None = None,
    ) -> CompositeRewardModel:
        """Read a composite folder and load every component, refusing one whose folder
        changed since composing (its manifest hash differs)."""
        from rewardhedge.estimators.loading import load_reward_model

        config, _, _ = load_model_folder(path, expected_class=cls.__name__)
        where = Path(path) / "config.json"
        try:
            spec = config["composite"]
            combination = Combination.from_dict(spec["combination"])
            rule = RewardRule.from_dict(spec.get("reward_rule", {}))
            refs = [(str(r["name"]), str(r["path"]), str(r["hash"])) for r in spec["components"]]
        except (ConfigError, KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{where}: invalid composite configuration ({exc}).") from exc
        components, paths = {}, {}
        for name, rel, expected in refs:
            folder = (Path(path) / rel).resolve()
            if folder_hash(folder) != expected:
                raise ModelFormatError(
                    f"{where}: component {name!r} ({folder}) has changed since it was "
                    "composed (its manifest hash differs); compose again to use it."
                )
            components[name] = load_reward_model(
                folder, cache_dir=cache_dir, use_cache=use_cache, device=device
            )
            paths[name] = folder
        return cls(components, combination, rule=rule, paths=paths)
