"""The overoptimisation lab end to end on a tiny sandbox with the hashing encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rewardhedge.config import EncoderConfig
from rewardhedge.data.sandbox import SandboxConfig
from rewardhedge.errors import ConfigError
from rewardhedge.lab.options import lab_encoder_config
from rewardhedge.lab.overopt import LabConfig, run_lab
from rewardhedge.optimize import expected_best_of_n, kl_best_of_n
from rewardhedge.report import render_report
from rewardhedge.uncertainty import Aggregation

TINY = LabConfig(
    sandbox=SandboxConfig(train_prompts=150, test_prompts=40, pool_prompts=10, pool_size=8),
    seeds=(0, 1),
    members=3,
    aggregations=(Aggregation("mean"), Aggregation("wco"), Aggregation("uwo", lam=0.5)),
    encoder=EncoderConfig(kind="hashing", dim=64, views=("hash", "hash_bigram", "hash_char")),
    bootstrap_reps=200,
)
OPTIONS = ("bootstrap", "subspace", "views")


@pytest.fixture(scope="module")
def lab():
    return run_lab(TINY)


def test_lab_json_has_every_curve_and_axis(lab):
    result, _ = lab
    assert result["kind"] == "rewardhedge.overopt" and result["ns"] == [1, 2, 4, 8]
    assert result["kl"] == pytest.approx(kl_best_of_n(np.array([1, 2, 4, 8])).tolist())
    labels = [(c["model"], c["aggregation"]) for c in result["curves"]]
    assert labels == [("single", "mean")] + [
        (o, a) for o in OPTIONS for a in ("mean", "wco", "uwo")
    ]
    for c in result["curves"]:
        for key in ("gold", "proxy"):
            s = c[key]
            assert len(s["iqm"]) == 4
            assert all(lo <= hi for lo, hi in zip(s["ci_low"], s["ci_high"], strict=True))
        assert np.array(c["per_seed_gold"]).shape == (2, 4)
        # The proxy of the pick can only grow with n: it is the expected maximum.
        assert np.all(np.diff(c["proxy"]["mean"]) >= -1e-9)
    json.dumps(result, allow_nan=False)  # strict JSON


def test_curves_match_the_estimator_on_the_runs(lab):
    result, runs = lab
    from rewardhedge.data.sandbox import generate_sandbox

    gold = np.stack([p.gold for p in generate_sandbox(TINY.sandbox).pools])
    single = result["curves"][0]
    for s, run in enumerate(runs):
        score = run.pool_members["single"][0]
        expected = expected_best_of_n(score, gold, [1, 2, 4, 8]).mean(axis=1)
        assert single["per_seed_gold"][s] == pytest.approx(expected.tolist())
        # "mean" maximises the raw mean; the others see the standardised members.
        for option in OPTIONS:
            assert run.scores(option, Aggregation("mean")) is run.pool_mean[option]
            wco = run.scores(option, Aggregation("wco"))
            assert np.array_equal(wco, run.pool_members[option].min(axis=0))
    # n = 1 is a random candidate whatever the proxy: the pool's mean gold.
    assert single["gold"]["mean"][0] == pytest.approx(gold.mean())


def test_accuracy_reliability_and_examples(lab):
    result, _ = lab
    names = [r["name"] for r in result["accuracy"]]
    assert names == [
        "single (K=1)",
        *(f"{o} ensemble (K=3)" for o in OPTIONS),
        "length baseline (longer)",
        "length baseline (shorter)",
    ]
    longer, shorter = result["accuracy"][-2]["accuracy"], result["accuracy"][-1]["accuracy"]
    assert longer + shorter == pytest.approx(1.0)
    for rel in result["reliability"]:
        assert sum(rel["count"]) == 2 * 2 * TINY.sandbox.test_prompts  # symmetrised, two seeds
    for ex in result["examples"]:
        assert ex["model"] == OPTIONS[-1]
        assert ex["single"]["response"] != ex["ensemble"]["response"]


def test_paired_rows_are_the_seed_and_prompt_mean_of_the_gold_difference(lab):
    result, runs = lab
    from rewardhedge.data.sandbox import generate_sandbox

    gold = np.stack([p.gold for p in generate_sandbox(TINY.sandbox).pools])
    rows = {(r["model"], r["aggregation"]): r for r in result["paired"]}
    assert len(rows) == len(OPTIONS) * 3
    for (model, agg_name), row in rows.items():
        agg = next(a for a in TINY.aggregations if a.name == agg_name)
        diffs = [
            expected_best_of_n(run.scores(model, agg), gold, [8])[0]
            - expected_best_of_n(run.scores("single", Aggregation("mean")), gold, [8])[0]
            for run in runs
        ]
        assert row["diff"] == pytest.approx(float(np.mean(diffs)))
        assert row["ci_low"] <= row["diff"] <= row["ci_high"]
        expected = "helps" if row["ci_low"] > 0 else "hurts" if row["ci_high"] < 0 else None
        assert row["verdict"] == (expected or "no difference")


def test_member_diversity_is_reported_per_option(lab):
    result, _ = lab
    rows = {r["model"]: r for r in result["diversity"]}
    assert list(rows) == list(OPTIONS)
    for r in rows.values():
        assert 0.0 <= r["starc_pairwise_mean"] <= 1.0
        assert r["disagreement_in"] > 0.0


def test_bad_options_fail_clearly():
    with pytest.raises(ConfigError, match="unknown diversity option 'boot'"):
        LabConfig(options=("boot",))
    with pytest.raises(ConfigError, match="at least two encoder views"):
        LabConfig(options=("views",), encoder=EncoderConfig(kind="hashing", views=("hash",)))
    with pytest.raises(ConfigError, match="one member per view: 2 members for 3 views"):
        LabConfig(members=2, encoder=lab_encoder_config("hashing"))
    with pytest.raises(ConfigError, match="needs views"):
        LabConfig(encoder=EncoderConfig(kind="hashing"))
    assert lab_encoder_config("hashing").views == ("hash", "hash_bigram", "hash_char")


def test_lab_result_renders_as_a_report(lab, tmp_path):
    result, _ = lab
    out = render_report(result, tmp_path / "report.html")
    assert out.read_text().count("<svg") >= 3
