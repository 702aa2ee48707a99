"""EnsembleRewardModel: the fit / score / compare / evaluate / save / load lifecycle."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from rewardhedge.config import EncoderConfig, EnsembleConfig, TrainConfig
from rewardhedge.errors import ConfigError, ModelFormatError, NotFittedError
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.types import RewardEstimate, RewardModel


def hashing_config(k=3, dim=64, **train) -> EnsembleConfig:
    train = {"lr": 1e-2, "l2": 0.0, **train}
    return EnsembleConfig(
        n_members=k, encoder=EncoderConfig(kind="hashing", dim=dim), train=TrainConfig(**train)
    )


@pytest.fixture(scope="module")
def fitted(pair_factory) -> EnsembleRewardModel:
    return EnsembleRewardModel(hashing_config()).fit(pair_factory(60))


def test_fit_returns_self_and_sets_fitted_state(tiny_pairs):
    model = EnsembleRewardModel(hashing_config())
    assert model.fit(tiny_pairs) is model
    assert model.n_pairs_ == 20 and model.heads_.heads.n_members == 3
    assert model.data_hash_.startswith("sha256:")
    assert isinstance(model, RewardModel)


def test_score_before_fit_raises_exact_message():
    model = EnsembleRewardModel(hashing_config())
    with pytest.raises(NotFittedError) as info:
        model.score(["p"], ["r"])
    assert str(info.value) == (
        "This EnsembleRewardModel instance is not fitted yet. Call 'fit' before 'score'."
    )


def test_scores_shapes_and_ensemble_statistics(fitted):
    est = fitted.score(["q", "q", "q"], ["the answer is correct", "the answer is wrong", "x"])
    assert isinstance(est, RewardEstimate)
    assert est.members.shape == (3, 3) and est.mean.dtype == np.float64
    # members are standardised per member (the default); mean is the raw members' mean
    raw = fitted.heads_.norm.invert(est.members)
    np.testing.assert_allclose(est.mean, raw.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(est.epistemic, est.members.var(axis=0), rtol=1e-12)
    assert np.all(est.aleatoric == 0)
    assert est.mean[0] > est.mean[1]
    # bootstrap members differ
    assert np.ptp(est.members, axis=0).max() > 0


def test_compare_probabilities_are_member_means(fitted, tiny_pairs):
    pw = fitted.compare(tiny_pairs)
    assert pw.members.shape == (3, 20)
    np.testing.assert_allclose(pw.prob, pw.members.mean(axis=0), rtol=1e-12)
    assert np.all((pw.prob > 0) & (pw.prob < 1))
    assert pw.prob.mean() > 0.8  # the planted good/bad word decides every tiny pair


def test_evaluate_reports_accuracy_with_ci(fitted, pair_factory):
    metrics = fitted.evaluate(pair_factory(40, seed=7), reps=200)
    assert metrics["pairwise_accuracy"] > 0.9
    assert metrics["accuracy_ci_low"] <= metrics["pairwise_accuracy"] <= metrics["accuracy_ci_high"]
    assert set(metrics["subsets"]) == {"even", "odd"}
    json.dumps(metrics)


def test_same_seed_is_deterministic(tiny_pairs):
    a = EnsembleRewardModel(hashing_config()).fit(tiny_pairs).score(["q"], ["the answer is clear"])
    b = EnsembleRewardModel(hashing_config()).fit(tiny_pairs).score(["q"], ["the answer is clear"])
    np.testing.assert_array_equal(a.members, b.members)


def test_save_load_gives_identical_scores(fitted, tmp_path):
    fitted.save(tmp_path / "rm")
    loaded = EnsembleRewardModel.load(tmp_path / "rm")
    texts = ["the answer is precise", "the answer is rude", "unrelated words"]
    np.testing.assert_array_equal(
        loaded.score(["q"] * 3, texts).members, fitted.score(["q"] * 3, texts).members
    )
    manifest = json.loads((tmp_path / "rm" / "manifest.json").read_text())
    assert manifest["encoder_id"] == fitted.encoder.id
    assert manifest["training_data_hash"] == fitted.data_hash_


def test_load_refuses_a_model_from_another_encoder(fitted, tmp_path):
    fitted.save(tmp_path / "rm")
    from rewardhedge.encoders import build_encoder

    other = build_encoder(EncoderConfig(kind="hashing", dim=32))
    with pytest.raises(ModelFormatError, match="was trained on encoder"):
        EnsembleRewardModel.load(tmp_path / "rm", encoder=other)


def test_load_refuses_weights_that_do_not_match_config(fitted, tmp_path):
    fitted.save(tmp_path / "rm")
    config = json.loads((tmp_path / "rm" / "config.json").read_text())
    config["fitted"]["dim"] = 7
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    (tmp_path / "rm" / "config.json").write_text(text)
    # the manifest's hash now refuses the edited file before shapes are even compared
    with pytest.raises(ModelFormatError, match=r"config\.json"):
        EnsembleRewardModel.load(tmp_path / "rm")


def test_input_validation(fitted):
    with pytest.raises(ValueError, match="differ in length: 2 vs 1"):
        fitted.score(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="at least one PreferencePair"):
        EnsembleRewardModel(hashing_config()).fit([])
    with pytest.raises(TypeError, match="item 0 is dict"):
        EnsembleRewardModel(hashing_config()).fit([{"prompt": "p"}])


def test_margins_are_used(tiny_pairs):
    from dataclasses import replace

    big = [replace(p, margin=3.0) for p in tiny_pairs]
    plain = EnsembleRewardModel(hashing_config(k=1, val_fraction=0.0, epochs=100)).fit(tiny_pairs)
    wide = EnsembleRewardModel(hashing_config(k=1, val_fraction=0.0, epochs=100)).fit(big)
    gap = lambda m: float(np.mean(m.compare(tiny_pairs).margin))  # noqa: E731
    assert gap(wide) > gap(plain)


def test_evaluate_reports_calibration_uncertainty_and_abstention(pair_factory):
    tiny_pairs = pair_factory(60)
    cfg = EnsembleConfig(n_members=3, encoder=EncoderConfig(kind="hashing", dim=64))
    model = EnsembleRewardModel(cfg).fit(tiny_pairs)
    plain = model.evaluate(tiny_pairs, reps=200)
    assert set(plain["uncertainty"]) == {
        "prob_entropy",
        "member_std",
        "mutual_information",
        "margin_abs_inverse",
        "epistemic_sum",
    }
    assert 0.0 <= plain["calibration"]["ece_equal_width"] <= 1.0
    assert "abstention" not in plain

    m = model.evaluate(tiny_pairs, reps=200, abstain_alpha=0.5, abstain_delta=0.2)
    ab = m["abstention"]
    half = len(tiny_pairs) - len(tiny_pairs) // 2
    assert m["n_pairs"] == half and ab["test"]["n"] == half  # metrics are on the test half only
    assert ab["calibration_source"] == "half of the evaluation pairs"
    assert ab["alpha"] == 0.5 and ab["uncertainty"] == "prob_entropy"
    assert 0.0 <= ab["test"]["coverage"] <= 1.0
    # A calibration file instead of the split: every given pair is then a test pair.
    m2 = model.evaluate(
        tiny_pairs[:20], reps=200, abstain_alpha=0.5, calibration_pairs=tiny_pairs[20:]
    )
    assert m2["n_pairs"] == 20 and m2["abstention"]["calibration_source"] == "file"
    with pytest.raises(ConfigError, match="abstain_on"):
        model.evaluate(tiny_pairs, abstain_alpha=0.5, abstain_on="vibes")


@pytest.mark.parametrize(
    "uncertainty",
    [
        {"estimator": "ensemble"},
        {"estimator": "ensemble", "error_predictor": True},
        {"estimator": "mc_dropout", "mc_samples": 6},
        {"estimator": "gaussian"},
        {"estimator": "laplace", "laplace_samples": 6},
    ],
    ids=["ensemble", "deup", "mc_dropout", "gaussian", "laplace"],
)
def test_every_estimator_round_trips_to_identical_outputs(tmp_path, pair_factory, uncertainty):
    from rewardhedge.config import UncertaintyConfig
    from rewardhedge.uncertainty.reward_rule import RewardRule

    cfg = replace(
        hashing_config(k=2),
        uncertainty=UncertaintyConfig(calibration_folds=2, **uncertainty),
    )
    rule = RewardRule.parse("uwo", lam=0.25, transform="centered_logsigmoid")
    model = EnsembleRewardModel(cfg, rule=rule).fit(pair_factory(60))
    model.save(tmp_path / "rm")
    again = EnsembleRewardModel.load(tmp_path / "rm")
    assert again.rule == rule and again.temperature == model.temperature
    prompts, texts = ["q", "q", "r"], ["the answer is correct", "the answer is wrong", "x y"]
    a, b = model.score(prompts, texts), again.score(prompts, texts)
    for name in ("mean", "epistemic", "aleatoric", "members"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(model.reward(prompts, texts), again.reward(prompts, texts))
    pairs = pair_factory(10, seed=5)
    np.testing.assert_array_equal(model.compare(pairs).prob, again.compare(pairs).prob)
    if uncertainty.get("error_predictor"):
        assert again.error_predictor_ is not None and np.all(a.epistemic >= 0)
    if uncertainty["estimator"] == "gaussian":
        assert np.all(a.aleatoric > 0)


def test_temperature_is_fitted_on_held_out_predictions_and_softens_noisy_labels(pair_factory):
    """With 30% of labels flipped, a model fitted to low training loss is overconfident on
    held-out pairs, so the cross-fitted temperature must exceed 1; compare applies it."""
    from rewardhedge.config import UncertaintyConfig
    from rewardhedge.types import PreferencePair, member_logits, sigmoid

    rng = np.random.default_rng(0)
    pairs = [
        PreferencePair(p.prompt, p.rejected, p.chosen) if rng.random() < 0.3 else p
        for p in pair_factory(200)
    ]
    cfg = replace(
        hashing_config(k=3, val_fraction=0.0, epochs=150),
        uncertainty=UncertaintyConfig(calibration_folds=4),
    )
    model = EnsembleRewardModel(cfg).fit(pairs)
    assert model.temperature > 1.2
    pw = model.compare(pairs[:20])
    logits = member_logits(pw.chosen, pw.rejected)
    np.testing.assert_allclose(pw.prob, sigmoid(logits / model.temperature).mean(0), rtol=1e-12)
    np.testing.assert_allclose(pw.raw_prob, sigmoid(logits).mean(0), rtol=1e-12)
    # T > 1 pulls every member's probability towards 1/2 (their mean need not follow
    # when members disagree in sign: σ's curvature differs on the two sides).
    assert np.all(np.abs(pw.members - 0.5) <= np.abs(sigmoid(logits) - 0.5))
