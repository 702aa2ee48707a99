"""sandbox, bon, overopt, demo and report on the command line, on real files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from rewardhedge import cli

TINY = [
    "--train-prompts",
    "120",
    "--test-prompts",
    "30",
    "--prompts",
    "6",
    "--n",
    "8",
    "--seeds",
    "2",
    "--members",
    "3",
    "--encoder",
    "hashing",
]


def test_sandbox_then_train_then_bon_in_real_subprocesses(tmp_path):
    def run(*args):
        r = subprocess.run(
            [sys.executable, "-m", "rewardhedge", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        return r

    run(
        "sandbox",
        "--out",
        "sb",
        "--train-prompts",
        "80",
        "--test-prompts",
        "20",
        "--pool-prompts",
        "5",
        "--pool-size",
        "6",
    )
    run(
        "train", "--data", "sb/train.jsonl", "--out", "rm", "--members", "3", "--encoder", "hashing"
    )
    r = run(
        "bon",
        "--model",
        "rm",
        "--pools",
        "sb/pools.jsonl",
        "--aggregate",
        "uwo",
        "--lam",
        "0.5",
        "--out",
        "picks.jsonl",
        "--summary",
        "summary.json",
    )
    picks = [json.loads(line) for line in (tmp_path / "picks.jsonl").read_text().splitlines()]
    pools = [
        json.loads(line) for line in (tmp_path / "sb" / "pools.jsonl").read_text().splitlines()
    ]
    assert len(picks) == 5
    for p, pool in zip(picks, pools, strict=True):
        assert p["response"] == pool["candidates"][p["index"]]
        assert p["gold"] == pool["gold"][p["index"]] and p["regret"] >= 0
        assert p["aggregation"] == {"name": "uwo", "lam": 0.5}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_pools_with_gold"] == 5
    assert "win_vs_random" in r.stdout


def test_bon_rejects_a_bad_pool_with_file_line_and_field(tmp_path, capsys):
    (tmp_path / "pools.jsonl").write_text(
        json.dumps({"prompt": "q", "candidates": ["a", "b"]})
        + "\n"
        + json.dumps({"prompt": "q", "candidates": ["a", "b"], "gold": [1.0]})
        + "\n"
    )
    (tmp_path / "rm").mkdir()
    code = cli.main(
        [
            "sandbox",
            "--out",
            str(tmp_path / "sb"),
            "--train-prompts",
            "40",
            "--test-prompts",
            "10",
            "--pool-prompts",
            "2",
            "--pool-size",
            "4",
        ]
    )
    assert code == 0
    assert (
        cli.main(
            [
                "train",
                "--data",
                str(tmp_path / "sb" / "train.jsonl"),
                "--out",
                str(tmp_path / "rm"),
                "--members",
                "2",
                "--encoder",
                "hashing",
            ]
        )
        == 0
    )
    code = cli.main(
        [
            "bon",
            "--model",
            str(tmp_path / "rm"),
            "--pools",
            str(tmp_path / "pools.jsonl"),
            "--out",
            str(tmp_path / "picks.jsonl"),
        ]
    )
    assert code == 2
    assert "pools.jsonl:2: field 'gold' has 1 entries for 2 candidates" in capsys.readouterr().err
    code = cli.main(
        [
            "bon",
            "--model",
            str(tmp_path / "rm"),
            "--pools",
            str(tmp_path / "pools.jsonl"),
            "--out",
            str(tmp_path / "picks.jsonl"),
            "--aggregate",
            "uwo",
            "--beta",
            "1",
        ]
    )
    assert code == 2
    assert "beta" in capsys.readouterr().err


def test_demo_writes_data_models_results_and_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), *TINY]) == 0
    for name in (
        "data/train.jsonl",
        "data/pools.jsonl",
        "overopt.json",
        "report.html",
        "models/single/manifest.json",
        "models/bootstrap/manifest.json",
        "models/subspace/manifest.json",
        "models/views/manifest.json",
    ):
        assert (out / name).exists(), name
    result = json.loads((out / "overopt.json").read_text())
    assert result["ns"] == [1, 2, 4, 8] and len(result["config"]["seeds"]) == 2
    captured = capsys.readouterr()
    assert "report.html" in captured.err and "gold n=8" in captured.out
    assert "paired by seed and prompt" in captured.out
    # The saved models load with their own encoders (the lab scored them on slices of
    # one multi-view pass) and give the lab's scores.
    from rewardhedge.estimators.ensemble import EnsembleRewardModel

    pools = [json.loads(line) for line in (out / "data/pools.jsonl").read_text().splitlines()]
    prompts = [p["prompt"] for p in pools for _ in p["candidates"]]
    texts = [c for p in pools for c in p["candidates"]]
    for name in ("single", "subspace", "views"):
        model = EnsembleRewardModel.load(out / "models" / name)
        assert np.isfinite(model.score(prompts, texts).mean).all(), name


def test_lab_rejects_a_bad_member_norm_before_any_work(tmp_path, capsys):
    code = cli.main(["demo", "--out", str(tmp_path / "d"), *TINY, "--member-norm", "zscore"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--member-norm" in err and "zscore" in err
    assert not (tmp_path / "d").exists()  # nothing generated or written


def test_lab_rejects_an_unknown_option(tmp_path, capsys):
    code = cli.main(["overopt", "--out", str(tmp_path), *TINY, "--options", "bootstrap,nope"])
    assert code == 2
    assert "--options" in capsys.readouterr().err


def test_overopt_and_report_commands(tmp_path, capsys):
    assert cli.main(["overopt", "--out", str(tmp_path / "lab"), "--no-report", *TINY]) == 0
    assert not (tmp_path / "lab" / "report.html").exists()
    assert (
        cli.main(
            ["report", str(tmp_path / "lab" / "overopt.json"), "--out", str(tmp_path / "r.html")]
        )
        == 0
    )
    assert "<svg" in (tmp_path / "r.html").read_text()
    (tmp_path / "bad.json").write_text('{"foo": 1}')
    assert cli.main(["report", str(tmp_path / "bad.json"), "--out", str(tmp_path / "x.html")]) == 2
    assert "expected" in capsys.readouterr().err


def test_sandbox_steps_writes_files_a_process_reward_model_trains_and_evaluates_on(
    tmp_path, capsys
):
    """``sandbox --steps``: step pairs train a PRM with ``train``, and ``eval`` reads the
    labelled solutions as its step task."""
    out = tmp_path / "sb"
    args = ["sandbox", "--out", str(out), "--train-prompts", "20", "--test-prompts", "10"]
    assert cli.main([*args, "--pool-prompts", "2", "--pool-size", "4", "--steps"]) == 0
    said = capsys.readouterr().err
    for name in ("sandbox.json", "step_sandbox.json", "steps.jsonl", "pools.jsonl"):
        assert f"{out / name}" in said.replace("\n", "")  # every file written is named
    for name in ("steps.jsonl", "step_pairs.jsonl", "outcome_pairs.jsonl", "step_sandbox.json"):
        assert (out / name).stat().st_size > 0
    row = json.loads((out / "steps.jsonl").read_text().splitlines()[0])
    assert len(row["steps"]) == len(row["labels"]) and row["steps"][-1].startswith("Answer:")
    pair = json.loads((out / "step_pairs.jsonl").read_text().splitlines()[0])
    assert pair["chosen"] != pair["rejected"]
    question, _, so_far = pair["prompt"].partition("\n\n")  # the steps so far, if any
    assert question.endswith("?") and (so_far == "" or so_far.startswith("Step 1: "))
    prm = tmp_path / "prm"
    train = ["train", "--data", str(out / "step_pairs.jsonl"), "--out", str(prm)]
    assert cli.main([*train, "--members", "2", "--encoder", "hashing"]) == 0
    report = tmp_path / "eval.json"
    ev = ["eval", "--model", str(prm), "--data", str(out / "steps.jsonl"), "--json", str(report)]
    assert cli.main([*ev, "--reps", "100"]) == 0
    result = json.loads(report.read_text())
    assert result["task"] == "steps"
    assert result["n_solutions"] == len((out / "steps.jsonl").read_text().splitlines())
    page = tmp_path / "report.html"
    assert cli.main(["report", str(report), "--out", str(page)]) == 0
    html = page.read_text()
    f1 = result["first_error"]["f1"]["value"]
    assert "first-error F1 (ProcessBench)" in html and f"{f1:.4f}" in html
