"""``train --objective / --regression-weight / --bins / --hl-sigma / --length-head /
--length-decorrelation / --spectral-norm`` on the command line: bad values are refused
before any work, and the folders they write are scored and evaluated."""

from __future__ import annotations

import json

import pytest

from rewardhedge import cli


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def rated_rows(pairs, *, ratings: bool = True):
    rows = []
    for i, p in enumerate(pairs):
        row = {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
        if ratings:
            row |= {"chosen_score": 4.0 + (i % 3), "rejected_score": 1.0 + (i % 2)}
        rows.append(row)
    return rows


def train(tmp_path, *flags) -> int:
    return cli.main(
        [
            *("train", "--data", str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "rm")),
            *("--encoder", "hashing", "--calibration-folds", "2", "--epochs", "20", *flags),
        ]
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--objective", "l1"], "--objective: train.objective == 'l1', must be one of: bt,"),
        (["--regression-weight", "-1"], "--regression-weight: train.regression_weight == -1.0"),
        (["--bins", "1"], "--bins: head.bins == 1, must be an integer >= 2."),
        (["--hl-sigma", "0"], "--hl-sigma: head.hl_sigma == 0.0"),
        (["--length-decorrelation", "-2"], "--length-decorrelation: train.length_decorrelation"),
        (["--spectral-norm", "1"], "--spectral-norm: head.spectral_norm bounds the hidden layer"),
        (["--head", "mlp", "--spectral-norm", "0"], "--spectral-norm: head.spectral_norm == 0.0"),
        (
            ["--objective", "hl_gauss", "--length-head"],
            "train.objective 'hl_gauss' predicts a histogram",
        ),
        (["--regression-weight", "2"], "--regression-weight: train.regression_weight is only read"),
        (["--objective", "regression", "--bins", "11"], "--bins: head.bins is only read with"),
        (["--hl-sigma", "1"], "--hl-sigma: head.hl_sigma is only read with train.objective"),
        (["--length-decorrelation", "2"], "train.length_decorrelation is only read with head.len"),
        (
            ["--objective", "regression", "--estimator", "laplace"],
            "takes its Hessian from the BT loss",
        ),
    ],
)
def test_bad_values_exit_2_naming_the_flag_and_write_nothing(
    tmp_path, pair_factory, capsys, flags, message
):
    write_jsonl(tmp_path / "pairs.jsonl", rated_rows(pair_factory(10)))
    assert train(tmp_path, *flags) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("error:") == 1
    assert not (tmp_path / "rm").exists()


def test_a_rating_objective_on_unrated_pairs_names_the_file(tmp_path, pair_factory, capsys):
    write_jsonl(tmp_path / "pairs.jsonl", rated_rows(pair_factory(10), ratings=False))
    assert train(tmp_path, "--objective", "bt_regression") == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'pairs.jsonl'}: train.objective 'bt_regression' fits ratings" in err
    assert not (tmp_path / "rm").exists()


def test_hl_gauss_scores_carry_the_histogram_variance(tmp_path, pair_factory, capsys):
    write_jsonl(tmp_path / "pairs.jsonl", rated_rows(pair_factory(40)))
    items = [{"id": "a", "prompt": "q", "response": p.chosen} for p in pair_factory(5, seed=4)]
    write_jsonl(tmp_path / "items.jsonl", items)
    assert train(tmp_path, "--objective", "hl_gauss", "--bins", "11") == 0
    config = json.loads((tmp_path / "rm" / "config.json").read_text())["ensemble"]
    assert config["train"]["objective"] == "hl_gauss" and config["head"]["bins"] == 11
    out = tmp_path / "scores.jsonl"
    assert (
        cli.main(
            [
                "score",
                "--model",
                str(tmp_path / "rm"),
                "--data",
                str(tmp_path / "items.jsonl"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5
    # Rewards live on the ratings' range (1 to 6 here), the aleatoric term is the spread.
    assert all(1.0 <= r["mean"] <= 6.0 and r["aleatoric"] > 0 for r in rows)


def test_length_head_model_evaluates_with_length_controls(tmp_path, pair_factory, capsys):
    write_jsonl(tmp_path / "pairs.jsonl", rated_rows(pair_factory(40)))
    write_jsonl(tmp_path / "test.jsonl", rated_rows(pair_factory(20, seed=5)))
    assert train(tmp_path, "--length-head", "--length-decorrelation", "2") == 0
    out = tmp_path / "eval.json"
    code = cli.main(
        [
            "eval",
            "--model",
            str(tmp_path / "rm"),
            "--data",
            str(tmp_path / "test.jsonl"),
            "--json",
            str(out),
        ]
    )
    assert code == 0
    metrics = json.loads(out.read_text())
    found = json.dumps(metrics)
    assert '"length_matched"' in found and '"length_reward_corr"' in found
