"""``rewardhedge explain``: the top helping and hurting training pairs of one test pair,
the JSONL of every pair's influence, and one clear error (exit 2) for every bad flag."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardhedge import cli
from rewardhedge.data import load_pairs
from rewardhedge.estimators.influence import influence
from rewardhedge.estimators.loading import load_reward_model

TEST_PAIR = {
    "prompt": "question 3 about item 5",
    "chosen": "the answer is correct for question 3",
    "rejected": "the answer is wrong for question 3",
}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, pair_factory):
    """``(model folder, training file)``: 24 pairs, K=2 linear heads on hashing features."""
    root = tmp_path_factory.mktemp("explain")
    rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
            for p in pair_factory(24, seed=1)]  # fmt: skip
    data = write_jsonl(root / "train.jsonl", rows)
    args = ["train", "--data", str(data), "--out", str(root / "rm"), "--encoder", "hashing",
            "--members", "2", "--epochs", "30", "--calibration-folds", "0"]  # fmt: skip
    assert cli.main(args) == 0
    return root / "rm", data


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["explain", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_explain_lists_helping_and_hurting_pairs_and_writes_every_pair(
    trained, tmp_path, capsys
) -> None:
    model, data = trained
    out = tmp_path / "explain.jsonl"
    code, stdout, stderr = run(capsys, "--model", str(model), "--data", str(data),
                               "--pair", json.dumps(TEST_PAIR), "--top", "3", "--out", str(out))  # fmt: skip
    assert code == 0, stderr
    assert "Top 3 helping pairs" in stdout and "Top 3 hurting pairs" in stdout
    assert "Test pair --pair: margin" in stderr and "note: early stopping" in stderr
    assert "warning: training to convergence would move" in stderr  # 30 epochs at lr 1e-3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(24))
    assert set(rows[0]) == {"index", "id", "influence", "helps", "members", "scale_part",
                            "trained", "prompt", "chosen", "rejected"}  # fmt: skip
    pairs, _ = load_pairs(data)
    expected = influence(
        load_reward_model(model), pairs, cli.explain.parse_pair(json.dumps(TEST_PAIR))
    )
    np.testing.assert_allclose([r["influence"] for r in rows], expected.influence, rtol=1e-9)
    helping, _ = expected.top(3)
    assert f"train.jsonl:{helping[0] + 1}" in stdout  # ids are file:line


def test_pair_file_and_index_pick_the_same_pair(trained, tmp_path, capsys) -> None:
    model, data = trained
    pair_file = write_jsonl(tmp_path / "test.jsonl", [{**TEST_PAIR, "chosen": "other"}, TEST_PAIR])
    outs = []
    for how in (["--pair", json.dumps(TEST_PAIR)], ["--pair-file", str(pair_file), "--index", "1"]):
        out = tmp_path / f"e{len(outs)}.jsonl"
        code, _, stderr = run(capsys, "--model", str(model), "--data", str(data), *how,
                              "--out", str(out))  # fmt: skip
        assert code == 0, stderr
        outs.append([json.loads(line)["influence"] for line in out.read_text().splitlines()])
    assert outs[0] == outs[1]


BAD = [
    (["--pair", "{not json"], "error: --pair is not valid JSON (Expecting property name enclosed in double quotes at character 1)."),
    (["--pair", "[1, 2]"], "error: --pair must be a JSON object with prompt, chosen and rejected, got list."),
    (["--pair", '{"prompt": "q", "chosen": "a"}'], "error: --pair: field 'rejected' is missing (keys present: prompt, chosen)"),
    (["--pair", '{"prompt": "q", "chosen": "a", "rejected": "a"}'], "error: --pair: fields 'chosen' and 'rejected' are identical"),
    ([], "error: give the test pair with exactly one of --pair JSON or --pair-file FILE --index I."),
    (["--pair", "{}", "--pair-file", "PAIRS"], "error: give the test pair with exactly one of --pair JSON"),
    (["--pair-file", "PAIRS"], "error: --pair-file needs --index: which of its pairs to explain (0: the first)."),
    (["--pair", "{}", "--index", "0"], "error: --index picks a pair of --pair-file; give --pair-file or drop --index."),
    (["--pair-file", "PAIRS", "--index", "-1"], "error: --index == -1, must be >= 0 (0: the first pair)."),
    (["--pair-file", "PAIRS", "--index", "5"], "error: --index == 5, but --pair-file 'PAIRS' holds 2 pairs (0 to 1)."),
    (["--pair", "{}", "--top", "0"], "error: --top == 0, must be >= 1."),
    (["--pair", "{}", "--damping", "-1"], "error: --damping == -1.0, must be a finite number >= 0."),
    (["--pair", "{}", "--damping", "nan"], "error: --damping == nan, must be a finite number >= 0."),
    (["--pair", json.dumps(TEST_PAIR), "--out", "TMP"], "error: --out 'TMP' is a folder; name a file to write."),
    (["--pair", json.dumps(TEST_PAIR), "--out", "DATA"], "error: --out 'DATA' is the same file as --data 'DATA'"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD)
def test_every_bad_flag_value_is_one_clear_error(trained, tmp_path, capsys, args, message) -> None:
    model, data = trained
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [TEST_PAIR, {**TEST_PAIR, "chosen": "x"}])
    names = {"PAIRS": str(pairs), "TMP": str(tmp_path), "DATA": str(data)}
    args = [names.get(a, a) for a in args]
    for key, value in names.items():
        message = message.replace(f"'{key}'", repr(value))
    code, _, stderr = run(capsys, "--model", str(model), "--data", str(data), *args)
    assert code == 2
    lines = stderr.strip().splitlines()  # reading --pair-file reports its rows first
    assert lines[-1].startswith(message), stderr
    assert sum(line.startswith("error:") for line in lines) == 1


def test_data_that_did_not_train_the_model_is_named(trained, tmp_path, capsys) -> None:
    model, data = trained
    fewer = tmp_path / "fewer.jsonl"
    fewer.write_text("".join(data.read_text().splitlines(keepends=True)[:-1]))
    code, _, stderr = run(capsys, "--model", str(model), "--data", str(fewer),
                          "--pair", json.dumps(TEST_PAIR))  # fmt: skip
    assert code == 2
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"error: {fewer}: these 23 pairs are not the ones the model was trained on (24 pairs"
        )
    )


def test_an_mlp_model_is_refused_before_its_data_is_read(trained, tmp_path, capsys) -> None:
    _, data = trained
    mlp = tmp_path / "mlp"
    args = ["train", "--data", str(data), "--out", str(mlp), "--encoder", "hashing",
            "--head", "mlp", "--members", "1", "--epochs", "2", "--calibration-folds", "0"]  # fmt: skip
    assert cli.main(args) == 0
    capsys.readouterr()
    code, _, stderr = run(capsys, "--model", str(mlp), "--data", str(tmp_path / "missing.jsonl"),
                          "--pair", json.dumps(TEST_PAIR))  # fmt: skip
    assert code == 2
    assert stderr.startswith("error: influence needs linear heads, but this model's head.kind")


def test_texts_that_look_like_markup_are_printed_as_they_are() -> None:
    from rich.console import Console

    from rewardhedge.cli.explain import _table
    from rewardhedge.estimators.influence import InfluenceResult
    from rewardhedge.types import PreferencePair

    pairs = [PreferencePair("[bold]q", "a [/] b", "c [red]", id="[/]")]
    result = InfluenceResult(np.ones(1), np.ones((1, 1)), np.zeros((1, 1)), np.ones(1, bool),
                             1.0, np.ones(1), np.zeros(1))  # fmt: skip
    console = Console(width=200, record=True)
    console.print(_table(result, pairs, [0], "t"))
    text = console.export_text()
    assert "[bold]q" in text and "+ a [/] b" in text and "- c [red]" in text and " [/] " in text


def test_missing_inputs_and_unparsable_numbers_exit_2(trained, tmp_path, capsys) -> None:
    model, data = trained
    pair = ["--pair", json.dumps(TEST_PAIR)]
    missing = tmp_path / "missing.jsonl"
    cases = [
        (["--model", str(model), "--data", str(data), "--pair-file", str(missing), "--index", "0"],
         f"error: {missing}: file not found"),
        (["--model", str(tmp_path / "no-model"), "--data", str(data), *pair],
         f"error: {tmp_path / 'no-model'}: model folder not found."),
        (["--model", str(model), "--data", str(data), *pair, "--top", "x"],
         "Invalid value for '--top'"),
        (["--model", str(model), "--data", str(data), *pair, "--index", "1.5"],
         "Invalid value for '--index'"),
    ]  # fmt: skip
    for args, message in cases:
        code, _, stderr = run(capsys, *args)
        assert code == 2, args
        assert message in " ".join(stderr.replace("│", " ").split()), (args, stderr)
        assert "Traceback" not in stderr


def test_a_converged_model_gets_no_convergence_warning(trained, tmp_path, capsys) -> None:
    _, data = trained
    rm = tmp_path / "converged"
    args = ["train", "--data", str(data), "--out", str(rm), "--encoder", "hashing",
            "--members", "1", "--val-fraction", "0", "--lr", "0.1", "--epochs", "200",
            "--calibration-folds", "0"]  # fmt: skip
    assert cli.main(args) == 0
    capsys.readouterr()
    code, _, stderr = run(capsys, "--model", str(rm), "--data", str(data),
                          "--pair", json.dumps(TEST_PAIR))  # fmt: skip
    assert code == 0, stderr
    assert "warning:" not in stderr and "note: early stopping" not in stderr
