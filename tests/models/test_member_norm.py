"""Per-member normalisation: a member's arbitrary offset must not decide any pick."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from rewardhedge import cli
from rewardhedge.config import (
    EncoderConfig,
    EnsembleConfig,
    HeadConfig,
    MemberNormKind,
    TrainConfig,
    UncertaintyConfig,
)
from rewardhedge.errors import ConfigError, ModelFormatError
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.models.member_norm import MemberNorm, normalised_estimate
from rewardhedge.train.fitting import cross_fit
from rewardhedge.uncertainty.aggregation import Aggregation

CONSERVATIVE = [
    Aggregation("wco"),
    Aggregation("uwo", lam=0.5),
    Aggregation("lcb", beta=1.0),
    Aggregation("brme", lam=0.5),
    Aggregation("softmin", beta=0.5),
]
WORDS = ["correct", "accurate", "helpful", "wrong", "rude", "vague", "maybe", "long", "short"]
P, N = 12, 6


def config(norm="standardize", estimator="ensemble", kind="linear", k=4) -> EnsembleConfig:
    return EnsembleConfig(
        n_members=k,
        head=HeadConfig(kind=kind, hidden=8),
        encoder=EncoderConfig(kind="hashing", dim=64),
        train=TrainConfig(lr=1e-2, l2=0.0, epochs=40),
        uncertainty=UncertaintyConfig(
            estimator=estimator, calibration_folds=0, mc_samples=4, laplace_samples=4
        ),
        member_norm=norm,
    )


def pools() -> tuple[list[str], list[str]]:
    """`P` prompts with `N` candidates each, flattened prompt-major."""
    rng = np.random.default_rng(1)
    prompts, texts = [], []
    for p in range(P):
        for _ in range(N):
            words = rng.choice(WORDS, size=int(rng.integers(1, 4)))
            prompts.append(f"question {p} about item {p * 7}")
            texts.append(f"the answer is {' '.join(words)} for question {p}")
    return prompts, texts


def picks(model: EnsembleRewardModel) -> dict[str, np.ndarray]:
    est = model.score(*pools())
    return {a.label(): a.apply(est).reshape(P, N).argmax(axis=1) for a in CONSERVATIVE}


def training_features(model: EnsembleRewardModel, pairs) -> torch.Tensor:
    prompts = [p.prompt for p in pairs]
    texts = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    return torch.from_numpy(model._features(prompts + prompts, texts, False))


def last_layer(model: EnsembleRewardModel) -> tuple[torch.Tensor, torch.Tensor]:
    heads = model.heads_.heads
    return (heads.weight, heads.bias) if hasattr(heads, "weight") else (heads.w2, heads.b2)


def transform_member(model, pairs, j: int, *, shift=0.0, factor=1.0) -> None:
    """Member ``j``'s reward becomes ``factor · r_j + shift``; the norm is refitted as
    ``fit`` fits it (on both sides of every training pair)."""
    weight, bias = last_layer(model)
    with torch.no_grad():
        weight[j] *= factor
        bias[j] = bias[j] * factor + shift
    model.heads_.fit_norm(training_features(model, pairs), model.config.member_norm)


@pytest.fixture(scope="module")
def train_pairs(pair_factory):
    return pair_factory(40)


@pytest.mark.parametrize(
    ("estimator", "kind"),
    [("ensemble", "linear"), ("ensemble", "mlp"), ("mc_dropout", "linear"), ("laplace", "linear")],
)
def test_a_constant_added_to_one_member_changes_no_pick(train_pairs, estimator, kind):
    model = EnsembleRewardModel(config(estimator=estimator, kind=kind)).fit(train_pairs)
    before = model.score(*pools())
    want = picks(model)
    c = -100.0 * float(model.heads_.norm.scale.max())  # far beyond every member's spread
    transform_member(model, train_pairs, j=1, shift=c)
    after = model.score(*pools())
    got = picks(model)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    # Every normalised member moves by c/K (up to the heads' float32 rounding), so every
    # aggregation moves by one constant and the spread stays.
    k = model.config.n_members
    np.testing.assert_allclose(after.members - before.members, c / k, rtol=1e-3)
    np.testing.assert_allclose(after.epistemic, before.epistemic, rtol=1e-3, atol=1e-6)


def test_without_normalisation_the_same_constant_changes_picks(train_pairs):
    """The control: the test above can fail. Raw members let the offset pick the 'worst'."""
    model = EnsembleRewardModel(config(norm="none")).fit(train_pairs)
    assert model.heads_.norm is None
    want = picks(model)
    spread = float(model.score(*pools()).members.std())
    transform_member(model, train_pairs, j=1, shift=-100.0 * spread)
    got = picks(model)
    changed = {name for name in want if not np.array_equal(got[name], want[name])}
    assert changed, "a large offset on one raw member should change some pick"


def test_positive_rescaling_of_one_member_changes_no_scale_free_pick(train_pairs):
    """Standardised members are z-scores, so scaling one member by a > 0 leaves them, up
    to one positive affine map of the whole ensemble (its mean scale changes), as they
    were. Picks of the aggregations that commute with such a map (min, LCB, BRME) are
    unchanged; UWO's λ and the soft-min's β are in reward units, so they are not."""
    model = EnsembleRewardModel(config()).fit(train_pairs)
    norm = model.heads_.norm
    before = model.score(*pools()).members
    want = picks(model)
    transform_member(model, train_pairs, j=2, factor=7.0)
    after = model.score(*pools()).members
    new = model.heads_.norm
    z = lambda m, nm: (m - nm.loc.mean()) / nm.scale.mean()  # noqa: E731
    np.testing.assert_allclose(z(after, new), z(before, norm), rtol=1e-6, atol=1e-6)
    got = picks(model)
    for agg in (Aggregation("wco"), Aggregation("lcb", beta=1.0), Aggregation("brme", lam=0.5)):
        np.testing.assert_array_equal(got[agg.label()], want[agg.label()])


def test_mean_aggregation_is_identical_with_and_without_normalisation(train_pairs):
    prompts, texts = pools()
    models = {
        kind: EnsembleRewardModel(config(norm=kind)).fit(train_pairs)
        for kind in ("standardize", "center", "none")
    }
    est = {kind: m.score(prompts, texts) for kind, m in models.items()}
    mean = Aggregation("mean")
    for kind in ("standardize", "center"):
        np.testing.assert_array_equal(est[kind].mean, est["none"].mean)
        np.testing.assert_array_equal(mean.apply(est[kind]), est["none"].mean)
        np.testing.assert_array_equal(
            models[kind].reward(prompts, texts), models["none"].reward(prompts, texts)
        )
    # ...while the members really were normalised
    assert not np.allclose(est["standardize"].epistemic, est["none"].epistemic)
    # Centring leaves every difference between two items of one member alone, so
    # pairwise probabilities do not change.
    np.testing.assert_allclose(
        models["center"].compare(train_pairs).prob,
        models["none"].compare(train_pairs).prob,
        rtol=1e-9,
    )


def test_save_and_load_keep_the_norm_and_the_scores(train_pairs, tmp_path):
    for kind in ("standardize", "center"):
        model = EnsembleRewardModel(config(norm=kind, estimator="laplace")).fit(train_pairs)
        loaded = EnsembleRewardModel.load(model.save(tmp_path / kind))
        assert loaded.config.member_norm is MemberNormKind(kind)
        np.testing.assert_array_equal(loaded.heads_.norm.loc, model.heads_.norm.loc)
        np.testing.assert_array_equal(loaded.heads_.norm.scale, model.heads_.norm.scale)
        a, b = model.score(*pools()), loaded.score(*pools())
        for field in ("mean", "epistemic", "aleatoric", "members"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    weights = load_file(tmp_path / "center" / "weights.safetensors")
    assert torch.all(weights["member_norm.scale"] == 1.0)


def _rewrite(folder, *, config_fn, weights_fn) -> None:
    """Edit a saved folder as an older version would have written it (manifest updated)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    cfg = config_fn(json.loads((folder / "config.json").read_text()))
    (folder / "config.json").write_text(json.dumps(cfg))
    save_file(weights_fn(load_file(folder / "weights.safetensors")), folder / "weights.safetensors")
    for name in ("config.json", "weights.safetensors"):
        data = (folder / name).read_bytes()
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _without_norm_key(cfg):
    del cfg["ensemble"]["member_norm"]
    return cfg


