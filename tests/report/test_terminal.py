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
    # 2 ECEs, 4 uncertainty AUROCs, 2 subsets
    assert table.row_count == 19
    reloaded = json.loads(json.dumps(metrics))
    assert format_metrics(reloaded) == format_metrics(metrics)


def test_format_metrics_handles_none_correlation():
    text = format_metrics({"n_pairs": 2, "pairwise_accuracy": 0.5, "length_reward_corr": None})
    assert "n/a" in text


def test_docstring_examples():
    result = doctest.testmod(terminal_mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
