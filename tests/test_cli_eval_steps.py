"""``rewardhedge eval`` on step solutions: a real PRM trained on step pairs, the step
metrics in the terminal and the JSON, and clean one-line refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rewardhedge import cli
from rewardhedge.data.sandbox import StepSandboxConfig, generate_step_sandbox
from rewardhedge.data.sandbox.export_steps import export_step_sandbox


@pytest.fixture(scope="module")
def prm(tmp_path_factory):
    """A 3-member hashing-encoder PRM trained on the sandbox's step pairs, and the files."""
    root = tmp_path_factory.mktemp("steps")
    sb = generate_step_sandbox(StepSandboxConfig(train_tasks=300, test_tasks=60, search_tasks=2))
    paths = export_step_sandbox(sb, root)
    args = ["train", "--data", paths["step_pairs"], "--out", root / "prm", "--members", "3"]
    assert cli.main([str(a) for a in [*args, "--encoder", "hashing"]]) == 0
    return root / "prm", paths


def refused(capsys, argv, *needles):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert "Traceback" not in captured.err and len(lines) == 1, captured.err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_step_task_is_recognised_and_reports_step_metrics(tmp_path, prm, capsys):
    model, paths = prm
    out = tmp_path / "eval.json"
    argv = ["eval", "--model", model, "--data", paths["steps"], "--json", out, "--reps", "200"]
    assert cli.main([str(a) for a in argv]) == 0
    m = json.loads(out.read_text())
    n_rows = len(paths["steps"].read_text().splitlines())
    assert (m["kind"], m["version"], m["task"]) == ("rewardhedge.eval", 1, "steps")
    assert m["n_solutions"] == n_rows and m["n_steps"] == m["n_steps_labelled"]
    assert 0 < m["n_erroneous"] < n_rows
    assert m["threshold"]["source"] == "crossfit"
    blocks = [m["step_accuracy"], m["step_balanced_accuracy"], m["step_auroc"]]
    blocks += list(m["first_error"].values())
    for block in blocks:
        assert 0.0 <= block["ci_low"] <= block["value"] <= block["ci_high"] <= 1.0
    # The hashing encoder sees the visibly unsure steps, so it ranks steps better than chance.
    assert m["step_auroc"]["value"] > 0.55
    assert m["rule"]["aggregation"]["name"] == "mean" and m["model"] == str(model)
    text = capsys.readouterr().out
    assert "first-error F1 (ProcessBench)" in text and "step AUROC" in text


def test_processbench_rows_and_a_given_threshold(tmp_path, prm):
    model, _ = prm
    rows = [
        {"problem": "Start with 2. Add 3. What is the result?", "steps": s, "label": k}
        for s, k in [
            (["2 + 3 = 5.", "Answer: 5"], -1),
            (["2 + 3 = 6.", "Answer: 6"], 0),
            (["Probably about 10, I am guessing.", "Answer: 10"], 0),
        ]
    ]
    data = tmp_path / "pb.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "pb.json"
    argv = ["eval", "--model", model, "--data", data, "--task", "steps", "--json", out]
    assert cli.main([str(a) for a in [*argv, "--step-threshold", "0", "--reps", "50"]]) == 0
    m = json.loads(out.read_text())
    assert m["threshold"] == {"values": [0.0], "source": "given"}
    assert (m["n_solutions"], m["n_erroneous"], m["n_steps"], m["n_steps_labelled"]) == (3, 2, 6, 4)


def test_bad_step_files_and_flags_are_refused_and_nothing_is_written(tmp_path, prm, capsys):
    model, paths = prm
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"prompt": "Q", "steps": ["a"], "labels": [True]})
        + "\n"
        + json.dumps({"prompt": "Q", "steps": ["a", "b"], "labels": [True]})
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.json"
    before = sorted(os.listdir(tmp_path))
    base = ["eval", "--model", model, "--json", out]
    refused(capsys, [*base, "--data", bad], f"{bad}:2: field 'labels' has 1 entries for 2 steps")
    steps = paths["steps"]
    refused(capsys, [*base, "--data", steps, "--against", model], "--against", "steps task")
    refused(capsys, [*base, "--data", steps, "--step-threshold", "nan"], "--step-threshold")
    pairs = paths["step_pairs"]
    refused(capsys, [*base, "--data", pairs, "--step-threshold", "0"], "only applies to the steps")
    refused(capsys, [*base, "--data", steps, "--task", "triples"], "triples", "steps")
    assert sorted(os.listdir(tmp_path)) == before and not Path(out).exists()


def test_the_python_api_gives_the_cli_numbers_and_scores_steps_in_their_layout(tmp_path, prm):
    """``evaluate_steps`` is what the CLI writes; a fixed threshold calls exactly the steps
    whose reward (scored by hand as ``(step_prompt(prompt, steps[:t]), steps[t])``) is below."""
    import numpy as np

    from rewardhedge import evaluate_steps
    from rewardhedge.config import EvalConfig
    from rewardhedge.data import load_step_solutions
    from rewardhedge.estimators.loading import load_reward_model
    from rewardhedge.types import step_prompt

    model_dir, paths = prm
    out = tmp_path / "eval.json"
    argv = ["eval", "--model", model_dir, "--data", paths["steps"], "--json", out, "--reps", "200"]
    assert cli.main([str(a) for a in argv]) == 0
    rm = load_reward_model(model_dir)
    solutions = load_step_solutions(paths["steps"])
    api = evaluate_steps(rm, solutions, config=EvalConfig(reps=200))
    assert json.loads(out.read_text()) == json.loads(json.dumps(api)) | {
        "model": str(model_dir),
        "data": str(paths["steps"]),
    }
    sol = solutions[0]
    rewards = rm.reward(
        [step_prompt(sol.prompt, sol.steps[:t]) for t in range(len(sol.steps))], list(sol.steps)
    )
    cut = float(np.median(rewards))
    one = evaluate_steps(rm, [sol], threshold=cut, config=EvalConfig(reps=50))
    called_right = rewards >= cut
    labels = np.array(sol.labels, dtype=bool)
    assert one["step_accuracy"]["value"] == (called_right == labels).mean()
