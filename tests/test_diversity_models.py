"""Diverse members end to end: every estimator trains with subspace and view masks,
the masks survive save/load, and folders saved before masks existed still load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rewardhedge.config import (
    DiversityConfig,
    EncoderConfig,
    EnsembleConfig,
    TrainConfig,
    UncertaintyConfig,
)
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.estimators.loading import load_reward_model
from rewardhedge.models.io import load_model_folder, save_model_folder

PROMPTS = ["q", "q", "another question", "what is it?"]
RESPONSES = ["the answer is correct", "the answer is wrong", "so so", "a clear precise answer"]


def config(kind: str, estimator: str = "ensemble", k: int = 3, **encoder) -> EnsembleConfig:
    return EnsembleConfig(
        n_members=k,
        encoder=EncoderConfig(**{"kind": "hashing", "dim": 32, **encoder}),
        train=TrainConfig(lr=1e-2, epochs=20),
        uncertainty=UncertaintyConfig(
            estimator=estimator, mc_samples=4, laplace_samples=4, calibration_folds=0
        ),
        diversity=DiversityConfig(kind=kind, subspace_fraction=0.5),
    )


def assert_same_scores(a, b) -> None:
    ea, eb = a.score(PROMPTS, RESPONSES), b.score(PROMPTS, RESPONSES)
    np.testing.assert_array_equal(ea.members, eb.members)
    np.testing.assert_array_equal(ea.epistemic, eb.epistemic)
    np.testing.assert_array_equal(ea.aleatoric, eb.aleatoric)


@pytest.mark.parametrize("estimator", ["ensemble", "mc_dropout", "gaussian", "laplace"])
@pytest.mark.parametrize("kind", ["subspace", "views"])
def test_every_estimator_trains_masked_members_and_round_trips(
    tmp_path, pair_factory, kind, estimator
):
    model = EnsembleRewardModel(config(kind, estimator)).fit(pair_factory(40))
    mask = model.heads_.heads.member_mask
    if kind == "subspace":
        assert mask.shape == (3, 32) and torch.all(mask.sum(1) == 16)
    else:  # hashing views: member k sees view k (hash, hash_bigram, hash_char), 32 wide each
        assert mask.shape == (3, 96)
        for member in range(3):
            assert torch.equal(
                torch.nonzero(mask[member]).flatten(), torch.arange(32) + 32 * member
            )
    assert len({tuple(m.tolist()) for m in mask}) == 3
    est = model.score(PROMPTS, RESPONSES)
    assert est.members.shape[0] == model.heads_.n_outputs and est.mean[0] > est.mean[1]
    saved = json.loads((model.save(tmp_path / "rm") / "config.json").read_text())
    assert saved["ensemble"]["diversity"] == {"kind": kind, "subspace_fraction": 0.5}
    loaded = load_reward_model(tmp_path / "rm")
    assert torch.equal(loaded.heads_.heads.member_mask, mask)
    assert loaded.config == model.config
    assert_same_scores(model, loaded)


def old_folder(src, dest) -> None:
    """``src`` rewritten as a folder saved before diversity: no ``diversity``,
    ``encoder.views`` or ``encoder.max_windows`` keys, no ``member_mask`` tensor."""
    cfg, tensors, manifest = load_model_folder(src)
    del cfg["ensemble"]["diversity"]
    del cfg["ensemble"]["encoder"]["views"]
    del cfg["ensemble"]["encoder"]["max_windows"]
    del tensors["member_mask"]
    info = {k: manifest[k] for k in ("encoder_id", "training_data_hash", "n_members", "estimator")}
    save_model_folder(
        dest, model_class=manifest["model_class"], config=cfg, tensors=tensors, info=info
    )


@pytest.mark.parametrize("estimator", ["ensemble", "laplace"])
def test_a_folder_saved_before_diversity_loads_and_scores_identically(
    tmp_path, pair_factory, estimator
):
    model = EnsembleRewardModel(config("bootstrap", estimator)).fit(pair_factory(40))
    model.save(tmp_path / "new")
    old_folder(tmp_path / "new", tmp_path / "old")
    cfg, tensors, _ = load_model_folder(tmp_path / "old")
    assert "diversity" not in cfg["ensemble"] and "member_mask" not in tensors
    loaded = load_reward_model(tmp_path / "old")
    assert loaded.config.diversity == DiversityConfig() and loaded.config.encoder.views == ()
    assert torch.equal(loaded.heads_.heads.member_mask, torch.ones(3, 32))
    assert_same_scores(model, loaded)


def test_unsupported_member_counts_fail_naming_the_fields():
    with pytest.raises(ConfigError, match=r"diversity\.kind == 'subspace' needs ensemble\.n_m"):
        config("subspace", k=1)
    with pytest.raises(ConfigError, match=r"the views hash_char would be encoded and never read"):
        config("views", k=2)
    assert config("views", k=2, views=("hash", "hash_char")).encoder.views == ("hash", "hash_char")
    assert config("bootstrap", k=1).n_members == 1


@pytest.mark.hf
@pytest.mark.parametrize("kind", ["subspace", "views"])
def test_minilm_default_encoder_with_diverse_members_round_trips(tmp_path, pair_factory, kind):
    cfg = EnsembleConfig(
        n_members=5,
        train=TrainConfig(epochs=5),
        uncertainty=UncertaintyConfig(calibration_folds=0),
        diversity=DiversityConfig(kind=kind),
    )
    assert cfg.encoder.kind == "minilm"
    model = EnsembleRewardModel(cfg, cache_dir=tmp_path / "cache").fit(pair_factory(8))
    dim = model.heads_.heads.dim
    if kind == "subspace":
        assert dim == 768  # the default dual pooling, half of it per member
        assert torch.all(model.heads_.heads.member_mask.sum(1) == 384)
    else:
        assert dim == 4 * 384 + 256 and ":views=ctx_l4+ctx_last+ctx_low+all_mean+hash" in (
            model.encoder_id_
        )
    model.save(tmp_path / "rm")
    cold = load_reward_model(tmp_path / "rm", cache_dir=tmp_path / "other-cache")
    warm = load_reward_model(tmp_path / "rm", cache_dir=tmp_path / "cache")
    assert_same_scores(model, cold)
    assert_same_scores(model, warm)
