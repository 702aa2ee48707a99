"""Influence of training pairs on a test margin, against brute-force retraining.

The reference is the real trainer: the model is refitted 20 times, each time without one
training pair, on a setting where the trainer converges (hashing encoder, full batch,
no bootstrap, no early stopping, lr 0.1 for 200 epochs). Two members see different
feature subsets (``diversity=subspace``) and some pairs carry margins, so the per-member
path, the member masks and the margin offsets are all exercised.

Thresholds, and why chance cannot meet them (checked in the tests with 2,000 shuffles
of the predictions): Spearman ≥ 0.9 over 20 pairs (shuffled predictions reach at most
≈ 0.75; the 99th percentile is ≈ 0.5); at least 2 of the top 3 helping and 2 of the top 3
hurting pairs agree (chance: ≈ 0.05 per list, ≈ 0.002 for both); the least-squares slope
of actual on predicted changes in [0.7, 1.5] (a wrong normalisation, e.g. a missing
1/n, is off by a factor of 20). The retraining tests are marked slow (21 fits, 5-10 s);
the exact derivative checks in tests/models/test_influence.py are the fast counterpart.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import spearmanr

from rewardhedge import EncoderConfig, EnsembleConfig, EnsembleRewardModel
from rewardhedge.config import DiversityConfig, HeadConfig, TrainConfig, UncertaintyConfig
from rewardhedge.errors import ConfigError, DataError, NotFittedError
from rewardhedge.estimators.influence import InfluenceResult, influence
from rewardhedge.train.head_training import fit_head_stack, training_split
from rewardhedge.types import PreferencePair

CONVERGED = EnsembleConfig(
    n_members=2,
    encoder=EncoderConfig(kind="hashing", dim=16),
    train=TrainConfig(epochs=200, lr=0.1, val_fraction=0.0, bootstrap=False),
    diversity=DiversityConfig(kind="subspace", subspace_fraction=0.75),
    uncertainty=UncertaintyConfig(calibration_folds=0),
    member_norm="none",
)


def member_margins(model: EnsembleRewardModel, pair: PreferencePair) -> np.ndarray:
    est = model.score([pair.prompt] * 2, [pair.chosen, pair.rejected])
    return est.members[:, 0] - est.members[:, 1]  # (K,) raw: member_norm is none


@pytest.fixture(scope="module")
def brute(pair_factory):
    """``(result, actual)``: predicted and retrained contributions, `(K, 20)` each."""
    pairs = [replace(p, margin=0.3) if i % 4 == 0 else p for i, p in enumerate(pair_factory(20, 1))]
    test = pair_factory(5, seed=7)[1]
    model = EnsembleRewardModel(CONVERGED).fit(pairs)
    result = influence(model, pairs, test)
    full = member_margins(model, test)
    actual = np.stack(
        [
            full
            - member_margins(EnsembleRewardModel(CONVERGED).fit(pairs[:i] + pairs[i + 1 :]), test)
            for i in range(len(pairs))
        ],
        axis=1,
    )
    return result, actual


def _top3(x: np.ndarray) -> tuple[set[int], set[int]]:
    order = np.argsort(-x)
    return set(order[:3].tolist()), set(order[-3:].tolist())


@pytest.mark.slow  # 21 fits: 5-10 s on 2 shared cores
def test_the_trainer_converged_so_the_comparison_is_fair(brute) -> None:
    result, _ = brute
    assert np.abs(result.unconverged).max() < 1e-3 * np.abs(result.influence).max()


@pytest.mark.slow  # 21 fits: 5-10 s on 2 shared cores
def test_influence_ranks_pairs_as_retraining_does(brute) -> None:
    result, actual = brute
    assert spearmanr(result.influence, actual.mean(0))[0] >= 0.9
    for k in range(actual.shape[0]):  # each member on its own
        assert spearmanr(result.members[k], actual[k])[0] >= 0.9
    rng = np.random.default_rng(0)
    shuffled = [
        spearmanr(rng.permutation(result.influence), actual.mean(0))[0] for _ in range(2000)
    ]
    assert max(shuffled) < 0.9  # the threshold is out of chance's reach


@pytest.mark.slow  # 21 fits: 5-10 s on 2 shared cores
def test_top_helping_and_hurting_pairs_agree_with_retraining(brute) -> None:
    result, actual = brute
    helping, hurting = _top3(actual.mean(0))
    top_help, top_hurt = result.top(3)
    assert len(helping & set(top_help.tolist())) >= 2
    assert len(hurting & set(top_hurt.tolist())) >= 2
    rng = np.random.default_rng(1)
    by_chance = 0
    for _ in range(2000):
        h, u = _top3(rng.permutation(result.influence))
        by_chance += len(helping & h) >= 2 and len(hurting & u) >= 2
    assert by_chance / 2000 < 0.01


@pytest.mark.slow  # 21 fits: 5-10 s on 2 shared cores
def test_magnitudes_match_up_to_the_first_order_error(brute) -> None:
    """First order under-predicts a little at 1/20 weight per pair (measured slope ≈ 1.15–1.3)."""
    result, actual = brute
    x, y = result.influence, actual.mean(0)
    assert 0.7 <= float(x @ y / (x @ x)) <= 1.5
    assert np.corrcoef(x, y)[0, 1] >= 0.95


def test_a_copy_of_the_test_pair_helps_and_its_flip_hurts(pair_factory) -> None:
    """Known answer: training on the test pair itself raises its margin through the loss,
    training on its flip lowers it; both move the feature scale identically (same items)."""
    test = pair_factory(5, seed=7)[2]
    flip = PreferencePair(test.prompt, test.rejected, test.chosen)
    pairs = [*pair_factory(20, 1), test, flip]
    config = replace(CONVERGED, n_members=1, diversity=DiversityConfig())
    model = EnsembleRewardModel(config).fit(pairs)
    result = influence(model, pairs, test)
    loss_part = result.members - result.scale_part
    assert loss_part[0, 20] > 0 > loss_part[0, 21]
    np.testing.assert_allclose(result.scale_part[0, 20], result.scale_part[0, 21], rtol=1e-9)
    assert result.influence[20] > 0 and result.influence[20] > result.influence[21]
    full = member_margins(model, test)[0]
    actual = [
        full - member_margins(EnsembleRewardModel(config).fit(pairs[:i] + pairs[i + 1 :]), test)[0]
        for i in (20, 21)
    ]
    assert actual[0] > 0 and actual[0] > actual[1]  # retraining agrees: the copy helps more


def test_training_split_is_what_the_trainer_used(rng) -> None:
    config = replace(CONVERGED, n_members=3, train=TrainConfig(epochs=1, val_fraction=0.2))
    xc, xr = rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
    fitted = fit_head_stack(xc, xr, config)
    train_idx, val_idx, weights = training_split(30, config)
    np.testing.assert_array_equal(train_idx, fitted.train_index)
    np.testing.assert_array_equal(weights, fitted.weights)
    assert len(val_idx) == fitted.n_val == 6


def test_bootstrap_and_early_stopping_are_what_each_member_minimised(pair_factory) -> None:
    pairs = pair_factory(20, 2)
    config = replace(CONVERGED, n_members=3, train=TrainConfig(epochs=20, val_fraction=0.2))
    model = EnsembleRewardModel(config).fit(pairs)
    result = influence(model, pairs, pair_factory(3, 9)[0])
    train_idx, val_idx, counts = training_split(20, config)
    assert not result.trained[val_idx].any() and result.trained[train_idx].all()
    assert np.all(result.members[:, val_idx] == 0)  # held out: used only to stop
    never_drawn = counts == 0  # (K, n_train): such a pair acts only through the scale
    loss_part = (result.members - result.scale_part)[:, train_idx]
    assert never_drawn.any() and np.all(loss_part[never_drawn] == 0)
    assert np.all(loss_part[~never_drawn] != 0)
    text = " ".join(result.notes)
    assert "early stopping" in text and "bootstrap" in text
    np.testing.assert_allclose(result.influence, result.members.mean(0))


def test_top_lists_the_strongest_pairs_of_each_sign() -> None:
    r = InfluenceResult(
        np.array([0.3, -0.1, 0.0, 0.5, -0.4]), np.array([[0.3, -0.1, 0.0, 0.5, 0.2]]),
        np.zeros((1, 5)), np.ones(5, bool), 1.0, np.ones(1), np.zeros(1),
    )  # fmt: skip
    helping, hurting = r.top(10)
    assert helping.tolist() == [3, 0] and hurting.tolist() == [4, 1]
    np.testing.assert_array_equal(r.agreement, [1, 1, 1, 1, 0])
    with pytest.raises(ConfigError, match=r"^top k == 0, must be an integer >= 1\.$"):
        r.top(0)


@pytest.fixture(scope="module")
def small(pair_factory):
    pairs = pair_factory(12, 3)
    config = replace(CONVERGED, train=TrainConfig(epochs=2, val_fraction=0.0))
    return pairs, config, EnsembleRewardModel(config).fit(pairs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"head": HeadConfig(kind="mlp")}, "influence needs linear heads, but this model's head.kind == 'mlp'"),
        ({"uncertainty": UncertaintyConfig(estimator="gaussian", calibration_folds=0)}, "uncertainty.estimator == 'gaussian'"),
        ({"uncertainty": UncertaintyConfig(estimator="mc_dropout", calibration_folds=0)}, "uncertainty.estimator == 'mc_dropout'"),
        ({"train": TrainConfig(epochs=2, weight_decay=0.01)}, "train.weight_decay == 0.01"),
        ({"train": TrainConfig(epochs=2, center_coef=0.1)}, "train.center_coef == 0.1"),
        ({"head": HeadConfig(length_head=True)}, "this model's head.length_head is on"),
    ],
)  # fmt: skip
def test_objectives_the_formula_does_not_cover_are_refused(small, change, message) -> None:
    pairs, config, _ = small
    model = EnsembleRewardModel(replace(config, **change)).fit(pairs)
    with pytest.raises(ConfigError, match=re.escape(message)):
        influence(model, pairs, pairs[0])


def test_rating_objectives_are_refused(small) -> None:
    pairs, config, _ = small
    rated = [replace(p, chosen_score=1.0, rejected_score=0.0) for p in pairs]
    regression = replace(config, train=replace(config.train, objective="bt_regression"))
    model = EnsembleRewardModel(regression).fit(rated)
    with pytest.raises(ConfigError, match=re.escape("train.objective == 'bt_regression'")):
        influence(model, rated, rated[0])


def test_laplace_heads_are_explained_like_the_ensemble(small) -> None:
    pairs, config, plain = small
    lap = replace(config, uncertainty=UncertaintyConfig(estimator="laplace", calibration_folds=0))
    got = influence(EnsembleRewardModel(lap).fit(pairs), pairs, pairs[0])
    np.testing.assert_allclose(got.members, influence(plain, pairs, pairs[0]).members, rtol=1e-6)


def test_wrong_inputs_give_one_clear_error(small) -> None:
    pairs, config, model = small
    with pytest.raises(
        DataError, match=r"^these 11 pairs are not the ones the model was trained on \(12 pairs"
    ):
        influence(model, pairs[:-1], pairs[0])
    swapped = [pairs[1], pairs[0], *pairs[2:]]
    with pytest.raises(DataError, match="not the ones the model was trained on"):
        influence(model, swapped, pairs[0])
    with pytest.raises(NotFittedError, match="Call 'fit' before 'influence'"):
        influence(EnsembleRewardModel(config), pairs, pairs[0])
    with pytest.raises(ConfigError, match=r"^damping == -1\.0, must be a finite number >= 0\.$"):
        influence(model, pairs, pairs[0], damping=-1.0)
    with pytest.raises(ConfigError, match="not object"):
        influence(object(), pairs, pairs[0])  # type: ignore[arg-type]
