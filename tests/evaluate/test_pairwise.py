"""Pairwise metric functions against hand-computed values and sklearn."""

from __future__ import annotations

import doctest
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import log_loss as sk_log_loss

import rewardhedge.evaluate.pairwise as pairwise_mod
import rewardhedge.evaluate.pairwise_summary as summary_mod
from rewardhedge.errors import ConfigError
from rewardhedge.evaluate import (
    bootstrap_ci,
    brier,
    length_baseline_correct,
    log_loss,
    pairwise_accuracy,
    pairwise_correct,
    per_subset,
)
from rewardhedge.evaluate.length_controls import MATCH_TOLERANCE
from rewardhedge.evaluate.pairwise import length_matched_mask

# --- pairwise_correct / pairwise_accuracy -------------------------------------------


def test_accuracy_hand_computed():
    assert pairwise_accuracy([1.0, 2.0, 3.0], [0.0, 3.0, 1.0]) == pytest.approx(2 / 3)
    assert pairwise_correct(np.array([1, 2, 3]), np.array([0, 3, 1])).tolist() == [1, 0, 1]


def test_ties_count_half():
    out = pairwise_correct([1.0, 2.0, 5.0, -1.0], [1.0, 2.0, 4.0, 0.0])
    assert out.tolist() == [0.5, 0.5, 1.0, 0.0]
    assert out.dtype == np.float64
    assert pairwise_accuracy([1.0, 2.0, 5.0, -1.0], [1.0, 2.0, 4.0, 0.0]) == 0.5
    # A constant reward model sits at chance, not at 0 or 1.
    assert pairwise_accuracy(np.zeros(5), np.zeros(5)) == 0.5


def test_accuracy_returns_python_float_and_empty_is_nan():
    assert type(pairwise_accuracy([1.0], [0.0])) is float
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(pairwise_accuracy([], []))


