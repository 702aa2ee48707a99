"""The TRL reward-function adapter and PF-PPO-style filtering, on a real tiny model."""

from __future__ import annotations

import asyncio
import inspect
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardhedge.config import EncoderConfig, EnsembleConfig, TrainConfig
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.optimize import (
    BatchFilter,
    async_reward_function,
    filter_by_uncertainty,
    format_completion,
    format_prompt,
    reward_function,
)
from rewardhedge.types import RewardEstimate
from rewardhedge.uncertainty import RewardRule


@pytest.fixture(scope="module")
def model(pair_factory) -> EnsembleRewardModel:
    cfg = EnsembleConfig(
        n_members=3,
        encoder=EncoderConfig(kind="hashing", dim=64),
        train=TrainConfig(epochs=50),  # plenty for 40 pairs; keeps the fixture under a second
    )
    return EnsembleRewardModel(cfg, use_cache=False).fit(pair_factory(40))


PROMPTS = [f"question {i} about item {i * 7}" for i in range(4) for _ in range(3)]
COMPLETIONS = [
    f"the answer is {w} for question {i}"
    for i in range(4)
    for w in ("correct", "wrong", "vague and rude")
]


def trl_call(fn, prompts, completions):
    """Call ``fn`` exactly as TRL's GRPOTrainer does (everything by keyword)."""
    return fn(
        prompts=prompts,
        completions=completions,
        completion_ids=[[1, 2, 3]] * len(completions),
        topic=["x"] * len(completions),  # an extra dataset column
        trainer_state=object(),
    )


def test_sync_adapter_equals_rule_applied_to_the_model(model):
    rule = RewardRule.parse("uwo", lam=0.5, transform="centered_logsigmoid")
    fn = reward_function(model, rule=rule, name="hedged")
    got = trl_call(fn, PROMPTS, COMPLETIONS)
    want = rule.apply(model.score(PROMPTS, COMPLETIONS), groups=PROMPTS)
    np.testing.assert_allclose(np.asarray(got, dtype=float), want, rtol=1e-12)
    assert all(isinstance(x, float) for x in got)
    assert fn.__name__ == "hedged" and fn.__doc__
    assert not asyncio.iscoroutinefunction(fn) and not inspect.iscoroutinefunction(fn)


def test_default_rule_is_the_models_and_a_string_rule_is_parsed(model):
    fn = reward_function(model)
    np.testing.assert_allclose(
        trl_call(fn, PROMPTS, COMPLETIONS), model.reward(PROMPTS, COMPLETIONS), rtol=1e-12
    )
    fn = reward_function(model, rule="lcb")
    want = RewardRule.parse("lcb").apply(model.score(PROMPTS, COMPLETIONS))
    np.testing.assert_allclose(trl_call(fn, PROMPTS, COMPLETIONS), want, rtol=1e-12)


def test_conversational_format_is_rendered_hh_style(model):
    conv_prompts = [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": p}]
        for p in PROMPTS
    ]
    conv_completions = [[{"role": "assistant", "content": c}] for c in COMPLETIONS]
    texts = [format_prompt(p) for p in conv_prompts]
    assert texts[0] == f"Be brief.\n\nHuman: {PROMPTS[0]}\n\nAssistant:"
    assert [format_completion(c) for c in conv_completions] == COMPLETIONS

    fn = reward_function(model, rule="mean")
    got = trl_call(fn, conv_prompts, conv_completions)
    np.testing.assert_allclose(got, model.score(texts, COMPLETIONS).mean, rtol=1e-12)


def test_format_prompt_multi_turn_and_text_parts():
    conv = [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image"}]},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye?"},
    ]
    assert format_prompt(conv) == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye?\n\nAssistant:"
    assert format_prompt("plain") == "plain"


def test_custom_formatters_are_used(model):
    fn = reward_function(
        model,
        rule="mean",
        format_prompt=lambda p: p["text"],
        format_completion=lambda c: c.upper(),
    )
    got = trl_call(fn, [{"text": p} for p in PROMPTS], COMPLETIONS)
    want = model.score(PROMPTS, [c.upper() for c in COMPLETIONS]).mean
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_async_adapter_is_a_coroutine_function_and_matches_sync(model):
    afn = async_reward_function(model, rule="uwo", name="hedged_async")
    assert asyncio.iscoroutinefunction(afn) and inspect.iscoroutinefunction(afn)
    assert afn.__name__ == "hedged_async"
    got = asyncio.run(trl_call(afn, PROMPTS, COMPLETIONS))
    sync = trl_call(reward_function(model, rule="uwo"), PROMPTS, COMPLETIONS)
    assert got == sync


