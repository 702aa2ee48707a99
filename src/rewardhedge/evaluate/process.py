"""Step-level metrics of a process reward model: per-step accuracy and first-error detection.

A process reward model (PRM) gives each step of a solution a reward; a step is
*called wrong* when its reward is below a threshold. Against gold step labels
this module reports

- per-step accuracy and balanced accuracy (valid and invalid steps weigh the
  same, since most steps are valid) and the AUROC of the step reward for
  validity (threshold-free);
- ProcessBench's first-error detection (Zheng et al., 2024): the predicted
  first error is the first step called wrong, or "none"; on erroneous
  solutions the prediction must hit the gold first error, on correct ones it
  must be "none"; the F1 is the harmonic mean of the two accuracies.

The threshold. Rewards of a Bradley-Terry model are identified only up to a
constant, so no fixed value (0, or 0.5) means "wrong" in general. By default
the threshold is the one that maximises balanced accuracy on labelled steps,
*cross-fitted*: the solutions are split into two seeded halves and each half
is judged with the threshold fitted on the other, so no solution is scored
with a threshold chosen on itself and no data is set aside. A fixed
``threshold`` (e.g. one chosen on a calibration set) replaces it.

Labels may be ``None`` after a solution's first error (ProcessBench gives only
the first error); such steps are left out of the per-step metrics but still
count for first-error detection, which needs only the first error.

Intervals are percentile bootstraps that resample whole solutions (steps of
one solution are not independent). Numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Labels = Sequence[bool | None]

__all__ = [
    "first_error_scores",
    "fit_threshold",
    "predicted_first_error",
    "step_metrics",
]


def fit_threshold(rewards: np.ndarray, valid: np.ndarray) -> float:
    """The threshold ``t`` maximising balanced accuracy of "valid iff reward >= t".

    Candidates are the midpoints between consecutive distinct rewards and one
    point beyond each end; among equally good ones the lowest is taken.

    Args:
        rewards: `(n,)` step rewards.
        valid: `(n,)` gold validity (both classes must occur).

    Example:
        >>> fit_threshold(np.array([0.0, 1.0, 2.0, 3.0]), np.array([False, False, True, True]))
        1.5
    """
    r = np.asarray(rewards, dtype=np.float64)
    y = np.asarray(valid, dtype=bool)
    if r.shape != y.shape or r.ndim != 1:
        raise ValueError(
            f"rewards and valid must be 1-D of equal length, got {r.shape}, {y.shape}."
        )
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("fit_threshold needs both valid and invalid steps.")
    order = np.argsort(r, kind="stable")
    r, y = r[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(r) > 0), len(r) - 1]  # last index of each value
    # Cutting after position i calls steps 0..i wrong: TNR = invalid at or below / n_neg.
    neg_below = np.cumsum(~y)[distinct]
    pos_below = np.cumsum(y)[distinct]
    bal = np.r_[0.5, 0.5 * (neg_below / n_neg + (n_pos - pos_below) / n_pos)]
    cuts = np.r_[r[0] - 1.0, np.append((r[distinct[:-1]] + r[distinct[:-1] + 1]) / 2, r[-1] + 1.0)]
    return float(cuts[int(np.argmax(bal))])


def predicted_first_error(rewards: np.ndarray, threshold: float) -> int | None:
    """Index of the first step whose reward is below ``threshold``; ``None`` if none is."""
    below = np.flatnonzero(np.asarray(rewards, dtype=np.float64) < threshold)
    return int(below[0]) if below.size else None


def first_error_scores(
    predicted: Sequence[int | None], gold: Sequence[int | None]
) -> dict[str, float | None]:
    """ProcessBench's first-error accuracies and their harmonic mean.

    Returns:
        ``{"accuracy_erroneous", "accuracy_correct", "f1"}``; an accuracy is
        ``None`` when there is no solution of its kind, and so is the F1.

    Example:
        >>> first_error_scores([1, None, 0, None], [1, 2, None, None])
        {'accuracy_erroneous': 0.5, 'accuracy_correct': 0.5, 'f1': 0.5}
    """
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} gold first errors.")
    err = [p == g for p, g in zip(predicted, gold, strict=True) if g is not None]
    ok = [p is None for p, g in zip(predicted, gold, strict=True) if g is None]
    acc_err = float(np.mean(err)) if err else None
    acc_ok = float(np.mean(ok)) if ok else None
    return {"accuracy_erroneous": acc_err, "accuracy_correct": acc_ok, "f1": _f1(acc_err, acc_ok)}


def _f1(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def _gold_first(labels: Labels) -> int | None:
    return next((i for i, v in enumerate(labels) if v is False), None)


def _thresholds(
    rewards: Sequence[np.ndarray], labels: Sequence[Labels], seed: int
) -> tuple[np.ndarray, list[float], str]:
    """Per solution, the threshold it is judged with (cross-fitted halves, see module doc)."""
    n = len(rewards)
    fold = np.zeros(n, dtype=np.int64)
    fold[np.random.default_rng([seed, 4242]).permutation(n)[: n // 2]] = 1

    def known(which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = [np.asarray(rewards[i])[[v is not None for v in labels[i]]] for i in which]
        y = [np.array([v for v in labels[i] if v is not None], dtype=bool) for i in which]
        return (np.concatenate(r), np.concatenate(y)) if r else (np.zeros(0), np.zeros(0, bool))

    def fits(y: np.ndarray) -> bool:
        return bool(y.any() and (~y).any())

    halves = [known(np.flatnonzero(fold == k)) for k in (0, 1)]
    if n >= 2 and all(fits(y) for _, y in halves):
        values = [fit_threshold(*halves[1]), fit_threshold(*halves[0])]  # fit on the other half
        return np.array([values[k] for k in fold]), values, "crossfit"
    r, y = known(np.arange(n))
    if not fits(y):
        raise ValueError(
            "choosing a step threshold needs both valid and invalid labelled steps; "
            "pass threshold= explicitly."
        )
    value = fit_threshold(r, y)
    return np.full(n, value), [value], "fit on all solutions (too few for two halves)"


def _weighted_auroc(scores: np.ndarray, positive: np.ndarray):
    """A function of `(n,)` item weights giving the AUROC of ``scores`` for ``positive``
    (ties count half); sorting is done once, so each bootstrap replicate is O(n)."""
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], positive[order]
    starts = np.r_[0, np.flatnonzero(np.diff(s) > 0) + 1] if s.size else np.zeros(0, np.int64)

    def auc(weights: np.ndarray) -> float:
        w = weights[order]
        pos = np.add.reduceat(w * y, starts) if s.size else np.zeros(0)
        neg = np.add.reduceat(w * ~y, starts) if s.size else np.zeros(0)
        total_pos, total_neg = pos.sum(), neg.sum()
        if total_pos == 0 or total_neg == 0:
            return math.nan
        below = np.cumsum(neg) - neg  # negatives strictly below each tie group
        return float((pos * (below + 0.5 * neg)).sum() / (total_pos * total_neg))

    return auc


def _ci(point: float | None, reps: np.ndarray, level: float) -> dict[str, float | None]:
    alpha = (1 - level) / 2
    finite = reps[np.isfinite(reps)]
    if point is None or not finite.size:
        return {"value": point, "ci_low": None, "ci_high": None}
    low, high = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return {"value": point, "ci_low": float(low), "ci_high": float(high)}


def step_metrics(
    rewards: Sequence[np.ndarray],
    labels: Sequence[Labels],
    *,
    threshold: float | None = None,
    reps: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-step accuracy, AUROC and ProcessBench first-error detection with bootstrap CIs.

    Args:
        rewards: one `(n_steps_i,)` array of step rewards per solution.
        labels: per solution, the gold validity of each step (``None``: unknown,
            only after the first ``False``).
        threshold: a step is called wrong when its reward is below it; ``None``
            (default) fits it by balanced accuracy, cross-fitted over two halves.
        reps: bootstrap replicates (resampling solutions).
        level: confidence level of the intervals.
        seed: seed of the fold split and the bootstrap.

    Returns:
        ``{"n_solutions", "n_erroneous", "n_correct", "n_steps", "n_steps_labelled",
        "n_valid_steps", "n_invalid_steps", "threshold": {"values", "source"},
        "step_accuracy", "step_balanced_accuracy", "step_auroc", "first_error":
        {"accuracy_erroneous", "accuracy_correct", "f1"}, "primary_metric",
        "greater_is_better", "ci_level"}`` where each metric is a CI dict
        ``{"value", "ci_low", "ci_high"}`` (``value`` ``None`` when undefined).

    Example:
        >>> m = step_metrics([np.array([1.0, -1.0]), np.array([1.0, 1.0])],
        ...                  [(True, False), (True, True)], threshold=0.0, reps=50)
        >>> m["step_accuracy"]["value"], m["first_error"]["f1"]["value"]
        (1.0, 1.0)
    """
    if len(rewards) != len(labels):
        raise ValueError(f"{len(rewards)} reward arrays for {len(labels)} label sequences.")
    if not rewards:
        raise ValueError("no solutions to evaluate.")
    if reps < 1 or not 0 < level < 1:
        raise ValueError(f"reps == {reps}, level == {level}: need reps >= 1 and 0 < level < 1.")
    rs = [np.asarray(r, dtype=np.float64).ravel() for r in rewards]
    for i, (r, lab) in enumerate(zip(rs, labels, strict=True)):
        if r.shape[0] != len(lab):
            raise ValueError(f"solution {i}: {r.shape[0]} step rewards for {len(lab)} labels.")
        if not np.all(np.isfinite(r)):
            raise ValueError(f"solution {i}: step rewards must be finite.")
    if threshold is None:
        per_solution, values, source = _thresholds(rs, labels, seed)
    else:
        if not math.isfinite(threshold):
            raise ValueError(f"threshold == {threshold!r}, must be a finite number.")
        per_solution, values, source = (
            np.full(len(rs), float(threshold)),
            [float(threshold)],
            "given",
        )

    # Per-solution counts, so the bootstrap over solutions is a sum of rows.
    n = len(rs)
    counts = np.zeros((n, 4))  # valid called valid, n valid, invalid called wrong, n invalid
    step_sol, step_r, step_y = [], [], []
    pred_first, gold_first = [], []
    for i, (r, lab) in enumerate(zip(rs, labels, strict=True)):
        called_ok = r >= per_solution[i]
        for t, v in enumerate(lab):
            if v is None:
                continue
            counts[i, 0 if v else 2] += called_ok[t] if v else not called_ok[t]
            counts[i, 1 if v else 3] += 1
            step_sol.append(i)
            step_r.append(r[t])
            step_y.append(bool(v))
        pred_first.append(predicted_first_error(r, per_solution[i]))
        gold_first.append(_gold_first(lab))
    sol_idx = np.array(step_sol, dtype=np.int64)
    step_r_arr, step_y_arr = np.array(step_r, dtype=np.float64), np.array(step_y, dtype=bool)
    pairs = list(zip(pred_first, gold_first, strict=True))
    hit_err = np.array([np.nan if g is None else float(p == g) for p, g in pairs])
    hit_ok = np.array([float(p is None) if g is None else np.nan for p, g in pairs])
    e_mask, o_mask = ~np.isnan(hit_err), ~np.isnan(hit_ok)

    def summary(w: np.ndarray) -> np.ndarray:
        """(accuracy, balanced accuracy, acc erroneous, acc correct, f1) under weights `(n,)`."""
        c = w @ counts
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = (c[0] + c[2]) / (c[1] + c[3])
            bal = 0.5 * (c[0] / c[1] + c[2] / c[3])
            acc_e = (w[e_mask] @ hit_err[e_mask]) / w[e_mask].sum()
            acc_o = (w[o_mask] @ hit_ok[o_mask]) / w[o_mask].sum()
        f1 = _f1(None if np.isnan(acc_e) else acc_e, None if np.isnan(acc_o) else acc_o)
        return np.array([acc, bal, acc_e, acc_o, np.nan if f1 is None else f1])

    auc_of = _weighted_auroc(step_r_arr, step_y_arr)
    point = summary(np.ones(n))
    point_auc = auc_of(np.ones(step_y_arr.size))
    rng = np.random.default_rng([seed, 4243])
    boot = np.empty((reps, 5))
    boot_auc = np.empty(reps)
    for b in range(reps):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        boot[b] = summary(w)
        boot_auc[b] = auc_of(w[sol_idx])

    def value(x: float) -> float | None:
        return None if math.isnan(x) else float(x)

    n_err = sum(g is not None for g in gold_first)
    return {
        "n_solutions": n,
        "n_erroneous": n_err,
        "n_correct": n - n_err,
        "n_steps": int(sum(r.shape[0] for r in rs)),
        "n_steps_labelled": int(step_y_arr.size),
        "n_valid_steps": int(step_y_arr.sum()),
        "n_invalid_steps": int((~step_y_arr).sum()),
        "threshold": {"values": values, "source": source},
        "step_accuracy": _ci(value(point[0]), boot[:, 0], level),
        "step_balanced_accuracy": _ci(value(point[1]), boot[:, 1], level),
        "step_auroc": _ci(value(point_auc), boot_auc, level),
        "first_error": {
            "accuracy_erroneous": _ci(value(point[2]), boot[:, 2], level),
            "accuracy_correct": _ci(value(point[3]), boot[:, 3], level),
            "f1": _ci(value(point[4]), boot[:, 4], level),
        },
        "primary_metric": "first_error.f1",
        "greater_is_better": True,
        "ci_level": level,
    }
