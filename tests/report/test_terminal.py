"""The terminal tables of rewardhedge.report.terminal, on the evaluate_pairwise dict of a
hand-built 2-member ensemble (the ``hand_ensemble`` fixture)."""

from __future__ import annotations

import doctest
import json

import pytest
from rich.table import Table

import rewardhedge.report.terminal as terminal_mod
from rewardhedge.evaluate import evaluate_pairwise
from rewardhedge.report.terminal import format_metrics, metrics_table


@pytest.fixture
def metrics(hand_ensemble):
    estimate, pairs = hand_ensemble
    return evaluate_pairwise(estimate, pairs, reps=300, seed=0)


def test_format_metrics_plain_text(metrics):
    text = format_metrics(metrics, title="tiny eval")
    assert "tiny eval" in text
    assert "0.3750" in text  # accuracy
    assert "subset: a" in text and "subset: b" in text
    assert "prefer longer" in text and "0.6250" in text
    assert "\x1b" not in text  # no ANSI colour codes
    assert max(len(line) for line in text.splitlines()) <= 100


def test_metrics_table_rows_and_json_reload(metrics):
    table = metrics_table(metrics)
    assert isinstance(table, Table)
    # accuracy, log loss, Brier, margin, ties, members, epistemic, 2 baselines, corr,
    # length-matched accuracy, 2 ECEs, 4 uncertainty AUROCs, 2 subsets
    assert table.row_count == 20
    reloaded = json.loads(json.dumps(metrics))
    assert format_metrics(reloaded) == format_metrics(metrics)


def test_format_metrics_handles_none_correlation():
    text = format_metrics({"n_pairs": 2, "pairwise_accuracy": 0.5, "length_reward_corr": None})
    assert "n/a" in text


def test_length_matched_row_present(metrics):
    # Only the "bb" vs "xx" pair of the hand ensemble is length-matched, and it is a tie.
    lines = [ln for ln in format_metrics(metrics).splitlines() if "length-matched" in ln]
    assert len(lines) == 1
    assert "accuracy, length-matched (±10%, n=1)" in lines[0]
    assert "0.5000" in lines[0] and "[0.5000, 0.5000]" in lines[0]


def test_length_matched_row_absent_in_older_dicts(metrics):
    old = {k: v for k, v in metrics.items() if k != "length_matched"}
    assert "length-matched" not in format_metrics(old)
    assert metrics_table(old).row_count == metrics_table(metrics).row_count - 1


def test_length_matched_row_without_matched_pairs():
    lm = {"n_pairs": 0, "accuracy": None, "ci_low": None, "ci_high": None, "tolerance": 0.1}
    text = format_metrics({"n_pairs": 2, "pairwise_accuracy": 0.5, "length_matched": lm})
    line = next(ln for ln in text.splitlines() if "length-matched" in ln)
    assert "(±10%, n=0)" in line and "n/a" in line and "[n/a" not in line


def test_docstring_examples():
    result = doctest.testmod(terminal_mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
