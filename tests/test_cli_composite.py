"""``rewardhedge compose`` and the composite model folder: scores are the combination
of the components', the folder pins its components by hash, and every bad flag value
is one line (exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardhedge import cli
from rewardhedge.config import EncoderConfig, EnsembleConfig, UncertaintyConfig
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.composite import CompositeRewardModel
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.estimators.loading import load_reward_model
from rewardhedge.types import PreferencePair
from rewardhedge.uncertainty.composite import Combination

ITEMS = [
    ("q1", "helpful and correct answer"),
    ("q1", "rude harmful answer"),
    ("q2", "a safe polite reply"),
    ("q2", "helpful answer, somewhat rude"),
]


def fit(folder: Path, pairs: list[PreferencePair], members: int = 2) -> Path:
    cfg = EnsembleConfig(
        n_members=members,
        encoder=EncoderConfig(kind="hashing", dim=64),
        uncertainty=UncertaintyConfig(calibration_folds=0),
    )
    EnsembleRewardModel(cfg, use_cache=False).fit(pairs).save(folder)
    return folder


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("parts")
    helpful = [
        PreferencePair(f"q{i}", "helpful correct answer " * (1 + i % 2), "vague") for i in range(30)
    ]
    safe = [
        PreferencePair(f"q{i}", "safe polite reply", "rude harmful " * (1 + i % 2))
        for i in range(30)
    ]
    return {"help": fit(root / "help", helpful), "safe": fit(root / "safe", safe)}


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def compose_args(parts, out, *extra):
    return [
        "compose",
        "--component",
        f"help={parts['help']}",
        "--component",
        f"safe={parts['safe']}",
        "--out",
        out,
        *extra,
    ]


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--combine", "and", "--combine-reference", "zero"],
        ["--combine", "constrained", "--thresholds", "0.5,none", "--weights", "1,2"],
    ],
)
def test_composite_scores_are_the_combination_of_its_components(tmp_path, parts, extra, capsys):
    out = tmp_path / "both"
    assert run(*compose_args(parts, out, *extra)) == 0
    model = load_reward_model(out, use_cache=False)
    assert isinstance(model, CompositeRewardModel) and model.names == ["help", "safe"]
    prompts, responses = [p for p, _ in ITEMS], [r for _, r in ITEMS]
    got = model.score(prompts, responses)
    members = np.stack(
        [
            load_reward_model(parts[n], use_cache=False).score(prompts, responses).members
            for n in ("help", "safe")
        ]
    )
    np.testing.assert_allclose(got.members, model.combination.apply(members, groups=prompts))
    # score through the command line too: one row per item, the same rewards
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in ITEMS))
    assert run("score", "--model", out, "--data", items, "--out", tmp_path / "s.jsonl") == 0
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    np.testing.assert_allclose([r["mean"] for r in rows], got.mean)


def test_a_component_changed_after_composing_is_refused_on_load(tmp_path, parts, capsys):
    help_copy = fit(tmp_path / "help", [PreferencePair(f"q{i}", "good", "bad") for i in range(20)])
    out = tmp_path / "both"
    assert (
        run(
            "compose",
            "--component",
            f"help={help_copy}",
            "--component",
            f"safe={parts['safe']}",
            "--out",
            out,
        )
        == 0
    )
    fit(
        help_copy, [PreferencePair(f"q{i}", "better", "worse") for i in range(20)]
    )  # retrained in place
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"prompt": "q", "response": "good"}) + "\n")
    capsys.readouterr()
    assert run("score", "--model", out, "--data", items, "--out", tmp_path / "s.jsonl") == 2
    err = capsys.readouterr().err
    assert "component 'help'" in err and "has changed since it was composed" in err
    assert not (tmp_path / "s.jsonl").exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--combine", "max"], "--combine: combination.kind == 'max'"),
        (["--weights", "1,-1"], "--weights: combination.weights == (1.0, -1.0), must be >= 0"),
        (["--weights", "1"], "--weights: combination.weights has 1 values for 2 components"),
        (["--weights", "1,x"], "--weights '1,x': 'x' is not a number"),
        (
            ["--thresholds", "1,1"],
            "--thresholds: combination.thresholds are only read by kind 'constrained'",
        ),
        (
            ["--combine", "constrained"],
            "--combine: combination.kind 'constrained' needs combination.thresholds",
        ),
        (
            ["--combine", "constrained", "--thresholds", "1,y"],
            "--thresholds '1,y': 'y' is not a number (numbers or none)",
        ),
        (
            ["--combine", "and", "--combine-reference", "mode"],
            "--combine-reference: combination.reference == 'mode'",
        ),
        (["--aggregate", "best"], "--aggregate: aggregation == 'best', must be one of"),
    ],
)
def test_bad_values_are_one_line_and_write_nothing(tmp_path, parts, capsys, extra, needle):
    out = tmp_path / "both"
    assert run(*compose_args(parts, out, *extra)) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("error") <= 1, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("specs", "needle"),
    [
        (["help"], "--component 'help': expected NAME=FOLDER"),
        (["a={help}", "a={safe}"], "--component: the name 'a' is given twice"),
    ],
)
def test_bad_component_specs_name_the_flag(tmp_path, parts, capsys, specs, needle):
    argv = ["compose", "--out", tmp_path / "c"]
    for spec in specs:
        argv += ["--component", spec.format(**parts)]
    assert run(*argv) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_a_comparison_only_model_cannot_be_a_component(pair_factory):
    from rewardhedge.estimators.general_preference import GeneralPreferenceModel
    from rewardhedge.models.general_preference import GPMConfig

    gpm = GeneralPreferenceModel(
        GPMConfig(encoder=EncoderConfig(kind="hashing", dim=16), calibration_folds=0)
    )
    with pytest.raises(ConfigError, match="gives no reward per response"):
        CompositeRewardModel({"gpm": gpm}, Combination())


def test_serving_an_and_with_per_prompt_references_is_refused(tmp_path, parts, capsys):
    out = tmp_path / "both"
    assert run(*compose_args(parts, out, "--combine", "and")) == 0
    capsys.readouterr()
    assert run("serve", "--model", out, "--port", "0") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "compose it with --combine-reference zero to serve it" in err


@pytest.mark.parametrize("reference", ["median", "mean", "zero"])
def test_the_server_itself_refuses_batch_dependent_rewards(parts, reference):
    """From Python too (``create_app``), an ``and`` with per-prompt references is refused,
    also when it is nested inside another composite; with reference ``zero`` it serves."""
    from rewardhedge.serve.app import create_app

    models = {name: load_reward_model(path) for name, path in parts.items()}
    inner = CompositeRewardModel(models, Combination("and", reference=reference))
    outer = CompositeRewardModel({"inner": inner, "safe": models["safe"]}, Combination("sum"))
    for model in (inner, outer):
        if reference == "zero":
            assert model.batch_independent and create_app(model) is not None
        else:
            assert not model.batch_independent
            with pytest.raises(ConfigError, match="depend on which other items share the batch"):
                create_app(model)
