"""The overoptimisation lab with fine-tuned proxies (``overopt --finetune``) on a tiny BERT:
the factory trains what a direct fit trains, the proxies learn, and the command line."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("accelerate")

from rewardhedge.cli import main
from rewardhedge.config_finetune import FinetuneConfig, FinetuneEnsemble
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.finetuned import FinetunedRewardModel
from rewardhedge.lab.data import LabelModel, PoolSplit, from_pools
from rewardhedge.lab.overopt import LabConfig, run_lab
from rewardhedge.lab.proxies import FinetunedProxies
from rewardhedge.types import CandidatePool

pytestmark = pytest.mark.usefixtures("single_thread")

GOOD = ["great", "excellent", "helpful", "correct", "kind"]
BAD = ["awful", "wrong", "rude", "useless", "bad"]
TEMPLATE = {"batch_size": 8, "lr": 5e-3, "max_length": 32, "epochs": 3, "warmup_ratio": 0.1}


def word_pools(n_prompts: int, size: int, seed: int = 0) -> list[CandidatePool]:
    """Pools whose gold is +1 for a candidate with a good word and −1 for a bad one: a
    proxy that learns the words picks a good candidate whenever its pool has one."""
    rng = random.Random(seed)
    pools = []
    for i in range(n_prompts):
        words = [rng.choice(GOOD + BAD) for _ in range(size)]
        pools.append(
            CandidatePool(
                prompt=f"question {i % 7} about {rng.choice(['cats', 'rain', 'code'])}",
                candidates=tuple(
                    f"{'so ' * rng.randint(0, 3)}{w} answer {j}" for j, w in enumerate(words)
                ),
                gold=tuple(1.0 if w in GOOD else -1.0 for w in words),
                id=f"p{i}",
            )
        )
    return pools


def lab_config(backbone: Path, **kw) -> LabConfig:
    split = PoolSplit(pairs_per_prompt=0, labels=LabelModel(temperature=0.05, flip_rate=0.0))
    return LabConfig(
        finetune=FinetuneConfig(backbone=str(backbone), **TEMPLATE),
        members=2,
        seeds=(0, 1),
        bootstrap_reps=200,
        pools=split,
        **kw,
    )


@pytest.mark.slow
def test_finetuned_lab_trains_what_a_direct_fit_trains_and_its_picks_beat_chance(
    tiny_bert: Path,
) -> None:
    config = lab_config(tiny_bert)
    data = from_pools(word_pools(60, 4), config.pools)
    result, runs = run_lab(config, data=data)

    assert result["proxies"]["family"] == "finetuned"
    assert result["config"]["options"] == [{"name": "multihead", "finetuned": True}]
    assert {c["model"] for c in result["curves"]} == {"single", "multihead"}
    assert all(r["label"].startswith("multihead") for r in result["paired"])
    multihead = runs[1].models["multihead"]
    assert isinstance(multihead, FinetunedRewardModel)
    assert multihead.config.ensemble is FinetuneEnsemble.MULTIHEAD and multihead.n_members == 2
    assert multihead.config.seed == 1 and multihead.config.lr == TEMPLATE["lr"]

    # The factory's model for seed 1 is the model a user would fit on seed 1's labels.
    direct = FinetunedRewardModel(
        FinetunedProxies(config.finetune, config.options, 2, config.member_norm).model_config(
            "single", 1
        )
    ).fit(data.labelled_pairs("train", 1))
    prompts = [p.prompt for p in data.pools for _ in p.candidates]
    texts = [c for p in data.pools for c in p.candidates]
    np.testing.assert_array_equal(
        direct.score(prompts, texts).mean, runs[1].models["single"].score(prompts, texts).mean
    )

    # A proxy that learned the words picks better than chance: gold at n=N beats n=1.
    single = next(c for c in result["curves"] if c["model"] == "single")
    assert single["gold"]["iqm"][-1] > single["gold"]["iqm"][0] + 0.5, single["gold"]["iqm"]


def test_finetuned_options_and_settings_are_checked_before_training(tiny_bert: Path) -> None:
    with pytest.raises(ConfigError, match="unknown fine-tuned ensemble option 'views'"):
        lab_config(tiny_bert, options=("views",))
    with pytest.raises(ConfigError, match="options repeat"):
        lab_config(tiny_bert, options=("lora", "lora"))
    top = FinetuneConfig(backbone=str(tiny_bert), train_top_layers=1)
    with pytest.raises(ConfigError, match=r"the lora proxy.*LoRA"):
        LabConfig(finetune=top, options=("lora",))
    assert LabConfig(finetune=top).options == ("multihead",)  # the fine-tuned default


def _write_pools(path: Path, pools: list[CandidatePool]) -> Path:
    rows = [
        {"prompt": p.prompt, "candidates": list(p.candidates), "gold": list(p.gold)} for p in pools
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow
def test_overopt_finetune_command_writes_the_lab_and_report(
    tiny_bert: Path, tmp_path: Path, capsys
) -> None:
    pools = _write_pools(tmp_path / "pools.jsonl", word_pools(40, 4))
    settings = tmp_path / "ft.json"
    settings.write_text(json.dumps(TEMPLATE | {"epochs": 1}))
    out = tmp_path / "lab"
    args = ["overopt", "--pools", str(pools), "--finetune", str(tiny_bert), "--finetune-config",
            str(settings), "--seeds", "1", "--members", "2", "--options", "mc_dropout",
            "--pairs-per-prompt", "0", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "overopt.json").read_text())
    assert result["proxies"]["family"] == "finetuned"
    assert result["proxies"]["finetune"]["epochs"] == 1
    assert result["proxies"]["finetune"]["backbone"] == str(tiny_bert)
    assert {c["model"] for c in result["curves"]} == {"single", "mc_dropout"}
    # mc_dropout's members are its dropout draws (16 by default), not --members
    assert result["diversity"][0]["n_members"] == 16
    assert (out / "report.html").stat().st_size > 10_000
    err = capsys.readouterr().err
    assert "fine-tuned from" in err and "fine-tune single (seed 0)" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--finetune", "{tmp}/nope"], "--finetune: backbone"),
        (["--finetune", "{bert}", "--options", "views"], "--options:"),
        (["--finetune-config", "{tmp}/ft.json"], "names no backbone"),
        (["--finetune", "{bert}", "--finetune-config", "{tmp}/bad.json"], "bad.json"),
        (["--finetune", "{bert}", "--finetune-config", "{tmp}/top.json", "--options", "lora"],
         "--finetune-config:"),
    ],
)  # fmt: skip
def test_bad_finetune_flags_are_one_line_and_write_nothing(
    extra: list[str], message: str, tiny_bert: Path, tmp_path: Path, capsys
) -> None:
    pools = _write_pools(tmp_path / "pools.jsonl", word_pools(8, 3))
    (tmp_path / "ft.json").write_text(json.dumps({"epochs": 1}))
    (tmp_path / "bad.json").write_text("{epochs")
    (tmp_path / "top.json").write_text(json.dumps({"train_top_layers": 1}))
    args = [a.format(tmp=tmp_path, bert=tiny_bert) for a in extra]
    out = tmp_path / "lab"
    code = main(["overopt", "--pools", str(pools), "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists()