def _without_norm_tensors(w):
    return {k: v for k, v in w.items() if not k.startswith("member_norm.")}


def test_a_folder_saved_before_normalisation_scores_exactly_as_before(train_pairs, tmp_path):
    raw = EnsembleRewardModel(config(norm="none")).fit(train_pairs)
    model = EnsembleRewardModel(config()).fit(train_pairs)  # the same heads, plus a norm
    folder = model.save(tmp_path / "old")
    _rewrite(folder, config_fn=_without_norm_key, weights_fn=_without_norm_tensors)
    old = EnsembleRewardModel.load(folder)
    assert old.heads_.norm is None and old.config.member_norm is MemberNormKind.NONE
    a, b = raw.score(*pools()), old.score(*pools())
    for field in ("mean", "epistemic", "aleatoric", "members"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_a_config_that_disagrees_with_the_weights_is_refused(train_pairs, tmp_path):
    folder = EnsembleRewardModel(config()).fit(train_pairs).save(tmp_path / "rm")
    _rewrite(folder, config_fn=lambda c: c, weights_fn=_without_norm_tensors)
    with pytest.raises(ModelFormatError, match=r"member_norm is 'standardize' but"):
        EnsembleRewardModel.load(folder)


def test_each_cross_fitted_fold_is_normalised_on_its_own_training_items(train_pairs):
    model = EnsembleRewardModel(config())
    feats = training_features(model, train_pairs).numpy()
    n = len(train_pairs)
    held = cross_fit(feats[:n], feats[n:], model.config, folds=2)
    for f, fold_model in enumerate(held.models):
        keep = held.fold != f
        x = torch.from_numpy(np.concatenate([feats[:n][keep], feats[n:][keep]]))
        fold_model_norm = fold_model.norm
        fold_model.norm = None
        raw = fold_model.predict(x).members
        fold_model.norm = fold_model_norm
        np.testing.assert_allclose(fold_model_norm.loc, raw.mean(axis=1), rtol=1e-12)
        np.testing.assert_allclose(fold_model_norm.scale, raw.std(axis=1), rtol=1e-12)


def test_member_norm_flag_reaches_the_config_and_a_bad_value_names_it(tmp_path, capsys):
    from rewardhedge.cli.train import TRAIN_FLAGS

    center = TRAIN_FLAGS.config(None, {"member_norm": "center"})
    assert center.member_norm is MemberNormKind.CENTER
    assert TRAIN_FLAGS.config(None, {}).member_norm is MemberNormKind.STANDARDIZE
    (tmp_path / "pairs.jsonl").write_text(
        json.dumps({"prompt": "q", "chosen": "good", "rejected": "bad"}) + "\n"
    )
    code = cli.main(
        [
            "train",
            "--data",
            str(tmp_path / "pairs.jsonl"),
            "--out",
            str(tmp_path / "rm"),
            "--member-norm",
            "nonsense",
        ]
    )
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--member-norm: ensemble.member_norm == 'nonsense', must be one of" in err
    with pytest.raises(ConfigError, match=r"ensemble\.member_norm == 'standardise'.*'standardize'"):
        replace(EnsembleConfig(), member_norm="standardise")


# -- MemberNorm on its own -------------------------------------------------------------


@st.composite
def member_rewards(draw):
    k = draw(st.integers(1, 6))
    n = draw(st.integers(3, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    offsets = rng.normal(scale=draw(st.sampled_from([0.1, 10.0, 1e3])), size=(k, 1))
    scales = np.exp(rng.normal(scale=1.5, size=(k, 1)))
    return offsets + scales * rng.normal(size=(k, n))


@settings(max_examples=60, deadline=None)
@given(member_rewards())
def test_standardised_members_share_the_mean_location_and_scale(r):
    norm = MemberNorm.fit(r, "standardize")
    out = norm.apply(r)
    np.testing.assert_allclose(out.mean(axis=1), norm.loc.mean(), atol=1e-9 * norm.scale.mean())
    np.testing.assert_allclose(out.std(axis=1), norm.scale.mean(), rtol=1e-9)
    np.testing.assert_allclose(norm.invert(out), r, rtol=1e-9, atol=1e-9 * np.abs(r).max())


@settings(max_examples=60, deadline=None)
@given(member_rewards(), st.floats(-1e3, 1e3), st.floats(1e-2, 1e2))
def test_an_affine_map_of_one_member_moves_the_ensemble_as_one(r, c, a):
    """After ``r_0 → a·r_0 + c`` and refitting, the standardised members are one
    positive affine map of the old ones (the same map for every member and item)."""
    old = MemberNorm.fit(r, "standardize")
    moved = r.copy()
    moved[0] = a * moved[0] + c
    new = MemberNorm.fit(moved, "standardize")
    z_old = (old.apply(r) - old.loc.mean()) / old.scale.mean()
    z_new = (new.apply(moved) - new.loc.mean()) / new.scale.mean()
    np.testing.assert_allclose(z_new, z_old, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(member_rewards())
def test_centred_members_share_the_mean_and_keep_their_spread(r):
    norm = MemberNorm.fit(r, "center")
    out = norm.apply(r)
    np.testing.assert_allclose(out.mean(axis=1), norm.loc.mean(), atol=1e-9 * np.abs(r).max())
    np.testing.assert_allclose(
        out - out.mean(axis=1, keepdims=True),
        r - r.mean(axis=1, keepdims=True),
        atol=1e-9 * np.abs(r).max(),
    )


def test_rows_of_one_head_share_its_norm_and_a_constant_head_is_only_centred():
    # 2 heads × 3 draws; head 1 is constant on the training items.
    r = np.array(
        [[0.0, 2.0], [1.0, 3.0], [2.0, 4.0], [5.0, 5.0], [5.0, 5.0], [5.0, 5.0]],
    )
    norm = MemberNorm.fit(r, "standardize", n_heads=2)
    np.testing.assert_allclose(norm.loc, [2.0, 5.0])
    np.testing.assert_allclose(norm.scale, [1.0, 1.0])  # head 1 borrows head 0's scale
    out = norm.apply(r)
    np.testing.assert_allclose(out[:3], r[:3] - 2.0 + 3.5)
    np.testing.assert_allclose(out[3:], 3.5)
    with pytest.raises(ValueError, match="do not split into 2 heads"):
        norm.apply(np.zeros((5, 2)))
    assert MemberNorm.fit(r, "none") is None


def test_estimate_keeps_the_raw_mean_and_normalises_the_rest():
    r = np.array([[0.0, 2.0, 4.0], [100.0, 104.0, 108.0]])
    norm = MemberNorm.fit(r, "standardize")
    est = normalised_estimate(r, norm, aleatoric=np.ones_like(r))
    np.testing.assert_array_equal(est.mean, r.mean(axis=0))
    np.testing.assert_allclose(est.epistemic, 0.0, atol=1e-12)  # the same member, shifted
    np.testing.assert_allclose(est.aleatoric, np.mean(norm.factors() ** 2))
    assert Aggregation("wco").apply(est).tolist() == pytest.approx(
        Aggregation("mean").apply(norm.apply(r)).tolist()
    )
