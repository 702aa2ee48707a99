"""The general preference model (GPM): exact skew-symmetry, cyclic preferences that no
Bradley–Terry model can fit, parity with BT on transitive data, save/load, no scalar
reward, calibration, evaluation, and the conformance suite where it applies.

Everything runs on the 64-wide hashing encoder, so each fit takes about a second.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from rewardhedge.config import EncoderConfig, EnsembleConfig, TrainConfig, UncertaintyConfig
from rewardhedge.data.cyclic import move_of, rock_paper_scissors_pairs
from rewardhedge.errors import ConfigError, ModelFormatError, RewardHedgeError
from rewardhedge.estimators.base import RewardModelBase
from rewardhedge.estimators.checks import (
    CHECKS,
    ConformanceCase,
    check_not_fitted,
    check_temperature,
)
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.estimators.evaluation import (
    NO_SCALAR_REWARD,
    evaluate_one_to_many,
    evaluate_pairs,
    evaluate_pools,
)
from rewardhedge.estimators.general_preference import (
    GeneralPreferenceModel,
    NoScalarRewardError,
)
from rewardhedge.estimators.loading import load_reward_model
from rewardhedge.evaluate.pairwise import pairwise_correct
from rewardhedge.models.general_preference import GPMConfig, skew_score
from rewardhedge.train.general_preference import cross_fit_gpm
from rewardhedge.types import (
    CandidatePool,
    OneToManyRow,
    PairwiseEstimate,
    PreferencePair,
    RewardEstimate,
    member_logits,
)
from rewardhedge.uncertainty.calibration import TEMPERATURE_BOUNDS, TemperatureScaling

ENC = EncoderConfig(kind="hashing", dim=64)
CYCLIC_TRAIN = rock_paper_scissors_pairs(150, seed=0)
CYCLIC_TEST = rock_paper_scissors_pairs(60, seed=1)

WORDS = {"correct": 2.0, "helpful": 1.5, "clear": 1.0, "fine": 0.0, "vague": -1.0,
         "rude": -1.5, "wrong": -2.0}  # fmt: skip


def bt_word_pairs(n: int, seed: int) -> list[PreferencePair]:
    """Transitive data with label noise: the preferred 3-word answer is drawn from a
    Bradley–Terry model of the words' weights (BT is the true model here)."""
    rng = np.random.default_rng(seed)
    names = list(WORDS)
    pairs = []
    for i in range(n):
        a, b = (list(rng.choice(names, size=3)) for _ in range(2))
        gap = sum(WORDS[w] for w in a) - sum(WORDS[w] for w in b)
        text_a, text_b = "the answer is " + " ".join(a), "the answer is " + " ".join(b)
        if rng.random() >= 1.0 / (1.0 + np.exp(-gap)):
            text_a, text_b = text_b, text_a
        pairs.append(PreferencePair(f"question {seed}-{i}", text_a, text_b))
    return pairs


def gpm_config(seed: int = 0, **kw) -> GPMConfig:
    settings = {"n_members": 3, "calibration_folds": 0, "encoder": ENC, "seed": seed} | kw
    return GPMConfig(**settings)


def bt_model(seed: int = 0) -> EnsembleRewardModel:
    """The Bradley–Terry ensemble (library defaults) on the same features."""
    cfg = EnsembleConfig(
        n_members=3,
        encoder=ENC,
        train=TrainConfig(seed=seed),
        uncertainty=UncertaintyConfig(calibration_folds=0),
    )
    return EnsembleRewardModel(cfg)


def accuracy(est: PairwiseEstimate) -> float:
    return float(pairwise_correct(est.chosen.mean, est.rejected.mean).mean())


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cyclic_gpm(one_thread) -> GeneralPreferenceModel:
    return GeneralPreferenceModel(gpm_config()).fit(CYCLIC_TRAIN)


# -- (a) skew-symmetry ---------------------------------------------------------------------
def test_scores_are_exactly_skew_symmetric(cyclic_gpm: GeneralPreferenceModel) -> None:
    prompts = [p.prompt for p in CYCLIC_TEST]
    a, b = [p.chosen for p in CYCLIC_TEST], [p.rejected for p in CYCLIC_TEST]
    s_ab = cyclic_gpm.pair_logits(prompts, a, b)
    s_ba = cyclic_gpm.pair_logits(prompts, b, a)
    assert s_ab.shape == (3, len(CYCLIC_TEST)) and s_ab.dtype == np.float64
    assert np.array_equal(s_ab, -s_ba)  # bit for bit
    assert np.all(cyclic_gpm.pair_logits(prompts, a, a) == 0.0)
    assert np.abs(s_ab).max() > 1.0  # not trivially zero
    swapped = [PreferencePair(p.prompt, p.rejected, p.chosen) for p in CYCLIC_TEST]
    est, back = cyclic_gpm.compare(CYCLIC_TEST), cyclic_gpm.compare(swapped)
    assert np.array_equal(member_logits(est.chosen, est.rejected), s_ab)
    assert np.array_equal(member_logits(back.chosen, back.rejected), -s_ab)
    np.testing.assert_allclose(est.prob + back.prob, 1.0, rtol=0, atol=1e-12)