@pytest.mark.parametrize("on", ["epistemic", "total"])
def test_abstention_returns_none_exactly_above_the_threshold(model, on):
    est = model.score(PROMPTS, COMPLETIONS)
    unc = np.sqrt(est.epistemic if on == "epistemic" else est.total)
    thr = float(np.quantile(unc, 0.5))
    fn = reward_function(model, rule="mean", abstain_above=thr, abstain_on=on)
    got = trl_call(fn, PROMPTS, COMPLETIONS)
    above = unc > thr
    assert 0 < above.sum() < len(unc)
    assert [x is None for x in got] == above.tolist()
    np.testing.assert_allclose([x for x in got if x is not None], est.mean[~above], rtol=1e-12)
    agot = asyncio.run(
        trl_call(
            async_reward_function(model, abstain_above=thr, abstain_on=on), PROMPTS, COMPLETIONS
        )
    )
    assert agot == got


def test_running_mean_state_persists_across_calls(model):
    rule = RewardRule.parse("mean", transform="running_mean")
    fn = reward_function(model, rule=rule)
    first, second = PROMPTS[:6], PROMPTS[6:]
    r1 = model.score(first, COMPLETIONS[:6]).mean
    r2 = model.score(second, COMPLETIONS[6:]).mean
    np.testing.assert_allclose(trl_call(fn, first, COMPLETIONS[:6]), r1 - r1.mean(), atol=1e-12)
    # The second batch is centred on the first batch's mean, not on its own.
    np.testing.assert_allclose(trl_call(fn, second, COMPLETIONS[6:]), r2 - r1.mean(), atol=1e-12)
    # A new function starts a new state.
    fresh = reward_function(model, rule=rule)
    np.testing.assert_allclose(trl_call(fresh, second, COMPLETIONS[6:]), r2 - r2.mean(), atol=1e-12)


def test_empty_batch(model):
    assert trl_call(reward_function(model), [], []) == []


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"abstain_on": "epistemics"}, "abstain_on"),
        ({"abstain_above": -1.0}, "abstain_above"),
        ({"abstain_above": float("nan")}, "abstain_above"),
        ({"rule": "bogus"}, "rule"),
        ({"rule": 3}, "rule"),
        ({"name": ""}, "name"),
        ({"format_prompt": "no"}, "format_prompt"),
    ],
)
def test_bad_options_raise_config_error_naming_the_option(model, kwargs, named):
    for make in (reward_function, async_reward_function):
        with pytest.raises(ConfigError, match=named):
            make(model, **kwargs)


def test_bad_source_and_bad_inputs(model):
    with pytest.raises(ConfigError, match="source"):
        reward_function(object())
    fn = reward_function(model)
    with pytest.raises(ValueError, match="differ in length"):
        fn(prompts=["a", "b"], completions=["x"])


# -- filter_by_uncertainty -----------------------------------------------------


def test_filter_keep_fraction_known_answer():
    u = np.array([0.5, 0.1, 0.9, 0.1, 0.3])
    f = filter_by_uncertainty(u, keep=0.4)  # ceil(0.4 * 5) = 2
    assert isinstance(f, BatchFilter)
    assert f.mask.tolist() == [False, True, False, True, False]
    assert f.weights.tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert f.threshold == 0.1 and f.n_kept == 2
    # Ties go to the lower index; 0.3 of 10 keeps 3 (not 4 from rounding error).
    f = filter_by_uncertainty(np.ones(10), keep=0.3)
    assert f.indices.tolist() == [0, 1, 2]


def test_filter_max_uncertainty_known_answer():
    u = np.array([0.5, 0.1, 0.9, 0.2])
    f = filter_by_uncertainty(u, max_uncertainty=0.2)
    assert f.indices.tolist() == [1, 3] and f.threshold == 0.2
    f = filter_by_uncertainty(u, max_uncertainty=0.05)
    assert f.n_kept == 0
    # With groups every group keeps its most certain sample.
    f = filter_by_uncertainty(u, max_uncertainty=0.05, groups=["a", "a", "b", "b"])
    assert f.indices.tolist() == [1, 3]


def test_filter_groups_known_answer():
    u = np.array([0.4, 0.1, 0.3, 0.9, 0.8, 0.7])
    f = filter_by_uncertainty(u, keep=0.5, groups=[0, 0, 0, 1, 1, 1])
    assert f.indices.tolist() == [1, 2, 4, 5]


