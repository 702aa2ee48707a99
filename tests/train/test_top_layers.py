"""Training only the top layers on cached lower-layer outputs (``train_top_layers``).

On the tiny random BERT from ``conftest.py`` (2 layers): the split forward gives the
backbone's own outputs, the frozen part never moves, each distinct text's lower
states are computed once, the saved model is the plain network, and bad settings are
refused in one line before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rewardhedge.cli import main
from rewardhedge.config_finetune import FinetuneConfig
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.finetuned import FinetunedRewardModel, build_network
from rewardhedge.models.reward_transformer import load_backbone
from rewardhedge.train.top_layers import split_error, top_layers_only

pytestmark = pytest.mark.usefixtures("single_thread")

BASE = {"batch_size": 8, "lr": 5e-3, "max_length": 48, "log_every": 4, "warmup_ratio": 0.1}


def fit(backbone: Path, pairs, **overrides) -> FinetunedRewardModel:
    config = FinetuneConfig(backbone=str(backbone), **{**BASE, **overrides})
    return FinetunedRewardModel(config).fit(pairs)


def state(model: FinetunedRewardModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.network_.state_dict().items()}


def test_split_forward_is_the_backbones_own(tiny_bert: Path) -> None:
    backbone = load_backbone(tiny_bert)
    for n_lower in (0, 1, 2):
        assert split_error(backbone, n_lower) < 1e-5


def test_without_dropout_training_forward_equals_scoring_forward(tiny_bert: Path) -> None:
    """The cached path (train mode) and the backbone's own path (eval mode) give the same
    rewards when no dropout is drawn, including on the second, cached, call."""
    backbone = load_backbone(tiny_bert)
    backbone.config.hidden_dropout_prob = backbone.config.attention_probs_dropout_prob = 0.0
    for m in backbone.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    net = build_network(backbone, FinetuneConfig(backbone=str(tiny_bert)), "first")
    ids = torch.tensor([[101, 7, 8, 9, 102, 0, 0], [101, 11, 12, 13, 14, 15, 102]])
    mask = (ids != 0).long()
    net.eval()
    expected = net(ids, mask)
    with top_layers_only(net, 1) as cache:
        net.train()
        first = net(ids, mask)
        second = net(ids, mask)
    assert (cache.misses, cache.hits) == (2, 2)
    torch.testing.assert_close(first, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(second, expected, atol=1e-5, rtol=1e-5)
    assert "forward" not in vars(net.backbone)  # plain again after the block


@pytest.mark.slow
def test_only_the_top_layer_and_heads_move_and_the_model_learns(
    tiny_bert: Path, synthetic_pairs, tmp_path: Path
) -> None:
    pairs = synthetic_pairs(64, seed=0)
    before = FinetunedRewardModel(FinetuneConfig(backbone=str(tiny_bert), **BASE))
    before.network_ = build_network(load_backbone(tiny_bert), before.config, "first")
    start = state(before)
    model = fit(tiny_bert, pairs, train_top_layers=1, epochs=4, ensemble="multihead", n_members=2)
    end = state(model)
    frozen = [k for k in start if "embeddings" in k or "encoder.layer.0." in k]
    trained = [k for k in start if "encoder.layer.1." in k and k.endswith("weight")]
    assert frozen and trained
    assert all(torch.equal(start[k], end[k]) for k in frozen)
    assert all(not torch.equal(start[k], end[k]) for k in [*trained, "heads.weight"])
    held_out = synthetic_pairs(48, seed=1)
    est = model.compare(held_out)
    assert float((est.chosen.mean > est.rejected.mean).mean()) >= 0.8
    assert model.report_.lower_cache_bytes > 0
    # The saved folder is a plain network: it loads and scores like the trained one.
    out = model.save(tmp_path / "rm")
    loaded = FinetunedRewardModel.load(out)
    texts = [p.chosen for p in held_out[:5]]
    prompts = [p.prompt for p in held_out[:5]]
    torch.testing.assert_close(
        torch.as_tensor(loaded.score(prompts, texts).members),
        torch.as_tensor(model.score(prompts, texts).members),
    )


@pytest.mark.slow
def test_independent_members_share_one_cache_and_differ(tiny_bert: Path, synthetic_pairs) -> None:
    pairs = synthetic_pairs(32, seed=0)
    model = fit(tiny_bert, pairs, train_top_layers=1, max_steps=8, ensemble="independent",
                n_members=2)  # fmt: skip
    a, b = model.network_.members
    w = "backbone.encoder.layer.1.attention.self.query.weight"
    assert not torch.equal(a.state_dict()[w], b.state_dict()[w])
    n_texts = len({(p.prompt, p.chosen) for p in pairs} | {(p.prompt, p.rejected) for p in pairs})
    per_text = model.report_.lower_cache_bytes / n_texts
    # One cache for both members: about one (T, 32) fp32 state per distinct text.
    assert 32 * 4 * 4 <= per_text <= 32 * 4 * 48


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train_top_layers": 0}, "must be >= 1"),
        ({"train_top_layers": 1, "use_lora": True}, "LoRA"),
        ({"train_top_layers": 1, "ensemble": "lora"}, "LoRA"),
        ({"train_top_layers": 1, "packing": True}, "packing"),
    ],
)
def test_bad_settings_are_refused_in_the_config(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        FinetuneConfig(backbone="x", **overrides)


def test_more_layers_than_the_backbone_has_is_refused(tiny_bert: Path, synthetic_pairs) -> None:
    with pytest.raises(ConfigError, match="between 1 and the backbone's 2 layers"):
        fit(tiny_bert, synthetic_pairs(8), train_top_layers=3, max_steps=1)


def test_a_decoder_is_refused(tiny_llama: Path, synthetic_pairs) -> None:
    with pytest.raises(ConfigError, match="no BERT-style"):
        fit(tiny_llama, synthetic_pairs(8), train_top_layers=1, max_steps=1)


def test_cli_bad_value_is_one_line_and_writes_nothing(
    tiny_bert: Path, synthetic_pairs, tmp_path: Path, capsys
) -> None:
    train = tmp_path / "train.jsonl"
    rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
            for p in synthetic_pairs(8)]  # fmt: skip
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for value in ("0", "3"):
        code = main(["finetune", "--backbone", str(tiny_bert), "--data", str(train), "--out",
                     str(tmp_path / "rm"), "--train-top-layers", value])  # fmt: skip
        assert code == 2
        err = capsys.readouterr().err
        assert "train_top_layers" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert not (tmp_path / "rm").exists()
