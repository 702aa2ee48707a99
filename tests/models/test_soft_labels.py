"""Soft labels: the loss, loading, fingerprint, the audit's soft action, training to a
known probability, and the families that refuse them."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from rewardhedge.config import EncoderConfig, EnsembleConfig, TrainConfig
from rewardhedge.data import load_pairs
from rewardhedge.data.fingerprint import hash_pairs
from rewardhedge.errors import DataError
from rewardhedge.evaluate.audit import apply_action, flip_pair
from rewardhedge.models.losses import bradley_terry_loss
from rewardhedge.train.head_training import fit_head_stack
from rewardhedge.train.pair_targets import PairTargets
from rewardhedge.types import PreferencePair


def test_soft_loss_is_the_cross_entropy_least_at_the_labels_logit():
    s = torch.tensor([1.0, 0.5, 0.8])
    zero = torch.zeros(1, 3)
    loss = bradley_terry_loss(zero, zero, soft_label=s)
    assert float(loss[0]) == pytest.approx(math.log(2.0))  # every pair at Δ = 0
    hard = torch.tensor([[0.3, -1.0, 2.0]])
    assert torch.equal(
        bradley_terry_loss(hard, zero, soft_label=torch.ones(3)), bradley_terry_loss(hard, zero)
    )
    d = torch.tensor([[math.log(0.8 / 0.2)]], requires_grad=True)
    bradley_terry_loss(d, torch.zeros(1, 1), soft_label=torch.tensor([0.8]))[0].backward()
    assert abs(float(d.grad)) < 1e-6


def test_a_head_fitted_on_one_soft_label_learns_that_probability():
    rng = np.random.default_rng(0)
    xc = rng.normal(size=(200, 4)) + np.array([1.0, 0, 0, 0])
    xr = xc - np.array([1.0, 0, 0, 0])  # every pair differs by the same feature step
    config = EnsembleConfig(
        n_members=1, train=TrainConfig(epochs=400, lr=0.05, l2=0.0, val_fraction=0.0)
    )
    targets = PairTargets(soft_label=np.full(200, 0.7))
    heads = fit_head_stack(xc, xr, config, targets=targets).heads
    with torch.no_grad():
        diff = heads(torch.as_tensor(xc).float()) - heads(torch.as_tensor(xr).float())
    prob = torch.sigmoid(diff).mean().item()
    assert prob == pytest.approx(0.7, abs=0.01)


def test_loader_reads_soft_labels_and_names_bad_ones(tmp_path):
    good = tmp_path / "good.jsonl"
    rows = [{"prompt": "q", "chosen": "a", "rejected": "b", "soft_label": 0.25},
            {"prompt": "q", "chosen": "c", "rejected": "d"}]  # fmt: skip
    good.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs, _ = load_pairs(good)
    assert [p.soft_label for p in pairs] == [0.25, None]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b", "soft_label": 1.5}))
    with pytest.raises(DataError, match=r"bad.jsonl:1: .*soft_label.*probability in \[0, 1\]"):
        load_pairs(bad)


def test_fingerprint_counts_soft_labels_and_keeps_old_hashes():
    plain = [PreferencePair("q", "a", "b")]
    # The hash of a plain pair, as written before soft labels and ratings existed.
    assert hash_pairs(plain) == (
        "sha256:2b3cdf0091f229be92008919dd5fb7ac26748bfefeaa78b6afa7af50be9ffc8c"
    )
    assert hash_pairs([PreferencePair("q", "a", "b", soft_label=0.6)]) != hash_pairs(plain)


def test_soft_action_and_flip_keep_the_label_probability_consistent():
    pairs = [PreferencePair("q", "a", "b", margin=1.0), PreferencePair("q", "c", "d")]
    soft = apply_action(pairs, [True, False], "soft", np.array([0.3, 0.9]))
    assert soft[0].soft_label == 0.3 and soft[0].margin is None
    assert soft[1] == pairs[1]
    assert flip_pair(soft[0]).soft_label == pytest.approx(0.7)
    with pytest.raises(ValueError, match="needs prob"):
        apply_action(pairs, [True, False], "soft")


def test_families_that_read_hard_labels_refuse_soft_ones(pair_factory):
    from rewardhedge.estimators.general_preference import GeneralPreferenceModel
    from rewardhedge.models.general_preference import GPMConfig

    pairs = pair_factory(12)
    pairs[2] = PreferencePair(
        pairs[2].prompt, pairs[2].chosen, pairs[2].rejected, soft_label=0.4, id="x"
    )
    model = GeneralPreferenceModel(GPMConfig(encoder=EncoderConfig(kind="hashing", dim=16)))
    with pytest.raises(DataError, match=re.escape("1 of the 12 pairs carry a soft_label (e.g. x)")):
        model.fit(pairs)