def test_pairwise_correct_rejects_bad_shapes_and_nan():
    with pytest.raises(ValueError, match="3 vs 2"):
        pairwise_correct([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"shape \(n,\)"):
        pairwise_correct(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        pairwise_correct([1.0, np.nan], [0.0, 0.0])


# --- log_loss / brier -----------------------------------------------------------------


def test_log_loss_hand_computed():
    assert log_loss([0.5, 0.5]) == pytest.approx(math.log(2), rel=1e-12)
    assert log_loss([0.8, 0.25]) == pytest.approx((-math.log(0.8) - math.log(0.25)) / 2, rel=1e-12)
    assert type(log_loss([0.5])) is float


def test_log_loss_clips():
    assert log_loss([0.0]) == pytest.approx(-math.log(1e-12), rel=1e-12)
    assert log_loss([0.0], eps=1e-3) == pytest.approx(-math.log(1e-3), rel=1e-12)
    assert log_loss([1.0]) == pytest.approx(-math.log(1 - 1e-12), abs=1e-15)
    assert np.isfinite(log_loss([0.0, 1.0]))


def test_log_loss_matches_sklearn_on_symmetrised_problem():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, size=6)
    # Each pair seen both ways: (chosen, rejected) with label 1 and prob p, and
    # (rejected, chosen) with label 0 and prob 1 - p of "first is preferred".
    y = np.concatenate([np.ones(6), np.zeros(6)])
    q = np.concatenate([p, 1.0 - p])
    expected = sk_log_loss(y, q, labels=[0, 1])
    assert log_loss(p) == pytest.approx(expected, rel=1e-9)


def test_log_loss_and_brier_reject_bad_probabilities():
    for bad in ([1.5], [-0.1], [np.nan]):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            log_loss(bad)
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            brier(bad)
    with pytest.raises(ValueError, match="eps"):
        log_loss([0.5], eps=0.0)


def test_brier_hand_computed():
    assert brier([1.0, 0.5, 0.0]) == pytest.approx(1.25 / 3, rel=1e-12)
    assert brier([0.8, 0.6]) == pytest.approx(0.1, rel=1e-12)
    assert brier([1.0, 1.0]) == 0.0


def test_empty_probabilities_are_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(log_loss([]))
        assert math.isnan(brier([]))


# --- length baseline ------------------------------------------------------------------


def test_length_baseline_longer_with_ties():
    chosen = ["aaaa", "bb", "c", "same"]
    rejected = ["a", "cc", "ddd", "SAME"]
    assert length_baseline_correct(chosen, rejected).tolist() == [1.0, 0.5, 0.0, 0.5]


def test_length_baseline_shorter():
    chosen = ["aaaa", "bb", "c"]
    rejected = ["a", "cc", "ddd"]
    out = length_baseline_correct(chosen, rejected, prefer="shorter")
    assert out.tolist() == [0.0, 0.5, 1.0]
    # longer + shorter always sum to one per pair.
    assert np.all(out + length_baseline_correct(chosen, rejected) == 1.0)


def test_length_baseline_counts_characters_not_bytes():
    # "éé" is 2 characters (4 bytes in UTF-8), "abc" is 3.
    assert length_baseline_correct(["éé"], ["abc"]).tolist() == [0.0]


def test_length_baseline_errors():
    with pytest.raises(ConfigError, match="Did you mean 'longer'"):
        length_baseline_correct(["a"], ["b"], prefer="longr")
    with pytest.raises(ValueError, match="2 vs 1"):
        length_baseline_correct(["a", "b"], ["c"])


# --- length-matched pairs -------------------------------------------------------------


def test_length_matched_mask_hand_computed():
    chosen = ["a" * 10, "a" * 10, "a" * 100, "a" * 100, "abc", ""]
    rejected = ["a" * 9, "a" * 8, "a" * 90, "a" * 89, "xyz", ""]
    # 1/10 and 10/100 sit exactly on the 10% boundary and count; 2/10 and 11/100 do not;
    # equal lengths and two empty strings are matched.
    assert length_matched_mask(chosen, rejected).tolist() == [True, False, True, False, True, True]


def test_length_matched_mask_is_symmetric_and_counts_characters():
    chosen = ["a" * 9, "", "éé"]
    rejected = ["a" * 10, "a", "ab"]  # "éé" is 2 characters, 4 bytes
    assert length_matched_mask(chosen, rejected).tolist() == [True, False, True]
    assert length_matched_mask(rejected, chosen).tolist() == [True, False, True]


def test_length_matched_mask_tolerance():
    chosen, rejected = ["a" * 10, "a" * 10, "a" * 10], ["a" * 10, "a" * 8, "a" * 5]
    assert MATCH_TOLERANCE == 0.10
    default = length_matched_mask(chosen, rejected)
    assert default.dtype == np.bool_ and default.shape == (3,)
    assert default.tolist() == length_matched_mask(chosen, rejected, MATCH_TOLERANCE).tolist()
    assert length_matched_mask(chosen, rejected, 0.0).tolist() == [True, False, False]
    assert length_matched_mask(chosen, rejected, 0.2).tolist() == [True, True, False]
    assert length_matched_mask(chosen, rejected, 0.5).tolist() == [True, True, True]
    assert length_matched_mask([], []).tolist() == []


def test_length_matched_mask_errors():
    with pytest.raises(ValueError, match="2 vs 1"):
        length_matched_mask(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="tolerance"):
        length_matched_mask(["a"], ["b"], -0.1)
    with pytest.raises(ValueError, match="tolerance"):
        length_matched_mask(["a"], ["b"], float("nan"))


@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=30))
@settings(max_examples=100, deadline=None)
def test_length_matched_mask_matches_the_relative_difference(lengths):
    chosen = ["x" * a for a, _ in lengths]
    rejected = ["y" * b for _, b in lengths]
    expected = [a == b or abs(a - b) / max(a, b) <= 0.10 for a, b in lengths]
    assert length_matched_mask(chosen, rejected).tolist() == expected


# --- bootstrap_ci ---------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=2, max_size=60), st.integers(0, 99))
def test_bootstrap_ci_contains_point_estimate(values, seed):
    v = np.array(values)
    low, high = bootstrap_ci(v, reps=300, seed=seed)
    point = float(v.mean())
    # Tolerance only for float rounding of resample means vs the sample mean.
    assert low - 1e-12 <= point <= high + 1e-12
    assert 0.0 <= low <= high <= 1.0


