"""Item-level ratings (prompt, response, score rows): loading, sniffing, fitting the
rating objectives on them, and ``train`` on such a file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from rewardhedge import cli
from rewardhedge.config import EncoderConfig, EnsembleConfig, TrainConfig, UncertaintyConfig
from rewardhedge.data import load_rated_items
from rewardhedge.data.loaders import holds_rated_items
from rewardhedge.errors import ConfigError, DataError
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.types import RatedItem

VALUE = {"correct": 2.0, "helpful": 1.0, "fine": 0.0, "vague": -1.0, "wrong": -2.0}


def rated_items(n: int, seed: int = 0) -> list[RatedItem]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        words = list(rng.choice(list(VALUE), size=3))
        out.append(
            RatedItem(
                f"question {i % 7}",
                "the answer is " + " ".join(words),
                5.0 + sum(VALUE[w] for w in words),
                id=str(i),
            )
        )
    return out


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_loader_reads_items_and_names_a_missing_score(tmp_path):
    good = tmp_path / "items.jsonl"
    write_jsonl(
        good,
        [
            {"prompt": "q", "response": "a", "score": 3},
            {"prompt": "q", "response": "b", "score": 1.5},
        ],
    )
    items, _ = load_rated_items(good)
    assert [(i.response, i.score) for i in items] == [("a", 3.0), ("b", 1.5)]
    assert holds_rated_items(good)
    bad = tmp_path / "bad.jsonl"
    write_jsonl(
        bad, [{"prompt": "q", "response": "a", "score": 3}, {"prompt": "q", "response": "b"}]
    )
    with pytest.raises(DataError, match=r"bad.jsonl:2: field 'score' is missing"):
        load_rated_items(bad)


def test_pairs_files_are_not_taken_for_items(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    write_jsonl(pairs, [{"prompt": "q", "chosen": "a", "rejected": "b", "score": 1}])
    assert not holds_rated_items(pairs)


@pytest.mark.parametrize("objective", ["regression", "hl_gauss"])
def test_fit_ratings_orders_items_like_their_scores(objective):
    config = EnsembleConfig(
        n_members=2,
        encoder=EncoderConfig(kind="hashing", dim=64),
        train=TrainConfig(objective=objective, lr=0.02, l2=0.01),
    )
    items = rated_items(300)
    model = EnsembleRewardModel(config).fit_ratings(items)
    test = rated_items(100, seed=1)
    est = model.score([i.prompt for i in test], [i.response for i in test])
    rho = spearmanr(est.mean, [i.score for i in test]).statistic
    assert rho > 0.9, rho
    assert model.temperature == 1.0 and model.n_pairs_ == 300


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"train": TrainConfig(objective="bt")}, "'bt' needs preference pairs"),
        (
            {
                "train": TrainConfig(objective="regression"),
                "uncertainty": UncertaintyConfig(error_predictor=True),
            },
            "error_predictor is fitted on held-out preference pairs",
        ),
    ],
)
def test_fit_ratings_refuses_what_needs_pairs(change, needle):
    config = EnsembleConfig(n_members=2, encoder=EncoderConfig(kind="hashing", dim=16), **change)
    with pytest.raises(ConfigError, match=needle):
        EnsembleRewardModel(config).fit_ratings(rated_items(10))


def test_train_on_an_items_file_then_score(tmp_path, capsys):
    data = tmp_path / "items.jsonl"
    write_jsonl(
        data,
        [{"prompt": i.prompt, "response": i.response, "score": i.score} for i in rated_items(60)],
    )
    rm = tmp_path / "rm"
    argv = [
        "train",
        "--data",
        data,
        "--out",
        rm,
        "--encoder",
        "hashing",
        "--objective",
        "regression",
        "--epochs",
        "30",
    ]
    assert cli.main([str(a) for a in argv]) == 0
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "rated items, so no temperature is fitted (there are no pairs)" in err
    model = EnsembleRewardModel.load(rm, use_cache=False)
    assert model.config.train.objective.value == "regression" and model.n_pairs_ == 60


def test_train_on_items_with_the_bt_objective_names_the_file_and_writes_nothing(tmp_path, capsys):
    data = tmp_path / "items.jsonl"
    write_jsonl(
        data,
        [{"prompt": i.prompt, "response": i.response, "score": i.score} for i in rated_items(20)],
    )
    argv = ["train", "--data", data, "--out", tmp_path / "rm", "--encoder", "hashing"]
    assert cli.main([str(a) for a in argv]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{data}: holds rated items (prompt, response, score), which train.objective 'bt'" in err
    assert not (tmp_path / "rm").exists()