def test_the_skew_product_is_v_a_R_v_b() -> None:
    rng = np.random.default_rng(0)
    va, vb = torch.tensor(rng.normal(size=(5, 6))), torch.tensor(rng.normal(size=(5, 6)))
    block = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    R = torch.block_diag(block, block, block)
    want = torch.einsum("ni,ij,nj->n", va, R, vb)
    torch.testing.assert_close(skew_score(va, vb), want, rtol=1e-12, atol=1e-12)
    assert torch.equal(skew_score(va, va), torch.zeros(5, dtype=torch.float64))


# -- (b) cyclic preferences ----------------------------------------------------------------
def test_the_generator_makes_rock_paper_scissors_cycles() -> None:
    wins = {(move_of(p.chosen), move_of(p.rejected)) for p in CYCLIC_TRAIN}
    assert wins == {("paper", "rock"), ("scissors", "paper"), ("rock", "scissors")}
    assert not {p.prompt for p in CYCLIC_TRAIN} & {p.prompt for p in CYCLIC_TEST}
    transitive = {(move_of(p.chosen), move_of(p.rejected))
                  for p in rock_paper_scissors_pairs(20, structure="transitive")}  # fmt: skip
    assert transitive == {("paper", "rock"), ("scissors", "paper"), ("scissors", "rock")}
    with pytest.raises(ConfigError, match="structure == 'spiral'"):
        rock_paper_scissors_pairs(3, structure="spiral")


def test_gpm_learns_a_cycle_that_caps_bradley_terry_at_two_thirds(
    cyclic_gpm: GeneralPreferenceModel, one_thread
) -> None:
    gpm_acc = accuracy(cyclic_gpm.compare(CYCLIC_TEST))
    bt = bt_model().fit(CYCLIC_TRAIN)
    bt_acc = accuracy(bt.compare(CYCLIC_TEST))
    assert gpm_acc >= 0.95, gpm_acc
    assert bt_acc <= 2 / 3 + 0.01, bt_acc  # any scalar reward: at most 2 of 3 per prompt
    est = cyclic_gpm.compare(CYCLIC_TEST)
    assert est.members.shape == (3, len(CYCLIC_TEST)) and np.all(est.prob_std >= 0)


# -- (c) transitive data -------------------------------------------------------------------
def test_gpm_matches_bradley_terry_on_transitive_data(one_thread) -> None:
    train, test = bt_word_pairs(600, seed=0), bt_word_pairs(400, seed=1)
    gpm = GeneralPreferenceModel(gpm_config()).fit(train)
    bt = bt_model().fit(train)
    gpm_acc, bt_acc = accuracy(gpm.compare(test)), accuracy(bt.compare(test))
    assert bt_acc > 0.7  # learnable, with label noise
    assert abs(gpm_acc - bt_acc) <= 0.04, (gpm_acc, bt_acc)
    rps = rock_paper_scissors_pairs(60, seed=2, structure="transitive")
    rps_test = rock_paper_scissors_pairs(30, seed=3, structure="transitive")
    assert accuracy(GeneralPreferenceModel(gpm_config()).fit(rps).compare(rps_test)) >= 0.95
    assert accuracy(bt_model().fit(rps).compare(rps_test)) >= 0.95


