"""Padding-free packing in the trainer: same rewards, same gradients, far fewer slots.

Tiny random backbones from ``tests/train/conftest.py``. Decoders (Qwen2, Llama) are
packed by position ids alone (transformers builds the block-causal mask from the
restarts); BERT gets a block-diagonal mask. RoBERTa counts positions from its pad id,
so packing would change its outputs: the probe must refuse it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rewardhedge.config_finetune import FinetuneConfig
from rewardhedge.encoders.reward_tokenizer import RewardTokenizer
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.finetuned import FinetunedRewardModel, build_network
from rewardhedge.models.reward_transformer import (
    RewardTransformer,
    default_pooling,
    load_backbone,
    packing_error,
)
from rewardhedge.train.finetune import finetune, pair_objective
from rewardhedge.train.pair_data import EncodedPairs, collate, collate_packed
from rewardhedge.types import PreferencePair

pytestmark = pytest.mark.usefixtures("single_thread")

Pairs = Callable[..., list[PreferencePair]]
BACKBONES = ["tiny_qwen2", "tiny_llama", "tiny_bert"]
BASE = {"batch_size": 8, "lr": 5e-3, "max_length": 48, "log_every": 1, "warmup_ratio": 0.0}


def network_and_data(
    folder: Path, pairs: list[PreferencePair], **overrides: object
) -> tuple[torch.nn.Module, EncodedPairs, int, FinetuneConfig]:
    """A seeded network and the encoded pairs, as ``FinetunedRewardModel.fit`` builds them."""
    from transformers import AutoTokenizer

    config = FinetuneConfig(backbone=str(folder), **{**BASE, **overrides})
    tok = RewardTokenizer(
        AutoTokenizer.from_pretrained(str(folder), local_files_only=True), config.max_length
    )
    torch.manual_seed(0)
    backbone = load_backbone(folder)
    net = build_network(backbone, config, default_pooling(backbone.config))
    return net, EncodedPairs.encode(pairs, tok), tok.pad_id, config


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({}, id="single"),
        pytest.param({"ensemble": "multihead", "n_members": 3}, id="multihead"),
        pytest.param({"ensemble": "lora", "n_members": 2, "lora": {"r": 4}}, id="lora"),
        pytest.param({"ensemble": "independent", "n_members": 2}, id="independent"),
    ],
)
def test_packed_batch_gives_the_rewards_of_the_padded_batch(
    backbone: str, settings: dict, request: pytest.FixtureRequest, synthetic_pairs: Pairs
) -> None:
    folder = request.getfixturevalue(backbone)
    net, data, pad_id, _ = network_and_data(folder, synthetic_pairs(12, seed=3), **settings)
    net.eval()
    index = np.arange(len(data))
    padded = collate(data, index, pad_id, 8)
    packed = collate_packed(data, index, pad_id, 8, row_tokens=96, pooling=net.pooling)
    assert packed.input_ids.shape[0] < padded.input_ids.shape[0]  # sequences share rows
    with torch.no_grad():
        want = net(*padded.model_inputs)
        got = net(*packed.model_inputs)
    assert got.shape == want.shape == (net.n_members, 2 * len(data))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    assert packing_error(net, pad_id) < 1e-5


def test_packed_batch_pools_each_sequence_at_its_own_token() -> None:
    tok_ids = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10]]
    data = EncodedPairs(
        chosen=tok_ids[:2],
        rejected=tok_ids[2:],
        margin=np.zeros(2, np.float32),
        chosen_score=np.full(2, np.nan, np.float32),
        rejected_score=np.full(2, np.nan, np.float32),
        truncated=np.zeros(2, bool),
    )
    for pooling, want in (("last", [3, 5, 9, 10]), ("first", [1, 4, 6, 10])):
        batch = collate_packed(data, np.arange(2), 0, 1, row_tokens=5, pooling=pooling)
        flat = batch.input_ids.reshape(-1)
        assert flat[batch.pool_at].tolist() == want  # chosen of pairs 0, 1, then rejected
        assert batch.n_tokens == 10
        for r in range(batch.input_ids.shape[0]):  # positions restart at each sequence
            pos = batch.position_ids[r][batch.attention_mask[r] > 0].tolist()
            assert pos[0] == 0 and all(b == a + 1 or b == 0 for a, b in itertools.pairwise(pos))


@pytest.mark.parametrize("backbone", ["tiny_qwen2", "tiny_bert"])
def test_packed_batch_gives_the_gradients_of_the_padded_batch(
    backbone: str, request: pytest.FixtureRequest, synthetic_pairs: Pairs
) -> None:
    folder = request.getfixturevalue(backbone)
    pairs = synthetic_pairs(12, seed=7, max_filler=40)
    net, data, pad_id, config = network_and_data(folder, pairs, max_length=128)
    net.eval()  # no dropout (BERT's would draw different masks); gradients still flow
    index = np.arange(len(data))
    grads = []
    for batch in (
        collate(data, index, pad_id, 8),
        collate_packed(data, index, pad_id, 8, row_tokens=128, pooling=net.pooling),
    ):
        net.zero_grad()
        pair_objective(net(*batch.model_inputs), batch, config, None).backward()
        grads.append({k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    # Float32 sums in another order differ by rounding (~1e-3 of a tensor's norm where
    # terms cancel, as in the embeddings); a real mix-up between sequences is O(1).
    # Gradients that are rounding noise themselves (~1e-8) are held to the largest's scale.
    norm = {k: float(torch.linalg.vector_norm(g)) for k, g in grads[0].items()}
    floor = 1e-5 * max(norm.values())
    for name, want in grads[0].items():
        gap = float(torch.linalg.vector_norm(grads[1][name] - want))
        assert gap <= 1e-2 * norm[name] + floor, name


def test_packed_training_follows_padded_training(tiny_qwen2: Path, synthetic_pairs: Pairs) -> None:
    """Same data order, same seed: packing changes where tokens sit, not the losses."""
    pairs = synthetic_pairs(32, seed=7, max_filler=40)
    reports = {}
    for packing in (False, True):
        net, data, pad_id, config = network_and_data(
            tiny_qwen2, pairs, packing=packing, group_by_length=False, max_steps=3, max_length=128
        )
        reports[packing] = finetune(net, data, config, pad_id=pad_id)
    loss = [[h["loss"] for h in reports[p].history if "loss" in h] for p in (False, True)]
    assert len(loss[0]) == 3
    np.testing.assert_allclose(loss[1], loss[0], rtol=1e-5)
    assert reports[True].tokens_seen == reports[False].tokens_seen
    # Unsorted batches of mixed lengths: padding to the longest wastes a quarter;
    # packed rows of nearly equal length waste almost none.
    assert reports[False].padding_fraction > 0.2
    assert reports[True].padding_fraction < 0.1


def test_packed_scoring_equals_padded_scoring(tiny_llama: Path, synthetic_pairs: Pairs) -> None:
    pairs = synthetic_pairs(24, seed=8, max_filler=8)
    config = FinetuneConfig(backbone=str(tiny_llama), packing=True, max_steps=2, **BASE)
    rm = FinetunedRewardModel(config).fit(pairs)
    assert rm.report_.padding_fraction < 0.15
    prompts = [p.prompt for p in pairs]
    responses = [p.chosen for p in pairs]
    packed = rm.score_batched(prompts, responses, batch_size=7)
    rm.config = replace(config, packing=False)
    padded = rm.score_batched(prompts, responses, batch_size=7)
    np.testing.assert_allclose(packed.members, padded.members, atol=1e-5, rtol=1e-4)


def test_backbone_that_ignores_restarting_positions_is_refused() -> None:
    from transformers import AutoModel, RobertaConfig

    config = RobertaConfig(
        vocab_size=200,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=80,
        pad_token_id=1,
    )
    torch.manual_seed(0)
    net = RewardTransformer(AutoModel.from_config(config), n_heads=1, pooling="first")
    assert packing_error(net, pad_id=1) > 1e-2  # RoBERTa positions start at pad id + 1
    data = EncodedPairs(
        chosen=[[0, 5, 6, 2]] * 4,
        rejected=[[0, 7, 2]] * 4,
        margin=np.zeros(4, np.float32),
        chosen_score=np.full(4, np.nan, np.float32),
        rejected_score=np.full(4, np.nan, np.float32),
        truncated=np.zeros(4, bool),
    )
    ft = FinetuneConfig(backbone="unused", packing=True, batch_size=2, max_steps=1)
    with pytest.raises(ConfigError, match=r"roberta backbone.*without --packing"):
        finetune(net, data, ft, pad_id=1)


@pytest.mark.parametrize(
    ("packing", "group_by_length", "grouped"),
    [(False, None, True), (True, None, False), (True, True, True), (False, False, False)],
)
def test_packing_shuffles_batches_unless_grouping_is_asked_for(
    packing: bool, group_by_length: bool | None, grouped: bool
) -> None:
    config = FinetuneConfig(packing=packing, group_by_length=group_by_length)
    assert config.grouped is grouped
    assert FinetuneConfig.from_dict(config.to_dict()).grouped is grouped
