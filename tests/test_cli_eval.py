"""``rewardhedge eval`` on real files: the task is told from the data, every block reaches the JSON."""

from __future__ import annotations

import json

import pytest

from rewardhedge import cli


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def pair_rows(pairs, subsets=None):
    return [
        {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
        | ({"subset": subsets[i % len(subsets)]} if subsets else {})
        for i, p in enumerate(pairs)
    ]


@pytest.fixture(scope="module")
def models(tmp_path_factory, pair_factory):
    root = tmp_path_factory.mktemp("models")
    train = write_jsonl(root / "train.jsonl", pair_rows(pair_factory(60)))
    flipped = [
        {"prompt": r["prompt"], "chosen": r["rejected"], "rejected": r["chosen"]}
        for r in pair_rows(pair_factory(60))
    ]
    train_b = write_jsonl(root / "flipped.jsonl", flipped)
    for data, name in ((train, "rm"), (train_b, "rm_flipped")):
        args = ["train", "--data", data, "--out", str(root / name), "--members", "3"]
        assert cli.main([*args, "--encoder", "hashing"]) == 0
    return str(root / "rm"), str(root / "rm_flipped")


def run_eval(tmp_path, *args):
    out = tmp_path / "eval.json"
    assert cli.main(["eval", *args, "--reps", "200", "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_pairs_with_rewardbench_subsets_against_a_second_model(
    tmp_path, models, capsys, pair_factory
):
    rm, other = models
    data = write_jsonl(
        tmp_path / "rb.jsonl",
        pair_rows(pair_factory(40, seed=3), ["alpacaeval-easy", "hep-go", "donotanswer"]),
    )
    m = run_eval(
        tmp_path,
        "--model",
        rm,
        "--data",
        data,
        "--against",
        other,
        "--perturb",
        "template,uppercase",
    )
    assert m["task"] == "pairs" and m["model"] == rm
    assert list(m["rewardbench"]["sections"]) == ["Chat", "Safety", "Reasoning"]
    assert not m["rewardbench"]["complete"]
    assert m["comparison"]["other_model"] == other and m["comparison"]["p_value"] < 0.05
    assert set(m["perturbation"]["kinds"]) == {"template", "uppercase"}
    assert m["controls"]["batch_invariance"]["passed"]
    text = capsys.readouterr().out
    assert "RewardBench section: Chat" in text and "batch 1 vs 64: PASS" in text


def test_one_to_many_file_is_recognised(tmp_path, models, pair_factory):
    rows = [
        {"prompt": p.prompt, "chosen": p.chosen, "rejected": [p.rejected, q.rejected]}
        for p, q in zip(pair_factory(10, seed=4), pair_factory(10, seed=5), strict=True)
    ]
    m = run_eval(
        tmp_path,
        "--model",
        models[0],
        "--data",
        write_jsonl(tmp_path / "m.jsonl", rows),
        "--batch-check",
        "0",
    )
    assert m["task"] == "one_to_many" and m["n_pairs"] == 20
    assert m["one_to_many"]["n_rows"] == 10 and m["controls"] == {}


def test_pools_file_is_recognised_and_pair_only_flags_are_refused(tmp_path, models, capsys):
    pools = [
        {
            "prompt": f"q{i}",
            "candidates": [f"the answer is correct {i}", f"the answer is wrong {i}"],
            "gold": [1.0, 0.0],
        }
        for i in range(8)
    ]
    data = write_jsonl(tmp_path / "pools.jsonl", pools)
    m = run_eval(tmp_path, "--model", models[0], "--data", data)
    assert m["task"] == "pools" and m["n_pools_with_gold"] == 8
    assert m["aggregations"]["mean"]["gold"]["mean"] > 0.5
    # "correct" and "wrong" answers are one character apart: every pick has a
    # similar-length rival, and the longer ("correct") one is the better one.
    lc = m["aggregations"]["mean"]["length_controls"]
    assert lc["n_pools"] == 8 and lc["n_matched"] == 8
    assert lc["longest_fraction"] == pytest.approx(m["aggregations"]["mean"]["gold"]["mean"])
    assert m["length_baselines"] == {"longest": 1.0, "shortest": 0.0, "random": 0.5}
    printed = capsys.readouterr().out
    assert "baseline: longer candidate" in printed and "longest picked" in printed
    assert cli.main(["eval", "--model", models[0], "--data", data, "--against", models[1]]) == 2
    code = cli.main(["eval", "--model", models[0], "--data", data, "--abstain-alpha", "0.1"])
    assert code == 2
    assert "--abstain-alpha only apply to preference pairs" in capsys.readouterr().err


def test_an_unknown_task_or_perturbation_is_a_clear_error(tmp_path, models, capsys, pair_factory):
    data = write_jsonl(tmp_path / "p.jsonl", pair_rows(pair_factory(6)))
    assert cli.main(["eval", "--model", models[0], "--data", data, "--task", "triples"]) == 2
    assert "triples" in capsys.readouterr().err
    assert cli.main(["eval", "--model", models[0], "--data", data, "--perturb", "reverse"]) == 2
    assert "reverse" in capsys.readouterr().err
