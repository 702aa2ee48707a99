"""A bad reward-rule flag (``--aggregate``, ``--lam``, ``--beta``, ``--transform``,
``--reference``) is refused in one line that names the flag, before anything is written."""

from __future__ import annotations

import json

import pytest

from rewardhedge import cli


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--aggregate", "best"], "error: --aggregate: aggregation == 'best', must be one of"),
        (["--aggregate", "uwo", "--lam", "-1"], "error: --lam: aggregation 'uwo': lam == -1.0"),
        (["--aggregate", "lcb", "--beta", "-2"], "error: --beta: aggregation 'lcb': beta == -2.0"),
        (["--transform", "nope"], "error: --transform: transform == 'nope', must be one of"),
        (
            ["--transform", "centered_logsigmoid", "--reference", "mode"],
            "error: --reference: transform reference == 'mode'",
        ),
        (
            ["--aggregate", "mean", "--lam", "0.5"],
            "error: --lam: aggregation 'mean' does not use 'lam'",
        ),
    ],
)
def test_score_names_the_rule_flag_and_writes_nothing(tmp_path, model_dir, capsys, flags, line):
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"prompt": "q", "response": "an answer"}) + "\n")
    out = tmp_path / "scores.jsonl"
    argv = ["score", "--model", str(model_dir), "--data", str(items), "--out", str(out), *flags]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line), err
    assert not out.exists()
