"""Member normalisation of a fine-tuned ensemble: fitted after training, saved, invariant."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from rewardhedge.config import MemberNormKind
from rewardhedge.config_finetune import FinetuneConfig
from rewardhedge.estimators.finetuned import FinetunedRewardModel
from rewardhedge.types import PreferencePair
from rewardhedge.uncertainty.aggregation import Aggregation

pytestmark = pytest.mark.usefixtures("single_thread")

Pairs = Callable[..., list[PreferencePair]]
BASE = {"batch_size": 8, "lr": 5e-3, "max_length": 48, "log_every": 4, "warmup_ratio": 0.1}
CONSERVATIVE = [
    Aggregation("wco"),
    Aggregation("uwo", lam=0.5),
    Aggregation("lcb", beta=1.0),
    Aggregation("brme", lam=0.5),
    Aggregation("softmin", beta=0.5),
]


@pytest.fixture(scope="module")
def multihead(tiny_qwen2: Path, synthetic_pairs: Pairs, single_thread: None):
    pairs = synthetic_pairs(32, seed=1)
    config = FinetuneConfig(
        backbone=str(tiny_qwen2), ensemble="multihead", n_members=3, max_steps=4, **BASE
    )
    return FinetunedRewardModel(config).fit(pairs), pairs


def items(pairs: list[PreferencePair]) -> tuple[list[str], list[str]]:
    prompts = [p.prompt for p in pairs]
    return prompts + prompts, [p.chosen for p in pairs] + [p.rejected for p in pairs]


def raw_members(model: FinetunedRewardModel, prompts, texts) -> np.ndarray:
    norm, model.norm_ = model.norm_, None
    try:
        return model.score(prompts, texts).members
    finally:
        model.norm_ = norm


def test_norm_is_fitted_on_both_sides_of_the_training_pairs(multihead):
    model, pairs = multihead
    raw = raw_members(model, *items(pairs))
    assert model.norm_.n_heads == 3
    np.testing.assert_allclose(model.norm_.loc, raw.mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(model.norm_.scale, raw.std(axis=1), rtol=1e-9)
    est = model.score(*items(pairs))
    np.testing.assert_allclose(est.members.mean(axis=1), model.norm_.loc.mean(), atol=1e-9)
    np.testing.assert_array_equal(est.mean, raw.mean(axis=0))  # the mean stays raw


def test_a_constant_on_one_head_changes_no_pick(multihead, synthetic_pairs: Pairs):
    model, pairs = multihead
    pool_pairs = synthetic_pairs(12, seed=5)
    prompts = [p.prompt for p in pool_pairs for _ in range(2)]
    texts = [t for p in pool_pairs for t in (p.chosen, p.rejected)]
    # pools of 4 candidates: two pairs each
    want = {
        a.label(): a.apply(model.score(prompts, texts)).reshape(6, 4).argmax(1)
        for a in CONSERVATIVE
    }
    heads = model.network_.heads
    before = heads.bias.detach().clone()
    try:
        with torch.no_grad():
            heads.bias[1] -= 50.0
        model._fit_norm(pairs)
        est = model.score(prompts, texts)
        for a in CONSERVATIVE:
            np.testing.assert_array_equal(a.apply(est).reshape(6, 4).argmax(1), want[a.label()])
    finally:
        with torch.no_grad():
            heads.bias.copy_(before)
        model._fit_norm(pairs)


def test_save_load_keeps_the_norm_and_an_old_folder_scores_raw(multihead, tmp_path):
    model, pairs = multihead
    prompts, texts = items(pairs[:6])
    folder = model.save(tmp_path / "rm")
    loaded = FinetunedRewardModel.load(folder)
    assert loaded.config.member_norm is MemberNormKind.STANDARDIZE
    np.testing.assert_array_equal(loaded.norm_.loc, model.norm_.loc)
    np.testing.assert_allclose(
        loaded.score(prompts, texts).members, model.score(prompts, texts).members, atol=1e-6
    )
    # As a version without member normalisation wrote it: no key, no tensors.
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["finetune"]["member_norm"]
    (folder / "config.json").write_text(json.dumps(cfg))
    weights = load_file(folder / "weights.safetensors")
    save_file(
        {k: v for k, v in weights.items() if not k.startswith("member_norm.")},
        folder / "weights.safetensors",
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in ("config.json", "weights.safetensors"):
        data = (folder / name).read_bytes()
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    old = FinetunedRewardModel.load(folder)
    assert old.norm_ is None and old.config.member_norm is MemberNormKind.NONE
    np.testing.assert_allclose(
        old.score(prompts, texts).members, raw_members(model, prompts, texts), atol=1e-6
    )


def test_member_norm_none_keeps_raw_members(tiny_qwen2: Path, synthetic_pairs: Pairs):
    config = FinetuneConfig(
        backbone=str(tiny_qwen2),
        ensemble="multihead",
        n_members=2,
        max_steps=1,
        member_norm="none",
        **BASE,
    )
    model = FinetunedRewardModel(config).fit(synthetic_pairs(8, seed=1))
    assert model.norm_ is None
    est = model.score(["q"], ["a"])
    np.testing.assert_allclose(est.mean, est.members.mean(axis=0), rtol=1e-12)
