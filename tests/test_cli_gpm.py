"""``rewardhedge train-gpm`` end to end, ``eval`` on a general preference model, the commands
that need a scalar reward refusing it in one line, and a bad value for every new flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardhedge import cli
from rewardhedge.cli.flags import flag_help
from rewardhedge.cli.gpm import GPM_FLAGS, train_gpm
from rewardhedge.data.cyclic import rock_paper_scissors_pairs
from rewardhedge.estimators.evaluation import NO_SCALAR_REWARD
from rewardhedge.estimators.general_preference import GeneralPreferenceModel
from rewardhedge.estimators.loading import load_reward_model

FAST = ["--encoder", "hashing", "--members", "2", "--calibration-folds", "0", "--epochs", "80"]


def one_error(err: str) -> str:
    """The command's single ``error:`` line (load reports may come before it)."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def write_pairs(path: Path, pairs) -> Path:
    rows = ({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gpm-data")
    write_pairs(folder / "train.jsonl", rock_paper_scissors_pairs(80, seed=0))
    write_pairs(folder / "test.jsonl", rock_paper_scissors_pairs(30, seed=1))
    return folder


@pytest.fixture(scope="module")
def trained(data: Path) -> Path:
    out = data / "gpm"
    args = ["train-gpm", "--data", str(data / "train.jsonl"), "--out", str(out),
            "--eval-data", str(data / "test.jsonl"), *FAST]  # fmt: skip
    assert cli.main(args) == 0
    return out


def test_train_gpm_saves_a_model_and_evaluates_it(trained: Path, data: Path) -> None:
    model = load_reward_model(trained, use_cache=False)
    assert isinstance(model, GeneralPreferenceModel)
    assert model.config.n_members == 2 and model.config.dim == 8
    metrics = json.loads((trained / "eval.json").read_text())
    assert metrics["pairwise_accuracy"] >= 0.95 and metrics["n_pairs"] == 90


def test_eval_runs_on_pairs_and_notes_the_skipped_blocks(
    trained: Path, data: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "m.json"
    args = ["eval", "--model", str(trained), "--data", str(data / "test.jsonl"),
            "--json", str(out), "--reps", "100", "--against", str(trained)]  # fmt: skip
    assert cli.main(args) == 0
    metrics = json.loads(out.read_text())
    assert metrics["task"] == "pairs" and metrics["pairwise_accuracy"] >= 0.95
    assert metrics["skipped"] == {
        "starc": NO_SCALAR_REWARD,
        "controls.batch_invariance": NO_SCALAR_REWARD,
        "comparison.starc_distance": NO_SCALAR_REWARD,
    }
    assert metrics["comparison"]["diff"] == 0.0
    assert "accuracy" in capsys.readouterr().out.lower()


def test_commands_that_need_one_reward_per_response_refuse_it_in_one_line(
    trained: Path, data: Path, tmp_path: Path, capsys
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"prompt": "q", "response": "Sure. throwing rock."}) + "\n")
    code = cli.main(["score", "--model", str(trained), "--data", str(items),
                     "--out", str(tmp_path / "s.jsonl")])  # fmt: skip
    line = one_error(capsys.readouterr().err)
    assert code == 2
    assert "GeneralPreferenceModel gives no scalar reward" in line and "compare(pairs)" in line
    pools = tmp_path / "pools.jsonl"
    pools.write_text(json.dumps({"prompt": "q", "candidates": ["a", "b"], "gold": [1, 2]}) + "\n")
    code = cli.main(["eval", "--model", str(trained), "--data", str(pools)])
    assert code == 2
    assert "no scalar reward per response, and best-of-n pools" in one_error(
        capsys.readouterr().err
    )
    code = cli.main(["bon", "--model", str(trained), "--pools", str(pools),
                     "--out", str(tmp_path / "b.jsonl")])  # fmt: skip
    assert code == 2 and "gives no scalar reward" in one_error(capsys.readouterr().err)
    assert not (tmp_path / "b.jsonl").exists()


def test_a_config_file_sets_what_no_flag_does(data: Path, tmp_path: Path) -> None:
    config = tmp_path / "gpm.json"
    config.write_text(json.dumps({"dim": 4, "encoder": {"kind": "hashing", "dim": 64}}))
    out = tmp_path / "m"
    args = ["train-gpm", "--data", str(data / "train.jsonl"), "--out", str(out),
            "--config", str(config), "--members", "1", "--calibration-folds", "0",
            "--epochs", "5"]  # fmt: skip
    assert cli.main(args) == 0
    model = load_reward_model(out, use_cache=False)
    assert model.config.dim == 4 and model.config.encoder.dim == 64
    assert model.config.n_members == 1


BAD_VALUES = {
    "--members": ("0", "--members: gpm.n_members == 0, must be an integer >= 1."),
    "--gpm-dim": ("3", "--gpm-dim: gpm.dim == 3, must be even"),
    "--hidden": ("-1", "--hidden: gpm.hidden == -1, must be an integer >= 0."),
    "--epochs": ("0", "--epochs: gpm.epochs == 0, must be an integer >= 1."),
    "--lr": ("0", "--lr: gpm.lr == 0.0, must be a finite number > 0."),
    "--l2": ("-1", "--l2: gpm.l2 == -1.0, must be a finite number >= 0."),
    "--val-fraction": ("1", "--val-fraction: gpm.val_fraction == 1.0, must be in [0, 1)."),
    "--patience": ("0", "--patience: gpm.patience == 0, must be an integer >= 1."),
    "--seed": ("-1", "--seed: gpm.seed == -1, must be an integer >= 0."),
    "--calibration-folds": ("1", "--calibration-folds: gpm.calibration_folds == 1, must be 0"),
    "--encoder": ("minilmm", "encoder.kind == 'minilmm', must be one of"),
    "--encoder-path": ("/nowhere", "--encoder-path is only read with --encoder hf"),
    "--max-length": ("4", "--max-length: encoder.max_length == 4, must be >= 8."),
}


def test_every_config_flag_has_a_bad_value_case() -> None:
    assert {f.flag for f in GPM_FLAGS.flags} == set(BAD_VALUES) | {"--bootstrap"}


@pytest.mark.parametrize("flag", sorted(BAD_VALUES))
def test_a_bad_value_exits_2_with_one_line_before_any_work(
    flag: str, data: Path, tmp_path: Path, capsys
) -> None:
    value, message = BAD_VALUES[flag]
    extra = ["--encoder", "hashing"] if flag in ("--encoder-path", "--max-length") else []
    out = tmp_path / "m"
    code = cli.main(["train-gpm", "--data", str(data / "train.jsonl"), "--out", str(out),
                     *extra, flag, value])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in one_error(err)
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--members", "many"], "Invalid value for '--members'"),
        (["--lr", "fast"], "Invalid value for '--lr'"),
        (["--bootstrap=yes"], "Option '--bootstrap' does not take a value"),
        (["--calibration-folds", "5"], "calibration needs at least 10 pairs for 5"),
        (["--members", str(10**12)], "the heads would need about"),
    ],
)
def test_unparsable_or_impossible_values_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys
) -> None:
    data = write_pairs(tmp_path / "few.jsonl", rock_paper_scissors_pairs(2))
    out = tmp_path / "m"
    code = cli.main(["train-gpm", "--data", str(data), "--out", str(out), "--encoder",
                     "hashing", *args])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2
    assert message in " ".join((captured.err + captured.out).split())
    assert not out.exists()


def test_bad_inputs_and_outputs_are_refused_before_any_work(
    data: Path, tmp_path: Path, capsys
) -> None:
    train, missing = str(data / "train.jsonl"), str(tmp_path / "none.jsonl")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [
        (["--data", missing, "--out", str(tmp_path / "m")], "none.jsonl"),
        (["--data", train, "--out", str(a_file)], "is a file; name a folder"),
        (["--data", train, "--out", str(tmp_path / "m"), "--eval-data", missing], "none.jsonl"),
        (["--data", train, "--out", str(tmp_path / "m"), "--config", str(a_file)], "cannot read"),
    ]
    for args, message in cases:
        code = cli.main(["train-gpm", *args, "--encoder", "hashing"])
        assert code == 2 and message in one_error(capsys.readouterr().err), args
    assert not (tmp_path / "m").exists()


def test_help_lists_the_flags_with_their_docs() -> None:
    shown = flag_help(train_gpm)
    assert shown["--gpm-dim"][1] == "8" and "skew-symmetric" in shown["--gpm-dim"][0]
    assert shown["--members"][1] == "5"
