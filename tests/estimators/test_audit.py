"""The cross-fitted audit: folds split by prompt, no pair scored by a model that trained on
it, and flags that find known label flips far beyond chance."""

from __future__ import annotations

import numpy as np
import pytest

from rewardhedge.config import EncoderConfig, EnsembleConfig, TrainConfig, UncertaintyConfig
from rewardhedge.data.sandbox import SandboxConfig, generate_sandbox
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.audit import (
    AuditConfig,
    audit_pairs,
    check_audit_size,
    prompt_folds,
)
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.evaluate.audit import flag_enrichment
from rewardhedge.types import PreferencePair

FAST = EnsembleConfig(
    n_members=3,
    encoder=EncoderConfig(kind="hashing", dim=256),
    train=TrainConfig(epochs=100, lr=0.01),
    uncertainty=UncertaintyConfig(calibration_folds=0),
)


def test_folds_keep_a_prompt_together_and_are_balanced_and_seeded() -> None:
    prompts = [f"q{i % 7}" for i in range(40)] + [f"solo{i}" for i in range(23)]
    fold = prompt_folds(prompts, 4, seed=3)
    for p in set(prompts):
        assert len({int(f) for f, q in zip(fold, prompts, strict=True) if q == p}) == 1
    sizes = np.bincount(fold, minlength=4)
    assert sizes.sum() == 63 and sizes.max() - sizes.min() <= 6  # the q-groups hold 5 or 6
    assert np.array_equal(fold, prompt_folds(prompts, 4, seed=3))
    assert not np.array_equal(fold, prompt_folds(prompts, 4, seed=4))
    singles = np.bincount(prompt_folds([str(i) for i in range(10)], 3, seed=0))
    assert sorted(singles.tolist()) == [3, 3, 4]


def test_more_folds_than_prompts_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^audit\.folds == 3, but the pairs have only 2"):
        prompt_folds(["a", "b", "a"], 3, seed=0)
    pairs = [PreferencePair("a", "x", "y"), PreferencePair("a", "x", "z")]
    with pytest.raises(ConfigError, match=r"^--folds 2: the pairs have only 1 distinct prompts"):
        check_audit_size(pairs, 2, "--folds")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": 1}, r"^audit\.folds == 1, must be an integer >= 2\.$"),
        ({"seed": -1}, r"^audit\.seed == -1, must be an integer >= 0\.$"),
        ({"threshold": 1.0}, r"^audit\.threshold == 1\.0, must be a number in \[0, 1\)\.$"),
        (
            {"action": "smooth"},
            r"^audit\.action == 'smooth', must be one of: flag, drop, flip, soft\.",
        ),
    ],
)
def test_audit_config_refuses_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AuditConfig(**kwargs)


