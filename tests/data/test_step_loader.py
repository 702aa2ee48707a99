"""Loading step solutions: our rows and ProcessBench's, exact error messages, the export round trip."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rewardhedge.data import (
    holds_step_solutions,
    load_pairs,
    load_step_solutions,
    read_step_solutions,
)
from rewardhedge.data.sandbox import StepSandboxConfig, generate_step_sandbox
from rewardhedge.data.sandbox.export_steps import export_step_sandbox
from rewardhedge.errors import DataError


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


def test_export_round_trip(tmp_path):
    sb = generate_step_sandbox(StepSandboxConfig(train_tasks=30, test_tasks=12, search_tasks=2))
    paths = export_step_sandbox(sb, tmp_path / "out")
    loaded = load_step_solutions(paths["steps"])
    assert loaded == sb.solutions("test")
    pairs, _ = load_pairs(paths["step_pairs"])
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [
        (p.prompt, p.chosen, p.rejected) for p in sb.step_pairs("train")
    ]
    outcome, _ = load_pairs(paths["outcome_pairs"])
    assert len(outcome) == len(sb.outcome_pairs("train"))
    meta = json.loads(paths["step_sandbox"].read_text())
    assert meta["kind"] == "rewardhedge.step_sandbox" and meta["counts"]["steps"] == len(loaded)
    assert holds_step_solutions(paths["steps"]) and not holds_step_solutions(paths["step_pairs"])


def test_processbench_rows_keep_only_what_is_known(tmp_path):
    rows = [
        {"id": "pb-1", "problem": "Q1", "steps": ["a", "b", "c"], "label": 1},
        {"problem": "Q2", "steps": ["a", "b"], "label": -1},
        {"problem": "Q3", "steps": ["a", "b"], "label": 1, "final_answer_correct": False},
    ]
    sols = load_step_solutions(write_jsonl(tmp_path / "pb.jsonl", rows))
    assert sols[0].labels == (True, False, None) and sols[0].first_error == 1
    assert sols[0].id == "pb-1" and sols[0].prompt == "Q1"
    assert sols[1].labels == (True, True) and sols[1].first_error is None
    assert sols[1].id == "pb.jsonl:2"
    assert sols[2].labels == (True, False)


def test_json_array_and_csv_files(tmp_path):
    (tmp_path / "s.json").write_text(
        json.dumps([{"prompt": "Q", "steps": ["x", "y"], "labels": [True, False]}])
    )
    assert load_step_solutions(tmp_path / "s.json")[0].labels == (True, False)
    (tmp_path / "s.csv").write_text('prompt,steps,label\nQ,"[""x"", ""y""]",0\n', encoding="utf-8")
    assert load_step_solutions(tmp_path / "s.csv")[0].labels == (False, None)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"prompt": "Q", "steps": ["a", "b"], "labels": [True]},
            "field 'labels' has 1 entries for 2 steps",
        ),
        (
            {"prompt": "Q", "steps": ["a", "b"], "labels": [None, False]},
            "field 'labels' entry 0 is null before the first false entry; only steps after "
            "the first error may be unknown",
        ),
        (
            {"prompt": "Q", "steps": ["a"], "labels": ["yes"]},
            "field 'labels' entry 0 must be true, false or null, got 'yes'",
        ),
        (
            {"problem": "Q", "steps": ["a", "b"], "label": 2},
            "field 'label' == 2, must be -1 (no error) or a step index in 0..1",
        ),
        (
            {"problem": "Q", "steps": ["a"], "label": True},
            "field 'label' must be an integer step index, got bool True",
        ),
        (
            {"prompt": "Q", "steps": ["a"], "labels": [True], "label": -1},
            "field 'labels' and 'label' are both given; give one of them",
        ),
        (
            {"prompt": "Q", "steps": ["a"]},
            "field 'labels' is missing (give per-step 'labels', or ProcessBench's 'label': the "
            "index of the first wrong step, -1 for none) (keys present: prompt, steps)",
        ),
        (
            {"prompt": "Q", "steps": [], "labels": []},
            "field 'steps' must hold at least 1 entries, got 0",
        ),
        (
            {"prompt": "Q", "steps": ["a", 3], "labels": [True, True]},
            "field 'steps' entry 1 must be a string, got int",
        ),
        (
            {"question": "Q", "steps": ["a"], "labels": [True]},
            "field 'prompt' is missing (keys present: question, steps, labels)",
        ),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, row, message):
    good = {"prompt": "P", "steps": ["s"], "labels": [True]}
    path = write_jsonl(tmp_path / "steps.jsonl", [good, row])
    with pytest.raises(DataError, match=exact(f"{path}:2: {message}")):
        load_step_solutions(path)
    kept, report = read_step_solutions(path, skip_invalid=True)
    assert len(kept) == 1 and report.n_rejected == 1 and report.rejects[0]["line"] == 2


def test_field_map_renames_columns(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"q": "Q", "chain": ["a"], "ok": [True]}])
    (sol,) = load_step_solutions(path, fields={"prompt": "q", "steps": "chain", "labels": "ok"})
    assert (sol.prompt, sol.steps, sol.labels) == ("Q", ("a",), (True,))
    assert holds_step_solutions(path, fields={"steps": "chain"})
