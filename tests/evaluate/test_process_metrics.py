"""Step-level metrics: hand-computed accuracies, ProcessBench first-error F1, the threshold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardhedge.evaluate.process import (
    first_error_scores,
    fit_threshold,
    predicted_first_error,
    step_metrics,
)

# s1: all called right, first error found; s2: all valid, called so; s3: both steps misjudged.
REWARDS = [np.array([1.0, -1.0, 1.0]), np.array([1.0, 1.0]), np.array([-1.0, 1.0])]
LABELS = [(True, False, True), (True, True), (True, False)]


def test_known_answers_with_a_given_threshold():
    m = step_metrics(REWARDS, LABELS, threshold=0.0, reps=200)
    assert m["step_accuracy"]["value"] == pytest.approx(5 / 7)
    assert m["step_balanced_accuracy"]["value"] == pytest.approx(0.5 * (4 / 5 + 1 / 2))
    # valid rewards [1,1,1,1,-1] vs invalid [-1, 1]: 6.5 of 10 pairs ordered (ties half)
    assert m["step_auroc"]["value"] == pytest.approx(0.65)
    fe = m["first_error"]
    assert fe["accuracy_erroneous"]["value"] == 0.5 and fe["accuracy_correct"]["value"] == 1.0
    assert fe["f1"]["value"] == pytest.approx(2 / 3)
    assert (m["n_solutions"], m["n_erroneous"], m["n_correct"], m["n_steps"]) == (3, 2, 1, 7)
    assert (m["n_valid_steps"], m["n_invalid_steps"]) == (5, 2)
    assert m["threshold"] == {"values": [0.0], "source": "given"}
    for block in (m["step_accuracy"], m["step_auroc"], fe["f1"]):
        assert block["ci_low"] <= block["value"] <= block["ci_high"]


def test_fit_threshold_known_answers():
    r = np.array([0.0, 1.0, 2.0, 3.0])
    assert fit_threshold(r, np.array([False, False, True, True])) == 1.5
    assert fit_threshold(r, np.array([True, True, False, False])) == -1.0  # nothing beats 0.5
    # tied rewards cannot be split: the cut falls between distinct values only
    assert fit_threshold(np.array([0.0, 0.0, 1.0]), np.array([False, True, True])) == 0.5
    with pytest.raises(ValueError, match="both valid and invalid"):
        fit_threshold(r, np.ones(4, dtype=bool))


def test_first_error_prediction_and_processbench_f1():
    assert predicted_first_error(np.array([0.5, -0.2, -3.0]), 0.0) == 1
    assert predicted_first_error(np.array([0.5, 0.2]), 0.0) is None
    assert first_error_scores([1, None, 0, None], [1, 2, None, None]) == {
        "accuracy_erroneous": 0.5,
        "accuracy_correct": 0.5,
        "f1": 0.5,
    }
    only_errors = first_error_scores([1, 2], [1, 2])
    assert only_errors["accuracy_erroneous"] == 1.0
    assert only_errors["accuracy_correct"] is None and only_errors["f1"] is None


def test_unknown_labels_after_the_first_error_are_left_out_of_step_metrics():
    m = step_metrics(
        [np.array([1.0, -1.0, -5.0]), np.array([1.0, 1.0])],
        [(True, False, None), (True, True)],
        threshold=0.0,
        reps=50,
    )
    assert m["n_steps"] == 5 and m["n_steps_labelled"] == 4
    assert m["step_accuracy"]["value"] == 1.0 and m["first_error"]["f1"]["value"] == 1.0


def test_cross_fitted_threshold_separates_separable_rewards():
    rng = np.random.default_rng(0)
    labels = [tuple(bool(v) for v in rng.random(4) < 0.7) for _ in range(40)]
    rewards = [np.where(lab, 2.0, -2.0) + rng.uniform(-1, 1, 4) for lab in labels]
    m = step_metrics(rewards, labels, reps=100)
    assert m["threshold"]["source"] == "crossfit" and len(m["threshold"]["values"]) == 2
    assert all(-1.0 <= t <= 1.0 for t in m["threshold"]["values"])
    assert m["step_accuracy"]["value"] == 1.0 and m["first_error"]["f1"]["value"] == 1.0
    assert m["step_auroc"]["value"] == 1.0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), shift=st.floats(-50, 50), scale=st.floats(0.1, 10))
def test_metrics_are_invariant_to_an_increasing_affine_map(seed, shift, scale):
    """A BT reward is defined up to shift (and the threshold is fitted), so its metrics are too."""
    rng = np.random.default_rng(seed)
    labels = [tuple(bool(v) for v in rng.random(3) < 0.6) for _ in range(30)]
    labels[0], labels[1] = (True, False, True), (True, True, True)
    rewards = [rng.normal(size=3) + np.array(lab, dtype=float) for lab in labels]
    a = step_metrics(rewards, labels, reps=20)
    b = step_metrics([shift + scale * r for r in rewards], labels, reps=20)
    for key in ("step_accuracy", "step_balanced_accuracy", "step_auroc"):
        assert a[key]["value"] == pytest.approx(b[key]["value"])
    assert a["first_error"]["f1"]["value"] == pytest.approx(b["first_error"]["f1"]["value"])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="2 reward arrays for 1 label"):
        step_metrics(REWARDS[:2], LABELS[:1])
    with pytest.raises(ValueError, match="solution 0: 2 step rewards for 3 labels"):
        step_metrics([np.zeros(2)], [(True, False, True)])
    with pytest.raises(ValueError, match="pass threshold= explicitly"):
        step_metrics([np.zeros(2)], [(True, True)])
    with pytest.raises(ValueError, match="finite"):
        step_metrics([np.array([np.nan])], [(True,)], threshold=0.0)
    with pytest.raises(ValueError, match="no solutions"):
        step_metrics([], [])