def test_no_pair_is_scored_by_a_model_that_trained_on_it(monkeypatch, pair_factory) -> None:
    """A spy on the fold trainer records the feature rows each fold model trained on and
    the rows it scored: no scored row may be a trained one, and every pair is scored
    exactly once per side."""
    import rewardhedge.train.fitting as fitting

    real = fitting.fit_estimator
    trained: list[set[bytes]] = []
    scored: list[list[bytes]] = []

    def spy(xc, xr, config, **kw):
        heads, result = real(xc, xr, config, **kw)
        trained.append({row.tobytes() for row in np.concatenate([xc, xr])})
        seen: list[bytes] = []
        scored.append(seen)
        predict = heads.predict

        def recording_predict(x):
            seen.extend(row.tobytes() for row in x.numpy())
            return predict(x)

        heads.predict = recording_predict
        return heads, result

    monkeypatch.setattr(fitting, "fit_estimator", spy)
    base = pair_factory(36)
    # three pairs per prompt, so a fold that split a prompt would show up here too
    pairs = [PreferencePair(base[i // 3].prompt, p.chosen, p.rejected) for i, p in enumerate(base)]
    result = audit_pairs(pairs, FAST, AuditConfig(folds=4))
    assert len(trained) == 4
    for f in range(4):
        assert scored[f] and not trained[f] & set(scored[f])
    assert sum(len(s) for s in scored) == 2 * len(pairs)
    for f, train in enumerate(result.train_index):
        held = np.flatnonzero(result.fold == f)
        assert not set(train) & set(held)
        assert not {pairs[i].prompt for i in train} & {pairs[i].prompt for i in held}
        assert len(train) + len(held) == len(pairs)


def flipped_sandbox(n: int, seed: int) -> tuple[list[PreferencePair], np.ndarray]:
    """Sandbox pairs whose flipped labels are known: at temperature 0 the better response
    wins before the 25% flips, so a label against the gold order is exactly a flip
    (comparisons with equal gold are left out)."""
    cfg = SandboxConfig(
        seed=seed, train_prompts=n, test_prompts=1, pool_prompts=1, pool_size=2,
        temperature=0.0, flip_rate=0.25,
    )  # fmt: skip
    sandbox = generate_sandbox(cfg)
    pairs, flipped = [], []
    for pair, c in zip(sandbox.labelled_pairs("train", 0), sandbox.train, strict=True):
        if c.a.gold != c.b.gold:
            pairs.append(pair)
            flipped.append((pair.chosen == c.a.text) != (c.a.gold > c.b.gold))
    return pairs, np.array(flipped)


def test_flags_find_known_flips_far_beyond_chance() -> None:
    pairs, flipped = flipped_sandbox(400, seed=0)
    assert 0.15 < flipped.mean() < 0.35
    result = audit_pairs(pairs, FAST, AuditConfig(folds=4))
    quality = flag_enrichment(result.flagged, flipped, result.suspicion)
    # Flagging as many pairs at random would find this many flips with p < 1e-6.
    assert quality["p_value"] < 1e-6, quality
    assert quality["lift"] > 1.5 and quality["recall"] > 0.5, quality
    assert quality["auroc"] > 0.7, quality
    # flip changes exactly the flagged pairs; drop leaves a cleaner set (lift > 1). Flip
    # fixes a set only when precision > 0.5, which this weak hashing model does not reach.
    flipped_pairs = result.cleaned("flip")
    changed = [c.chosen != p.chosen for c, p in zip(flipped_pairs, pairs, strict=True)]
    assert changed == result.flagged.tolist()
    kept = ~result.flagged
    assert len(result.cleaned("drop")) == kept.sum()
    assert flipped[kept].mean() < flipped.mean()


def test_rows_summary_and_in_sample_statistics(pair_factory) -> None:
    pairs = pair_factory(30)
    model = EnsembleRewardModel(FAST, use_cache=False).fit(pairs)
    result = audit_pairs(pairs, FAST, AuditConfig(folds=3, action="drop"), model=model)
    rows = list(result.rows())
    assert [r["id"] for r in rows] == [p.id for p in pairs]
    assert set(rows[0]) == {
        "id", "fold", "vote_share", "margin_mean", "margin_std", "p_label", "suspicion",
        "flagged", "action", "in_sample",
    }  # fmt: skip
    assert all(r["action"] == ("dropped" if r["flagged"] else "kept") for r in rows)
    np.testing.assert_allclose([r["suspicion"] for r in rows], 1 - result.held_out.prob)
    s = result.summary()
    assert s["n_clean"] == len(pairs) - s["n_flagged"] == len(result.cleaned())
    assert s["n_members"] == 3 and 0.0 <= s["in_sample_agreement"] <= 1.0
    again = audit_pairs(pairs, FAST, AuditConfig(folds=3, action="drop"))
    np.testing.assert_array_equal(again.suspicion, result.suspicion)  # deterministic


def test_docstring_examples_run() -> None:
    import doctest

    import rewardhedge.estimators.audit as audit_mod

    result = doctest.testmod(audit_mod)
    assert result.attempted > 0 and result.failed == 0