def test_bootstrap_ci_width_shrinks_with_n():
    rng = np.random.default_rng(1)
    small = (rng.random(50) < 0.7).astype(float)
    large = (rng.random(5000) < 0.7).astype(float)
    lo_s, hi_s = bootstrap_ci(small, reps=1000)
    lo_l, hi_l = bootstrap_ci(large, reps=1000)
    assert hi_l - lo_l < (hi_s - lo_s) / 4  # ~10x narrower in theory
    # The 95% interval of a proportion is about 2 * 1.96 * sqrt(p(1-p)/n) wide.
    normal = 2 * 1.96 * math.sqrt(0.21 / 5000)
    assert hi_l - lo_l == pytest.approx(normal, rel=0.2)


def test_bootstrap_ci_degenerate_cases_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = bootstrap_ci(np.array([]))
        assert math.isnan(low) and math.isnan(high)
        assert bootstrap_ci([0.7]) == (0.7, 0.7)
        assert bootstrap_ci(np.ones(10)) == (1.0, 1.0)
        assert bootstrap_ci([0.5, 0.5, 0.5], statistic=np.median) == (0.5, 0.5)
        out = bootstrap_ci([0.0, 0.0])
        assert out == (0.0, 0.0) and all(type(x) is float for x in out)


def test_bootstrap_ci_is_seeded_and_level_matters():
    v = np.array([1.0, 0.0, 1.0, 1.0, 0.5, 0.0, 1.0, 1.0, 0.0, 1.0])
    assert bootstrap_ci(v, reps=500, seed=3) == bootstrap_ci(v, reps=500, seed=3)
    lo95, hi95 = bootstrap_ci(v, reps=500, seed=3)
    lo50, hi50 = bootstrap_ci(v, reps=500, seed=3, level=0.5)
    assert lo95 <= lo50 <= hi50 <= hi95
    assert hi50 - lo50 < hi95 - lo95


def test_bootstrap_ci_non_vectorised_statistic():
    v = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    low, high = bootstrap_ci(v, lambda x: float(np.median(x)), reps=200)
    assert 0.0 <= low <= 2.0 <= high <= 4.0


def test_bootstrap_ci_validates_arguments():
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([0.0, 1.0], level=1.0)
    with pytest.raises(ValueError, match="reps"):
        bootstrap_ci([0.0, 1.0], reps=0)


# --- per_subset -----------------------------------------------------------------------


def test_per_subset_counts_and_none():
    values = np.array([1.0, 0.0, 1.0, 0.5, 1.0, 0.0])
    subsets = ["b", "a", None, "b", "b", None]
    out = per_subset(values, subsets, reps=200)
    assert list(out) == ["a", "b"]  # sorted, None not reported
    assert out["a"]["n"] == 1 and type(out["a"]["n"]) is int
    assert out["a"]["accuracy"] == 0.0
    assert (out["a"]["ci_low"], out["a"]["ci_high"]) == (0.0, 0.0)
    assert out["b"]["n"] == 3
    assert out["b"]["accuracy"] == pytest.approx(2.5 / 3)
    assert (out["b"]["ci_low"], out["b"]["ci_high"]) == bootstrap_ci(
        [1.0, 0.5, 1.0], reps=200, seed=0
    )
    assert sum(s["n"] for s in out.values()) == 4


def test_per_subset_all_none_and_errors():
    assert per_subset([1.0, 0.0], [None, None]) == {}
    assert per_subset([], []) == {}
    with pytest.raises(ValueError, match="3 vs 2"):
        per_subset([1.0, 0.0, 1.0], ["a", "b"])


# --- docs and dependencies ------------------------------------------------------------


@pytest.mark.parametrize("module", [pairwise_mod, summary_mod])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_evaluate_imports_no_torch(module_imports):
    allowed_roots = {"__future__", "numpy", "scipy", "sklearn"}
    allowed_own = {"rewardhedge.types", "rewardhedge.errors", "rewardhedge.config"}
    stdlib = set(sys.stdlib_module_names)  # the rule is about third-party weight
    folder = Path(pairwise_mod.__file__).parent
    for path in folder.glob("*.py"):
        for name in module_imports(path):
            root = name.split(".")[0]
            ok = (
                root in allowed_roots
                or root in stdlib
                or name in allowed_own
                or name.startswith("rewardhedge.evaluate")
            )
            assert ok, f"{path.name} imports {name}"
