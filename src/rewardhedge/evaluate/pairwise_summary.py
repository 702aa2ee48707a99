"""One JSON-ready summary of a reward model on preference pairs (its terminal table is
:func:`rewardhedge.report.terminal.metrics_table`)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from rewardhedge.evaluate.calibration import calibration_metrics, ece_noise_floor
from rewardhedge.evaluate.length_controls import MATCH_TOLERANCE
from rewardhedge.evaluate.pairwise import (
    bootstrap_ci,
    brier,
    length_baseline_correct,
    length_matched_mask,
    log_loss,
    pairwise_correct,
    per_subset,
)
from rewardhedge.evaluate.uncertainty_quality import aurc, misorder_auroc, pair_uncertainties
from rewardhedge.types import PairwiseEstimate, PreferencePair

__all__ = ["evaluate_pairwise", "spearman_or_none"]

CI_LEVEL = 0.95


def spearman_or_none(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman correlation, or ``None`` where it is undefined (n < 2, constant input)."""
    if x.shape[0] < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = float(stats.spearmanr(x, y).statistic)
    return None if math.isnan(rho) else rho


def evaluate_pairwise(
    pairwise: PairwiseEstimate,
    pairs: Sequence[PreferencePair],
    *,
    reps: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every pairwise metric of a reward model on ``n`` preference pairs, as plain JSON.

    Accuracy (ties count half) is computed from the ensemble mean rewards
    ``pairwise.chosen.mean`` vs ``pairwise.rejected.mean``, with a 95%
    percentile bootstrap CI over pairs; log loss and Brier from
    ``pairwise.prob``. Member accuracies use each member's own rewards.

    Args:
        pairwise: the estimate for the `n` pairs (`m` members).
        pairs: the `n` pairs, in the same order (texts for the length
            baselines, ``subset`` for per-subset accuracy).
        reps: bootstrap resamples for every CI.
        seed: seed of the bootstrap generator.

    Returns:
        A dict of plain ``float``/``int``/``str``/``bool``/``None``/``dict``
        values: ``primary_metric``, ``greater_is_better``, ``n_pairs``,
        ``pairwise_accuracy``, ``accuracy_ci_low``, ``accuracy_ci_high``,
        ``ci_level``, ``ties`` (``"half"``), ``log_loss``, ``brier``,
        ``mean_margin``, ``n_ties``, ``n_members``, ``member_accuracy_mean``,
        ``member_accuracy_min``, ``member_accuracy_max``,
        ``mean_epistemic_std`` (mean of ``sqrt(epistemic)`` over all `2n`
        responses), ``length_baseline`` (``{"longer"|"shorter": {"accuracy",
        "ci_low", "ci_high"}}``), ``length_reward_corr`` (Spearman between
        character length and mean reward over all `2n` responses; ``None``
        if undefined), ``length_matched`` (``{"n_pairs", "accuracy",
        "ci_low", "ci_high", "tolerance"}``: accuracy, ties half, on the pairs
        whose two responses are within ±``tolerance`` (10%) of each other's
        character length, see :func:`length_matched_mask`; CI with the same
        ``reps`` and ``seed``; ``n_pairs`` 0 and ``None`` accuracy and CI if
        no pair is matched), ``subsets`` (see :func:`per_subset`; ``{}`` if
        no pair has one), ``calibration`` and ``uncertainty``.

    Raises:
        ValueError: if ``len(pairwise) != len(pairs)``, or there are no pairs.

    Example:
        >>> from rewardhedge.types import RewardEstimate, pairwise_from_estimates
        >>> c = RewardEstimate.from_members(np.array([[1.0, 2.0], [1.0, 0.0]]))
        >>> r = RewardEstimate.from_members(np.array([[0.0, 1.0], [0.0, 1.0]]))
        >>> pairs = [PreferencePair("q", "long answer", "no"), PreferencePair("q", "a", "bb")]
        >>> m = evaluate_pairwise(pairwise_from_estimates(c, r), pairs, reps=200)
        >>> m["pairwise_accuracy"], m["n_ties"], m["member_accuracy_min"]
        (0.75, 1, 0.5)
        >>> m["length_matched"]["n_pairs"], m["length_matched"]["accuracy"]  # no pair within 10%
        (0, None)
    """
    n = len(pairwise)
    if n != len(pairs):
        raise ValueError(
            f"pairwise has {n} pairs but pairs has {len(pairs)}; they must match, "
            "one estimate per pair in the same order."
        )
    if n == 0:
        raise ValueError("no pairs to evaluate (n_pairs == 0).")

    chosen, rejected = pairwise.chosen, pairwise.rejected
    correct = pairwise_correct(chosen.mean, rejected.mean)
    acc = float(correct.mean())
    low, high = bootstrap_ci(correct, reps=reps, level=CI_LEVEL, seed=seed)

    member_acc = np.array(
        [
            pairwise_correct(chosen.members[k], rejected.members[k]).mean()
            for k in range(chosen.n_members)
        ]
    )

    texts_c = [p.chosen for p in pairs]
    texts_r = [p.rejected for p in pairs]
    baselines: dict[str, dict[str, float]] = {}
    for prefer in ("longer", "shorter"):
        base = length_baseline_correct(texts_c, texts_r, prefer=prefer)
        b_low, b_high = bootstrap_ci(base, reps=reps, level=CI_LEVEL, seed=seed)
        baselines[prefer] = {"accuracy": float(base.mean()), "ci_low": b_low, "ci_high": b_high}

    lengths = np.array([len(t) for t in texts_c + texts_r], dtype=np.float64)
    rewards = np.concatenate([chosen.mean, rejected.mean])
    epi_std = np.sqrt(np.concatenate([chosen.epistemic, rejected.epistemic]))

    return {
        "primary_metric": "pairwise_accuracy",
        "greater_is_better": True,
        "n_pairs": int(n),
        "pairwise_accuracy": acc,
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
        "ci_level": CI_LEVEL,
        "ties": "half",
        "log_loss": log_loss(pairwise.prob),
        "brier": brier(pairwise.prob),
        "mean_margin": float(np.mean(pairwise.margin)),
        "n_ties": int(np.count_nonzero(correct == 0.5)),
        "n_members": int(chosen.n_members),
        "member_accuracy_mean": float(member_acc.mean()),
        "member_accuracy_min": float(member_acc.min()),
        "member_accuracy_max": float(member_acc.max()),
        "mean_epistemic_std": float(epi_std.mean()),
        "length_baseline": baselines,
        "length_reward_corr": spearman_or_none(lengths, rewards),
        "length_matched": _length_matched(correct, texts_c, texts_r, reps=reps, seed=seed),
        "subsets": per_subset(correct, [p.subset for p in pairs], reps=reps, seed=seed),
        "calibration": _calibration(pairwise),
        "uncertainty": _uncertainty_quality(pairwise, correct),
    }


def _length_matched(
    correct: np.ndarray,
    chosen: Sequence[str],
    rejected: Sequence[str],
    *,
    reps: int,
    seed: int,
) -> dict[str, Any]:
    """Accuracy (ties half) and its bootstrap CI on the length-matched pairs only: where a
    length preference cannot help, is the model still right?"""
    values = correct[length_matched_mask(chosen, rejected, MATCH_TOLERANCE)]
    out: dict[str, Any] = {
        "n_pairs": int(values.shape[0]),
        "accuracy": None,
        "ci_low": None,
        "ci_high": None,
        "tolerance": float(MATCH_TOLERANCE),
    }
    if values.shape[0]:
        low, high = bootstrap_ci(values, reps=reps, level=CI_LEVEL, seed=seed)
        out.update(accuracy=float(values.mean()), ci_low=low, ci_high=high)
    return out


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _calibration(pairwise: PairwiseEstimate) -> dict[str, Any]:
    """Symmetrised ECE (equal-width and equal-mass bins) of P(chosen ≻ rejected); every label is 1.

    With a temperature other than 1, ``before_temperature`` holds the ECEs and
    log loss of the uncalibrated probabilities, so the gain is visible.
    ``noise_floor`` is the ECE a perfectly calibrated model would show on this
    many pairs (:func:`ece_noise_floor`)."""
    prob = pairwise.prob
    cal = calibration_metrics(prob, np.ones_like(prob))
    keys = (
        "ece_equal_width",
        "ece_equal_mass",
        "reliability_equal_width",
        "reliability_equal_mass",
    )
    out: dict[str, Any] = {k: cal[k] for k in keys}
    out["temperature"] = float(pairwise.temperature)
    out["noise_floor"] = ece_noise_floor(prob, reps=100)
    if pairwise.raw_prob is not None:
        raw = calibration_metrics(pairwise.raw_prob, np.ones_like(prob))
        out["before_temperature"] = {
            "ece_equal_width": raw["ece_equal_width"],
            "ece_equal_mass": raw["ece_equal_mass"],
            "log_loss": log_loss(pairwise.raw_prob),
        }
    return out


def _uncertainty_quality(pairwise: PairwiseEstimate, correct: np.ndarray) -> dict[str, Any]:
    """How well each per-pair uncertainty finds misordered pairs: AUROC (higher is better), AURC (lower)."""
    return {
        name: {"misorder_auroc": _none_if_nan(misorder_auroc(u, correct)), "aurc": aurc(u, correct)}
        for name, u in pair_uncertainties(pairwise).items()
    }
