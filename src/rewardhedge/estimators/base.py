"""What every reward model offers once it can ``score``: rewards, comparisons, evaluation.

``EnsembleRewardModel`` (heads on a frozen encoder) and ``FinetunedRewardModel``
(a fine-tuned transformer) differ in how they score; everything downstream of a
``RewardEstimate`` is written once, here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardhedge.errors import DataError, unknown_option
from rewardhedge.evaluate import evaluate_pairwise
from rewardhedge.evaluate.pairwise import pairwise_correct
from rewardhedge.evaluate.uncertainty_quality import ood_auroc, pair_uncertainties
from rewardhedge.types import (
    PairwiseEstimate,
    PreferencePair,
    RewardEstimate,
    ScoreItem,
    pairwise_from_estimates,
)
from rewardhedge.uncertainty.calibration import TemperatureScaling
from rewardhedge.uncertainty.reward_rule import RewardRule
from rewardhedge.uncertainty.selective import fit_abstention, selective_report


class RewardModelBase(ABC):
    """Shared behaviour of reward models; subclasses implement ``score`` and fit
    ``temperature_`` (a :class:`TemperatureScaling`) when they calibrate."""

    rule: RewardRule
    scalar_rewards: bool = True
    """Whether ``score`` gives one reward per response. ``False`` for a model that only
    compares (``GeneralPreferenceModel``): its ``compare`` sides are relative to each
    other, and evaluation blocks that need rewards per response are skipped."""

    @abstractmethod
    def score(
        self, prompts: Sequence[str], responses: Sequence[str], *, progress: bool = False
    ) -> RewardEstimate:
        """Rewards for ``(prompts[i], responses[i])`` with their uncertainty."""

    @property
    def temperature(self) -> float:
        """The temperature ``compare`` divides member logits by (1.0 before calibration)."""
        return getattr(self, "temperature_", TemperatureScaling()).temperature

    def score_items(self, items: Sequence[ScoreItem], *, progress: bool = False) -> RewardEstimate:
        """``score`` for ``ScoreItem`` records."""
        return self.score([i.prompt for i in items], [i.response for i in items], progress=progress)

    def reward(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        *,
        rule: RewardRule | None = None,
        references: np.ndarray | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """The single reward an optimiser sees: ``rule`` (default: the model's) applied
        to ``score``. Transforms that need a per-prompt reference take the group
        of items sharing a prompt, unless ``references`` gives one per item."""
        rule = rule if rule is not None else self.rule
        est = self.score(prompts, responses, progress=progress)
        return rule.apply(est, groups=list(prompts), references=references)

    def compare(
        self, pairs: Sequence[PreferencePair], *, progress: bool = False
    ) -> PairwiseEstimate:
        """P(chosen ≻ rejected) per member and for the ensemble (mean of member
        probabilities), at the model's fitted temperature."""
        pairs = check_pairs(pairs, "compare")
        prompts = [p.prompt for p in pairs]
        est = self.score(
            prompts + prompts,
            [p.chosen for p in pairs] + [p.rejected for p in pairs],
            progress=progress,
        )
        n = len(pairs)
        return pairwise_from_estimates(
            est.take(np.arange(n)), est.take(np.arange(n, 2 * n)), self.temperature
        )

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
        ood_pairs: Sequence[PreferencePair] | None = None,
        estimate: PairwiseEstimate | None = None,
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

        With ``ood_pairs`` (pairs from another distribution), report under
        ``"ood"`` how well each uncertainty tells them from ``pairs``: AUROC per
        pair uncertainty, and per response for the epistemic variance.

        ``estimate`` is ``compare(pairs)`` when the caller already has it (it
        is used only without ``abstain_alpha``), so the pairs are not scored twice.
        """
        pairs = check_pairs(pairs, "evaluate")
        if estimate is not None and len(estimate) != len(pairs):
            raise ValueError(
                f"estimate has {len(estimate)} pairs but pairs has {len(pairs)}; "
                "pass compare(pairs) for these pairs."
            )
        if abstain_alpha is None:
            test = estimate if estimate is not None else self.compare(pairs, progress=progress)
            metrics = evaluate_pairwise(test, pairs, reps=reps, seed=seed)
        else:
            metrics, test = self._evaluate_abstention(
                pairs,
                reps=reps,
                seed=seed,
                progress=progress,
                alpha=abstain_alpha,
                delta=abstain_delta,
                on=abstain_on,
                calibration_pairs=calibration_pairs,
            )
        if ood_pairs is not None:
            ood = self.compare(check_pairs(ood_pairs, "evaluate"), progress=progress)
            metrics["ood"] = ood_report(test, ood)
        return metrics

    def _evaluate_abstention(
        self,
        pairs: list[PreferencePair],
        *,
        reps: int,
        seed: int,
        progress: bool,
        alpha: float,
        delta: float,
        on: str,
        calibration_pairs: Sequence[PreferencePair] | None,
    ) -> tuple[dict[str, Any], PairwiseEstimate]:
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
        cal = self.compare(check_pairs(calibration_pairs, "evaluate"), progress=progress)
        test = self.compare(pairs, progress=progress)
        metrics = evaluate_pairwise(test, pairs, reps=reps, seed=seed)
        scores = pair_uncertainties(cal)
        if on not in scores:
            raise unknown_option("abstain_on", on, tuple(scores))
        cal_correct = pairwise_correct(cal.chosen.mean, cal.rejected.mean)
        rule = fit_abstention(scores[on], (cal_correct < 1).astype(float), alpha=alpha, delta=delta)
        test_correct = pairwise_correct(test.chosen.mean, test.rejected.mean)
        report = selective_report(rule, pair_uncertainties(test)[on], 1.0 - test_correct)
        metrics["abstention"] = {
            "uncertainty": on,
            "calibration_source": source,
            **rule.to_dict(),
            "test": report,
        }
        return metrics, test


def ood_report(in_dist: PairwiseEstimate, ood: PairwiseEstimate) -> dict[str, Any]:
    """AUROC of each uncertainty for telling ``ood`` pairs (positives) from ``in_dist`` ones."""
    u_in, u_out = pair_uncertainties(in_dist), pair_uncertainties(ood)
    out: dict[str, Any] = {
        "n_in": len(in_dist),
        "n_out": len(ood),
        "pair_auroc": {name: ood_auroc(u_in[name], u_out[name]) for name in u_in if name in u_out},
    }
    items_in = np.concatenate([in_dist.chosen.epistemic, in_dist.rejected.epistemic])
    items_out = np.concatenate([ood.chosen.epistemic, ood.rejected.epistemic])
    out["response_epistemic_auroc"] = ood_auroc(items_in, items_out)
    return out


def check_pairs(pairs: Sequence[PreferencePair], method: str) -> list[PreferencePair]:
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


def refuse_soft_labels(pairs: Sequence[PreferencePair], who: str) -> None:
    """``who`` trains on hard labels only: refuse pairs with a ``soft_label`` rather than
    silently reading them as hard."""
    soft = [p for p in pairs if p.soft_label is not None]
    if soft:
        raise DataError(
            f"{len(soft)} of the {len(pairs)} pairs carry a soft_label (e.g. {soft[0].id}), "
            f"which {who} does not read; train frozen-encoder heads (rewardhedge train) on "
            "them, or drop the field."
        )