# -- (d) save and load ---------------------------------------------------------------------
def test_save_load_gives_bit_identical_comparisons(
    cyclic_gpm: GeneralPreferenceModel, tmp_path: Path
) -> None:
    folder = cyclic_gpm.save(tmp_path / "gpm")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model_class"] == "GeneralPreferenceModel"
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "manifest.json", "weights.safetensors"]  # fmt: skip
    loaded = load_reward_model(folder, use_cache=False)
    assert isinstance(loaded, GeneralPreferenceModel) and loaded.scalar_rewards is False
    a, b = cyclic_gpm.compare(CYCLIC_TEST), loaded.compare(CYCLIC_TEST)
    for name in ("prob", "members", "margin"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for side in ("chosen", "rejected"):
        assert np.array_equal(getattr(a, side).members, getattr(b, side).members)
    assert a.temperature == b.temperature == loaded.temperature
    ref = CYCLIC_TEST[0].chosen
    prompts, responses = [p.prompt for p in CYCLIC_TEST], [p.rejected for p in CYCLIC_TEST]
    assert np.array_equal(
        cyclic_gpm.score(prompts, responses, reference=ref).members,
        loaded.score(prompts, responses, reference=ref).members,
    )
    assert loaded.config == cyclic_gpm.config


def test_a_folder_whose_weights_do_not_match_is_refused(
    cyclic_gpm: GeneralPreferenceModel, tmp_path: Path
) -> None:
    folder = cyclic_gpm.save(tmp_path / "gpm")
    config = json.loads((folder / "config.json").read_text())
    config["gpm"]["dim"] = 4
    from rewardhedge.models.io import load_model_folder, save_model_folder

    _, tensors, manifest = load_model_folder(folder)
    info = {k: manifest[k] for k in ("encoder_id", "training_data_hash")}
    save_model_folder(tmp_path / "bad", model_class="GeneralPreferenceModel", config=config,
                      tensors=tensors, info=info)  # fmt: skip
    with pytest.raises(ModelFormatError, match=r"weights do not match config\.json"):
        load_reward_model(tmp_path / "bad", use_cache=False)


# -- (e) no scalar reward ------------------------------------------------------------------
def test_score_without_a_reference_says_to_use_compare(
    cyclic_gpm: GeneralPreferenceModel,
) -> None:
    with pytest.raises(NoScalarRewardError, match=r"gives no scalar reward.*compare\(pairs\)"):
        cyclic_gpm.score(["q"], ["a"])
    assert issubclass(NoScalarRewardError, RewardHedgeError)
    with pytest.raises(NoScalarRewardError):
        cyclic_gpm.reward(["q"], ["a"])


def test_score_against_a_reference_is_the_pair_logit(cyclic_gpm: GeneralPreferenceModel) -> None:
    prompts = [p.prompt for p in CYCLIC_TEST]
    responses = [p.chosen for p in CYCLIC_TEST]
    refs = [p.rejected for p in CYCLIC_TEST]
    est = cyclic_gpm.score(prompts, responses, reference=refs)
    assert est.members.shape == (3, len(prompts))
    assert np.array_equal(est.members, cyclic_gpm.pair_logits(prompts, responses, refs))
    assert np.array_equal(est.epistemic, est.members.var(axis=0))
    assert np.all(est.aleatoric == 0) and np.all(est.mean > 0)  # chosen beats rejected
    same = cyclic_gpm.score(prompts, refs, reference=refs)
    assert np.all(same.members == 0.0)
    one = cyclic_gpm.score(prompts[:2], responses[:2], reference="Sure. throwing rock today.")
    assert one.members.shape == (3, 2)
    with pytest.raises(ValueError, match="one per item"):
        cyclic_gpm.score(prompts[:2], responses[:2], reference=refs[:3])


# -- calibration ---------------------------------------------------------------------------
def test_the_temperature_is_fitted_on_cross_fitted_scores_only(one_thread) -> None:
    train = bt_word_pairs(120, seed=4)
    cfg = gpm_config(calibration_folds=3, epochs=40)
    model = GeneralPreferenceModel(cfg).fit(train)
    feats = model.encoder.encode(
        [p.prompt for p in train] * 2, [p.chosen for p in train] + [p.rejected for p in train]
    )
    held, fold = cross_fit_gpm(feats[:120], feats[120:], cfg, folds=3)
    assert sorted(np.bincount(fold).tolist()) == [40, 40, 40]
    want = TemperatureScaling.fit(held, np.ones(120), bounds=TEMPERATURE_BOUNDS)
    assert model.temperature == want.temperature != 1.0
    est = model.compare(train[:5])
    assert est.temperature == model.temperature and est.raw_prob is not None
    assert GeneralPreferenceModel(gpm_config(epochs=40)).fit(train).temperature == 1.0
    with pytest.raises(ConfigError, match="calibration needs at least 6 pairs"):
        GeneralPreferenceModel(cfg).fit(train[:5])


def test_config_refuses_bad_values() -> None:
    bad = {"dim": 3, "n_members": 0, "hidden": -1, "lr": 0.0, "l2": -1.0, "epochs": 0,
           "val_fraction": 1.0, "patience": 0, "seed": -1, "calibration_folds": 1,
           "batch_size": 0, "bootstrap": "yes"}  # fmt: skip
    for field, value in bad.items():
        with pytest.raises(ConfigError, match=rf"^gpm\.{field} == "):
            GPMConfig(**{field: value})
    cfg = GPMConfig(dim=4, hidden=16)
    assert GPMConfig.from_dict(cfg.to_dict()) == cfg


# -- evaluation ----------------------------------------------------------------------------
def test_evaluate_and_evaluate_pairs_work_on_pairs(cyclic_gpm: GeneralPreferenceModel) -> None:
    metrics = cyclic_gpm.evaluate(CYCLIC_TEST, reps=50)
    assert metrics["pairwise_accuracy"] >= 0.95 and metrics["n_members"] == 3
    full = evaluate_pairs(cyclic_gpm, CYCLIC_TEST, other=("bt", cyclic_gpm))
    assert full["pairwise_accuracy"] == metrics["pairwise_accuracy"]
    assert "starc" not in full and "batch_invariance" not in full["controls"]
    assert full["skipped"] == {
        "starc": NO_SCALAR_REWARD,
        "controls.batch_invariance": NO_SCALAR_REWARD,
        "comparison.starc_distance": NO_SCALAR_REWARD,
    }
    assert full["comparison"]["starc_distance"] is None and full["comparison"]["diff"] == 0.0
    assert full["members"]["n_members"] == 3
    with_abstention = cyclic_gpm.evaluate(CYCLIC_TEST, reps=20, abstain_alpha=0.2)
    assert "abstention" in with_abstention
    rows = [OneToManyRow("q", "a", ("b", "c"))]
    with pytest.raises(ConfigError, match="no scalar reward per response, and one-to-many"):
        evaluate_one_to_many(cyclic_gpm, rows)
    with pytest.raises(ConfigError, match="no scalar reward per response, and best-of-n"):
        evaluate_pools(cyclic_gpm, [CandidatePool("q", ("a", "b"))])


# -- the conformance suite -----------------------------------------------------------------
class AgainstReference(RewardModelBase):
    """A GPM read as a scalar reward against one fixed reference response,
    ``r(y) = s(y, reference)``: with the reference fixed, a reward like any other, so
    every conformance check applies to it (and through it to ``score(reference=)``,
    ``compare``, ``save`` and ``load``)."""

    def __init__(self, gpm: GeneralPreferenceModel, reference: str) -> None:
        self.gpm, self.reference, self.rule = gpm, reference, gpm.rule

    def fit(self, pairs: Sequence[PreferencePair]) -> AgainstReference:
        self.gpm.fit(pairs)
        return self

    def score(self, prompts, responses, *, progress: bool = False) -> RewardEstimate:
        return self.gpm.score(prompts, responses, reference=self.reference, progress=progress)

    def compare(self, pairs, *, progress: bool = False) -> PairwiseEstimate:
        return self.gpm.compare(pairs, progress=progress)

    @property
    def temperature(self) -> float:
        return self.gpm.temperature

    def save(self, path):
        return self.gpm.save(path)


REFERENCE = "Okay: throwing paper again."


def make_gpm(seed: int, hidden: int = 0) -> GeneralPreferenceModel:
    return GeneralPreferenceModel(gpm_config(seed, calibration_folds=2, epochs=30, hidden=hidden))


def test_the_checks_that_apply_to_a_bare_gpm_pass(tmp_path: Path, one_thread) -> None:
    """check_not_fitted and check_temperature use only compare/evaluate/save; every
    other check scores single responses, which a GPM refuses (no scalar reward)."""
    case = ConformanceCase(make_gpm, CYCLIC_TRAIN[:90], tmp_path, test_pairs=CYCLIC_TEST[:12])
    check_not_fitted(case)
    check_temperature(case)
    for check in CHECKS:
        if check in (check_not_fitted, check_temperature):
            continue
        with pytest.raises(AssertionError, match="NoScalarRewardError"):
            check(case)


@pytest.mark.parametrize("hidden", [0, 16])
def test_every_check_passes_against_a_fixed_reference(
    hidden: int, tmp_path: Path, one_thread
) -> None:
    """Batch invariance is exact (batch_rtol 0) for the linear and the MLP head."""
    case = ConformanceCase(
        lambda seed: AgainstReference(make_gpm(seed, hidden), REFERENCE),
        CYCLIC_TRAIN[:90],
        tmp_path,
        test_pairs=CYCLIC_TEST[:12],
        load=lambda path: AgainstReference(load_reward_model(path, use_cache=False), REFERENCE),
        aleatoric="zero",
        label=f"GeneralPreferenceModel(hidden={hidden}) against a reference",
    )
    for check in CHECKS:
        check(case)
