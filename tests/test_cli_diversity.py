"""``train --diversity / --subspace-fraction / --views`` on the command line, and the
folder they write read back by score, eval and bon."""

from __future__ import annotations

import json

import pytest

from rewardhedge import cli


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def pair_rows(pairs):
    return [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]


def train(tmp_path, *flags) -> int:
    return cli.main(
        [
            *("train", "--data", str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "rm")),
            *("--encoder", "hashing", "--calibration-folds", "2", *flags),
        ]
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--diversity", "nonsense"],
            "--diversity: diversity.kind == 'nonsense', must be one of: bootstrap, subspace, views",
        ),
        (
            ["--diversity", "subspace", "--subspace-fraction", "0"],
            "--subspace-fraction: diversity.subspace_fraction == 0.0, must be in (0, 1].",
        ),
        (
            ["--subspace-fraction", "1.5"],
            "--subspace-fraction: diversity.subspace_fraction == 1.5, must be in (0, 1].",
        ),
        (
            ["--views", "hash,ctx_l4"],
            "--views: encoder.views has 'ctx_l4', but the hashing encoder has only the views",
        ),
        (["--views", "hash,hashh"], "--views: encoder.views == 'hashh', must be one of"),
        (
            ["--diversity", "views", "--members", "2"],
            "--diversity: diversity.kind == 'views' gives member k view k mod 3",
        ),
    ],
)
def test_bad_diversity_flags_exit_2_naming_the_flag(tmp_path, pair_factory, capsys, flags, message):
    write_jsonl(tmp_path / "pairs.jsonl", pair_rows(pair_factory(10)))
    assert train(tmp_path, *flags) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "rm").exists()


def test_train_subspace_then_score_eval_bon(tmp_path, pair_factory, capsys):
    write_jsonl(tmp_path / "pairs.jsonl", pair_rows(pair_factory(60)))
    write_jsonl(tmp_path / "test.jsonl", pair_rows(pair_factory(30, seed=3)))
    items = [
        {"id": "a", "prompt": "q", "response": "the answer is correct, accurate and clear"},
        {"id": "b", "prompt": "q", "response": "the answer is wrong, vague and sloppy"},
    ]
    write_jsonl(tmp_path / "items.jsonl", items)
    pools = [
        {
            "prompt": "question 7 about item 1",
            "candidates": [
                "the answer is wrong, rude, vague, sloppy and false",
                "the answer is correct, accurate, helpful, precise and clear",
                "the answer is rude and vague",
            ],
            "gold": [0.0, 1.0, 0.0],
        }
    ]
    write_jsonl(tmp_path / "pools.jsonl", pools)
    rm = str(tmp_path / "rm")
    assert (
        train(tmp_path, "--members", "4", "--diversity", "subspace", "--subspace-fraction", "0.4")
        == 0
    )
    saved = json.loads((tmp_path / "rm" / "config.json").read_text())["ensemble"]
    assert saved["diversity"] == {"kind": "subspace", "subspace_fraction": 0.4}

    out = tmp_path / "scores.jsonl"
    assert (
        cli.main(
            ["score", "--model", rm, "--data", str(tmp_path / "items.jsonl"), "--out", str(out)]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"] and len(rows[0]["members"]) == 4
    assert rows[0]["reward"] > rows[1]["reward"] and len(set(rows[0]["members"])) == 4

    metrics_path = tmp_path / "m.json"
    code = cli.main(
        [
            *("eval", "--model", rm, "--data", str(tmp_path / "test.jsonl")),
            *("--json", str(metrics_path), "--reps", "50"),
        ]
    )
    assert code == 0
    assert json.loads(metrics_path.read_text())["pairwise_accuracy"] > 0.9

    picks = tmp_path / "picks.jsonl"
    code = cli.main(
        ["bon", "--model", rm, "--pools", str(tmp_path / "pools.jsonl"), "--out", str(picks)]
    )
    assert code == 0
    (pick,) = [json.loads(line) for line in picks.read_text().splitlines()]
    assert pick["index"] == 1 and pick["gold"] == 1.0
