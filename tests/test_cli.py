"""The command line, end to end on real files: a real subprocess and in-process calls."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from rewardhedge import cli


def write_pairs(path, pairs):
    with open(path, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(
                json.dumps(
                    {
                        "prompt": p.prompt,
                        "chosen": p.chosen,
                        "rejected": p.rejected,
                        "subset": p.subset,
                    }
                )
                + "\n"
            )


def run(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "rewardhedge", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_train_score_eval_in_real_subprocesses(tmp_path, pair_factory):
    write_pairs(tmp_path / "pairs.jsonl", pair_factory(60))
    write_pairs(tmp_path / "test.jsonl", pair_factory(30, seed=3))
    with open(tmp_path / "items.jsonl", "w") as f:
        f.write(json.dumps({"id": "a", "prompt": "q", "response": "the answer is correct"}) + "\n")
        f.write(json.dumps({"id": "b", "prompt": "q", "response": "the answer is wrong"}) + "\n")

    r = run(
        "train",
        "--data",
        "pairs.jsonl",
        "--out",
        "rm",
        "--members",
        "3",
        "--encoder",
        "hashing",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rm" / "manifest.json").exists()

    r = run(
        "score", "--model", "rm", "--data", "items.jsonl", "--out", "scores.jsonl", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == ["a", "b"]
    assert len(rows[0]["members"]) == 3 and rows[0]["reward"] > rows[1]["reward"]

    r = run(
        "eval",
        "--model",
        "rm",
        "--data",
        "test.jsonl",
        "--json",
        "metrics.json",
        "--reps",
        "200",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["n_pairs"] == 30 and metrics["pairwise_accuracy"] > 0.9
    assert "Pairwise accuracy" in r.stdout or "accuracy" in r.stdout.lower()


def test_help_runs_as_module():
    r = subprocess.run(
        [sys.executable, "-m", "rewardhedge", "--help"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0
    for command in ("train", "score", "eval", "demo"):
        assert command in r.stdout


def test_bad_row_exits_2_with_file_line_and_field(tmp_path, capsys):
    (tmp_path / "bad.jsonl").write_text(
        '{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": "", "rejected": "b"}\n'
    )
    code = cli.main(
        [
            "train",
            "--data",
            str(tmp_path / "bad.jsonl"),
            "--out",
            str(tmp_path / "rm"),
            "--encoder",
            "hashing",
        ]
    )
    assert code == 2
    assert "bad.jsonl:2: field 'chosen' is empty" in capsys.readouterr().err
    assert not (tmp_path / "rm").exists()


def test_skip_invalid_writes_rejects_and_trains(tmp_path, pair_factory, capsys):
    write_pairs(tmp_path / "pairs.jsonl", pair_factory(30))
    with open(tmp_path / "pairs.jsonl", "a") as f:
        f.write("{not json\n")
        f.write('{"prompt": "p", "chosen": "same", "rejected": "same"}\n')
    code = cli.main(
        [
            "train",
            "--data",
            str(tmp_path / "pairs.jsonl"),
            "--out",
            str(tmp_path / "rm"),
            "--encoder",
            "hashing",
            "--members",
            "2",
            "--skip-invalid",
        ]
    )
    assert code == 0
    rejects = [json.loads(x) for x in (tmp_path / "rm.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [31, 32]
    assert "2 rejected" in capsys.readouterr().err


def test_unknown_option_value_names_the_choices(tmp_path, pair_factory, capsys):
    write_pairs(tmp_path / "pairs.jsonl", pair_factory(10))
    code = cli.main(
        [
            "train",
            "--data",
            str(tmp_path / "pairs.jsonl"),
            "--out",
            str(tmp_path / "rm"),
            "--head",
            "mpl",
        ]
    )
    assert code == 2
    assert (
        "head.kind == 'mpl', must be one of: linear, mlp. Did you mean 'mlp'?"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize("argv", [["score"], ["train", "--data"]])
def test_usage_errors_exit_nonzero(argv):
    assert cli.main(argv) != 0


def test_config_file_and_flags_make_the_same_dataclass(tmp_path):
    from rewardhedge.cli.train import TRAIN_FLAGS
    from rewardhedge.config import EnsembleConfig, HeadConfig, TrainConfig

    (tmp_path / "cfg.json").write_text(
        json.dumps({"n_members": 3, "head": {"kind": "mlp"}, "train": {"seed": 4}})
    )
    cfg = TRAIN_FLAGS.config(tmp_path / "cfg.json", {"train.seed": 9, "train.l2": 0.2})
    assert cfg == EnsembleConfig(
        n_members=3, head=HeadConfig(kind="mlp"), train=TrainConfig(seed=9, l2=0.2)
    )
    (tmp_path / "bad.json").write_text(json.dumps({"n_member": 3}))
    from rewardhedge.errors import ConfigError

    with pytest.raises(ConfigError, match=r"bad.json: Unknown config key 'n_member' in Ens"):
        TRAIN_FLAGS.config(tmp_path / "bad.json", {})


def test_eval_abstain_alpha_writes_the_rule_and_its_test_coverage(tmp_path, pair_factory, capsys):
    write_pairs(tmp_path / "pairs.jsonl", pair_factory(60))
    write_pairs(tmp_path / "test.jsonl", pair_factory(80, seed=5))
    assert (
        cli.main(
            [
                "train",
                "--data",
                str(tmp_path / "pairs.jsonl"),
                "--out",
                str(tmp_path / "rm"),
                "--members",
                "3",
                "--encoder",
                "hashing",
            ]
        )
        == 0
    )
    code = cli.main(
        [
            "eval",
            "--model",
            str(tmp_path / "rm"),
            "--data",
            str(tmp_path / "test.jsonl"),
            "--abstain-alpha",
            "0.2",
            "--abstain-on",
            "member_std",
            "--json",
            str(tmp_path / "m.json"),
        ]
    )
    assert code == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    ab = metrics["abstention"]
    assert ab["alpha"] == 0.2 and ab["uncertainty"] == "member_std" and ab["test"]["n"] == 40
    assert "abstain on member_std" in capsys.readouterr().out


def test_estimator_rule_and_ood_flags_reach_the_saved_model_and_outputs(tmp_path, pair_factory):
    write_pairs(tmp_path / "pairs.jsonl", pair_factory(60))
    write_pairs(tmp_path / "test.jsonl", pair_factory(30, seed=3))
    ood = [
        {"prompt": f"what is {i} + {i}?", "chosen": f"{2 * i}", "rejected": f"{2 * i + 1}"}
        for i in range(20)
    ]
    (tmp_path / "ood.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ood))
    with open(tmp_path / "items.jsonl", "w") as f:
        for i, text in enumerate(["the answer is correct", "the answer is wrong", "so so"]):
            f.write(json.dumps({"id": str(i), "prompt": "q", "response": text}) + "\n")
    rm, items = str(tmp_path / "rm"), str(tmp_path / "items.jsonl")
    code = cli.main(
        [
            *("train", "--data", str(tmp_path / "pairs.jsonl"), "--out", rm),
            *("--encoder", "hashing", "--members", "1"),
            *("--estimator", "laplace", "--laplace-samples", "8", "--calibration-folds", "2"),
            *("--aggregate", "lcb", "--beta", "0", "--transform", "centered_logsigmoid"),
        ]
    )
    assert code == 0
    config = json.loads((tmp_path / "rm" / "config.json").read_text())
    assert config["ensemble"]["uncertainty"]["estimator"] == "laplace"
    assert config["reward_rule"]["transform"]["name"] == "centered_logsigmoid"
    temperature = config["calibration"]["temperature"]["temperature"]

    def scores(*flags):
        out = tmp_path / "scores.jsonl"
        code = cli.main(["score", "--model", rm, "--data", items, "--out", str(out), *flags])
        assert code == 0
        return [json.loads(line) for line in out.read_text().splitlines()]

    saved = scores()
    assert len(saved[0]["members"]) == 8
    means = sorted(row["mean"] for row in saved)
    median = means[1]
    for row in saved:  # lcb β=0 is the mean; the reference is the prompt's median
        assert row["reward"] == pytest.approx(-math.log1p(math.exp(-(row["mean"] - median))))
    plain = scores("--aggregate", "mean", "--transform", "none")
    assert [r["reward"] for r in plain] == pytest.approx([r["mean"] for r in plain], rel=1e-12)

    code = cli.main(
        [
            *("eval", "--model", rm, "--data", str(tmp_path / "test.jsonl")),
            *("--ood", str(tmp_path / "ood.jsonl"), "--json", str(tmp_path / "m.json")),
            *("--reps", "50"),
        ]
    )
    assert code == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["calibration"]["temperature"] == pytest.approx(temperature)
    assert metrics["ood"]["n_out"] == 20 and 0.0 <= metrics["ood"]["response_epistemic_auroc"] <= 1
    assert set(metrics["ood"]["pair_auroc"]) >= {"prob_entropy", "epistemic_sum"}