def test_weight_mode_known_answer():
    u = np.array([0.0, 1.0, 2.0])  # median 1: raw weights 1, 1/2, 1/5
    f = filter_by_uncertainty(u, mode="weight")
    raw = np.array([1.0, 0.5, 0.2])
    np.testing.assert_allclose(f.weights, raw * 3 / raw.sum())
    assert f.mask.all() and f.threshold == 1.0
    f = filter_by_uncertainty(u, mode="weight", max_uncertainty=2.0)
    raw = np.array([1.0, 0.8, 0.5])
    np.testing.assert_allclose(f.weights, raw * 3 / raw.sum())


def test_filter_takes_a_reward_estimate():
    est = RewardEstimate.from_members(np.array([[0.0, 0.0, 1.0], [0.0, 2.0, 1.0]]))
    f = filter_by_uncertainty(est, keep=0.5)  # stds 0, 1, 0 -> keep 2
    assert f.indices.tolist() == [0, 2]


def test_filter_empty_batch():
    f = filter_by_uncertainty(np.zeros(0), keep=0.5)
    assert f.n_kept == 0 and math.isnan(f.threshold)
    assert filter_by_uncertainty(np.zeros(0), mode="weight").weights.shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({}, "exactly one of keep"),
        ({"keep": 0.5, "max_uncertainty": 1.0}, "exactly one of keep"),
        ({"keep": 0.0}, "keep"),
        ({"keep": 1.5}, "keep"),
        ({"max_uncertainty": -1.0}, "max_uncertainty"),
        ({"keep": 0.5, "mode": "filtr"}, "mode"),
        ({"keep": 0.5, "mode": "weight"}, "keep"),
    ],
)
def test_filter_bad_options(kwargs, named):
    with pytest.raises(ConfigError, match=named):
        filter_by_uncertainty(np.ones(3), **kwargs)


def test_filter_bad_uncertainty():
    with pytest.raises(ValueError, match="uncertainty"):
        filter_by_uncertainty(np.array([0.1, np.nan]), keep=0.5)
    with pytest.raises(ValueError, match="groups"):
        filter_by_uncertainty(np.ones(3), keep=0.5, groups=[0, 1])


uncertainties = st.lists(
    st.floats(0.0, 10.0, allow_nan=False, allow_subnormal=False), min_size=1, max_size=40
).map(np.array)


@settings(max_examples=60, deadline=None)
@given(u=uncertainties, keep=st.floats(0.01, 1.0))
def test_filter_keep_properties(u, keep):
    f = filter_by_uncertainty(u, keep=keep)
    assert f.n_kept == math.ceil(round(keep * len(u), 9)) >= 1
    if f.n_kept < len(u):
        assert u[f.mask].max() <= u[~f.mask].min()
    assert f.weights[f.mask].mean() == 1.0 and not f.weights[~f.mask].any()


@settings(max_examples=60, deadline=None)
@given(u=uncertainties, keep=st.floats(0.01, 1.0), data=st.data())
def test_filter_groups_properties(u, keep, data):
    groups = data.draw(st.lists(st.integers(0, 4), min_size=len(u), max_size=len(u)))
    f = filter_by_uncertainty(u, keep=keep, groups=groups)
    g = np.asarray(groups)
    for label in set(groups):
        inside = g == label
        kept, dropped = u[inside & f.mask], u[inside & ~f.mask]
        assert kept.size == math.ceil(round(keep * inside.sum(), 9)) >= 1
        if dropped.size:
            assert kept.max() <= dropped.min()


@settings(max_examples=60, deadline=None)
@given(u=uncertainties)
def test_weight_properties(u):
    f = filter_by_uncertainty(u, mode="weight")
    assert f.mask.all()
    np.testing.assert_allclose(f.weights.mean(), 1.0)
    order = np.argsort(u, kind="stable")
    assert np.all(np.diff(f.weights[order]) <= 1e-12)


def test_imports_stay_light(module_imports):
    """No torch, no httpx, no reward_model (later in the import chain) at import time."""
    import rewardhedge.optimize.policy_filter as pf
    import rewardhedge.optimize.rl_rewards as rl

    for mod in (rl, pf):
        for name in module_imports(mod.__file__):
            assert not name.startswith(("torch", "httpx", "rewardhedge.estimators.ensemble")), name


def test_optimize_imports_without_httpx():
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "import rewardhedge.optimize as o\n"
        "assert callable(o.reward_function) and 'RemoteRewardModel' in dir(o)\n"
        "try:\n    o.RemoteRewardModel\nexcept ModuleNotFoundError as e:\n"
        "    assert 'rewardhedge[serve]' in str(e), e\nelse:\n    raise AssertionError\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
