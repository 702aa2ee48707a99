"""RewardRule (aggregation + transform) against hand-computed values and properties."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import rewardhedge.uncertainty.reward_rule as rule_mod
from rewardhedge.errors import ConfigError
from rewardhedge.types import RewardEstimate
from rewardhedge.uncertainty.aggregation import AGGREGATIONS, Aggregation
from rewardhedge.uncertainty.reward_rule import TRANSFORMS, RewardRule, Transform
from rewardhedge.uncertainty.transforms import RunningMeanCenter


def logsig(x: float) -> float:
    return -math.log1p(math.exp(-x))


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# Members (K=2, n=3): item 0 {1, 3} (mean 2, var 1), item 1 {4, 4} (mean 4, var 0),
# item 2 {0, 4} (mean 2, var 4). UWO λ=0.5 gives [1.5, 4.0, 0.0].
M = np.array([[1.0, 4.0, 0.0], [3.0, 4.0, 4.0]])
UWO = [1.5, 4.0, 0.0]


# --- known values ---------------------------------------------------------------------


def test_none_is_the_aggregation():
    assert RewardRule.parse("uwo", lam=0.5).apply(M).tolist() == UWO
    two = np.array([[1.0, 3.0], [3.0, 1.0]])  # both items: mean 2, var 1
    assert RewardRule.parse("uwo", lam=0.5).apply(two).tolist() == [1.5, 1.5]
    assert RewardRule.parse("uwo", lam=2.0).apply(two).tolist() == [0.0, 0.0]
    assert RewardRule.parse("wco").apply(two).tolist() == [1.0, 1.0]


def test_mean_and_lcb_beta0_with_none_equal_estimate_mean():
    rng = np.random.default_rng(0)
    est = RewardEstimate.from_members(rng.normal(size=(4, 9)))
    np.testing.assert_array_equal(RewardRule().apply(est), est.mean)
    np.testing.assert_array_equal(RewardRule.parse("mean").apply(est.members), est.mean)
    np.testing.assert_allclose(RewardRule.parse("lcb", beta=0.0).apply(est), est.mean, rtol=0)
    # and LCB with β > 0 is not the mean
    assert not np.allclose(RewardRule.parse("lcb", beta=1.0).apply(est), est.mean)


def test_centered_logsigmoid_by_group_hand_values():
    rule = RewardRule.parse("uwo", lam=0.5, transform="centered_logsigmoid")
    out = rule.apply(M, groups=["a", "a", "b"])
    # group a: rewards 1.5, 4.0 -> median 2.75, d = ∓1.25; item 2 alone -> log σ(0)
    np.testing.assert_allclose(out, [logsig(-1.25), logsig(1.25), -math.log(2.0)], rtol=1e-14)


def test_centered_logsigmoid_reference_median_vs_mean():
    one = np.array([[0.0, 1.0, 5.0]])  # one member: rewards 0, 1, 5 (median 1, mean 2)
    g = ["p", "p", "p"]
    med = RewardRule.parse(transform="centered_logsigmoid").apply(one, groups=g)
    avg = RewardRule.parse(transform="centered_logsigmoid", reference="mean").apply(one, groups=g)
    np.testing.assert_allclose(med, [logsig(-1.0), logsig(0.0), logsig(4.0)], rtol=1e-14)
    np.testing.assert_allclose(avg, [logsig(-2.0), logsig(-1.0), logsig(3.0)], rtol=1e-14)


def test_centered_logsigmoid_explicit_references_win_over_groups():
    rule = RewardRule.parse("uwo", lam=0.5, transform="centered_logsigmoid")
    refs = np.array([0.5, 5.0, -1.0])
    want = [logsig(1.0), logsig(-1.0), logsig(1.0)]
    np.testing.assert_allclose(rule.apply(M, references=refs), want, rtol=1e-14)
    np.testing.assert_allclose(
        rule.apply(M, references=refs, groups=["a", "a", "b"]), want, rtol=1e-14
    )


def test_par_by_group_hand_values():
    rule = RewardRule.parse("uwo", lam=0.5, transform="par")
    out = rule.apply(M, groups=["a", "a", "b"])
    np.testing.assert_allclose(out, [sig(-2.5), sig(2.5), 0.5], rtol=1e-14)
    one = np.array([[0.0, 1.0, 5.0]])
    out3 = RewardRule.parse(transform="par").apply(one, groups=["p"] * 3)
    want = [
        (sig(-1.0) + sig(-5.0)) / 2,
        (sig(1.0) + sig(-4.0)) / 2,
        (sig(5.0) + sig(4.0)) / 2,
    ]
    np.testing.assert_allclose(out3, want, rtol=1e-14)


def test_par_group_of_one_is_half():
    rule = RewardRule.parse("wco", transform="par")
    out = rule.apply(np.array([[7.0, -3.0, 2.0]]), groups=["x", "y", "z"])
    assert out.tolist() == [0.5, 0.5, 0.5]


def test_par_explicit_references_1d_is_one_per_item_and_2d():
    rule = RewardRule.parse("uwo", lam=0.5, transform="par")
    # (n,) is one reference per item (not n shared references)
    out = rule.apply(M, references=np.array([1.5, 3.0, 1.0]))
    np.testing.assert_allclose(out, [0.5, sig(1.0), sig(-1.0)], rtol=1e-14)
    refs2 = np.array([[0.5, 2.5], [4.0, 4.0], [0.0, -2.0]])
    out2 = rule.apply(M, references=refs2)
    want = [(sig(1.0) + sig(-1.0)) / 2, 0.5, (0.5 + sig(2.0)) / 2]
    np.testing.assert_allclose(out2, want, rtol=1e-14)


def test_par_groups_equal_explicit_references_of_other_members():
    rng = np.random.default_rng(3)
    members = rng.normal(size=(3, 12))
    groups = [i // 4 for i in range(12)]  # 3 prompts x 4 candidates
    rule = RewardRule.parse("softmin", beta=0.7, transform="par")
    r = rule.aggregation.apply(members)
    refs = np.array(
        [[r[j] for j in range(12) if groups[j] == groups[i] and j != i] for i in range(12)]
    )
    np.testing.assert_allclose(
        rule.apply(members, groups=groups), rule.apply(members, references=refs), rtol=1e-15
    )
    # and shuffling the items (groups not contiguous) permutes the output the same way
    perm = rng.permutation(12)
    np.testing.assert_allclose(
        rule.apply(members[:, perm], groups=[groups[p] for p in perm]),
        rule.apply(members, groups=groups)[perm],
        rtol=1e-15,
    )


def test_running_mean_two_calls_with_one_state():
    rule = RewardRule.parse(transform="running_mean")
    state = rule.new_state()
    # first batch: no history, centred on its own mean 2
    assert rule.apply(np.array([[1.0, 2.0, 3.0]]), state=state).tolist() == [-1.0, 0.0, 1.0]
    assert (state.mean, state.count) == (2.0, 3)
    # second batch: centred on the mean of the first (2)
    assert rule.apply(np.array([[5.0, 7.0]]), state=state).tolist() == [3.0, 5.0]
    assert state.mean == pytest.approx((1 + 2 + 3 + 5 + 7) / 5) and state.count == 5
    out3 = rule.apply(np.array([[3.6]]), state=state)
    assert out3[0] == pytest.approx(0.0, abs=1e-12)


def test_running_mean_ema_and_default_state():
    rule = RewardRule.parse(transform="running_mean", momentum=0.5)
    state = RunningMeanCenter(momentum=0.5)
    rule.apply(np.array([[1.0, 2.0, 3.0]]), state=state)
    assert rule.apply(np.array([[5.0, 7.0]]), state=state).tolist() == [3.0, 5.0]
    assert state.mean == 2.0 + 0.5 * (6.0 - 2.0)
    # no state: every call is a warm-up on its own mean
    plain = RewardRule.parse(transform="running_mean")
    assert plain.apply(np.array([[5.0, 7.0]])).tolist() == [-1.0, 1.0]
    assert plain.apply(np.array([[5.0, 7.0]])).tolist() == [-1.0, 1.0]
    # an empty batch leaves a fresh state untouched
    s = plain.new_state()
    assert plain.apply(np.zeros((2, 0)), state=s).shape == (0,)
    assert s.count == 0


def test_running_mean_state_mismatch():
    rule = RewardRule.parse(transform="running_mean", momentum=0.2)
    with pytest.raises(ValueError, match="momentum"):
        rule.apply(np.ones((1, 2)), state=RunningMeanCenter())
    with pytest.raises(TypeError, match="RunningMeanCenter"):
        rule.apply(np.ones((1, 2)), state=0.0)  # type: ignore[arg-type]


def test_estimate_and_members_array_agree():
    rng = np.random.default_rng(5)
    est = RewardEstimate.from_members(rng.normal(size=(3, 6)))
    rule = RewardRule.parse("brme", lam=0.3, transform="centered_logsigmoid")
    g = [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(rule.apply(est, groups=g), rule.apply(est.members, groups=g))
    with pytest.raises(ValueError, match=r"\(K, n\)"):
        rule.apply(est.mean, groups=g)


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["centered_logsigmoid", "par"])
def test_missing_groups_and_references(name):
    rule = RewardRule.parse("uwo", transform=name)
    assert rule.needs_groups
    with pytest.raises(ValueError, match="reference per prompt") as info:
        rule.apply(M)
    assert "references=" in str(info.value) and "groups=" in str(info.value)


def test_needs_groups_and_state():
    assert not RewardRule().needs_groups
    assert not RewardRule.parse(transform="running_mean").needs_groups
    assert RewardRule.parse(transform="running_mean").needs_state
    assert not RewardRule.parse(transform="par").needs_state


@pytest.mark.parametrize("name", TRANSFORMS)
def test_length_mismatch_names_both_lengths(name):
    rule = RewardRule.parse(transform=name)
    with pytest.raises(ValueError, match=r"2 entries for 3 rewards"):
        rule.apply(M, groups=["a", "b"])
    with pytest.raises(ValueError, match=r"\(4,\) for 3 rewards"):
        rule.apply(M, references=np.zeros(4))
    with pytest.raises(ValueError, match=r"\(2, 1\) for 3 rewards"):
        rule.apply(M, references=np.zeros((2, 1)))


def test_centered_logsigmoid_rejects_2d_references():
    rule = RewardRule.parse(transform="centered_logsigmoid")
    with pytest.raises(ValueError, match="one reference per item"):
        rule.apply(M, references=np.zeros((3, 2)))


@pytest.mark.parametrize(
    ("make", "bad"),
    [
        (lambda: Transform("sigmoid"), "sigmoid"),
        (lambda: Transform.parse("Centred_LogSigmoid"), "centred_logsigmoid"),
        (lambda: Transform("centered_logsigmoid", reference="mode"), "mode"),
        (lambda: Transform("par", reference="mean"), "reference='mean'"),
        (lambda: Transform("none", momentum=0.5), "momentum=0.5"),
        (lambda: Transform("centered_logsigmoid", momentum=0.1), "momentum=0.1"),
        (lambda: Transform("running_mean", reference="mean"), "reference='mean'"),
        (lambda: Transform("running_mean", momentum=0.0), "0.0"),
        (lambda: Transform("running_mean", momentum=1.5), "1.5"),
        (lambda: Transform("running_mean", momentum=float("nan")), "nan"),
        (lambda: Transform("running_mean", momentum=True), "True"),
        (lambda: Transform("running_mean", momentum="0.1"), "'0.1'"),
        (lambda: RewardRule.parse("ucb"), "ucb"),
        (lambda: RewardRule.parse("lcb", lam=1.0), "lam=1.0"),
        (lambda: RewardRule.parse("uwo", lam=-1.0), "-1.0"),
        (lambda: RewardRule.parse(transform="pra"), "pra"),
        (lambda: RewardRule("uwo"), "'uwo'"),  # type: ignore[arg-type]
        (lambda: RewardRule(transform="par"), "'par'"),  # type: ignore[arg-type]
    ],
)
def test_invalid_names_and_params(make, bad):
    with pytest.raises(ConfigError) as info:
        make()
    assert bad in str(info.value)


def test_unknown_name_lists_valid_ones_and_suggests():
    with pytest.raises(ConfigError) as info:
        Transform.parse("centered_logsigmod")
    msg = str(info.value)
    assert all(t in msg for t in TRANSFORMS)
    assert "Did you mean 'centered_logsigmoid'" in msg


@pytest.mark.parametrize(
    ("d", "bad"),
    [
        ({"aggregation": {"name": "mean"}, "transfrom": {"name": "par"}}, "transfrom"),
        ({"aggregation": {"name": "uwo", "lamda": 1.0}}, "lamda"),
        ({"transform": {"name": "par", "refs": 3}}, "refs"),
        ({"transform": {"name": "none", "reference": "median"}}, "reference"),
        ({"transform": {"name": "par", "momentum": None}}, "momentum"),
        ({"transform": {"reference": "median"}}, "no 'name'"),
        ({"transform": {"name": "softmax"}}, "softmax"),
        ({"aggregation": "uwo"}, "'uwo'"),
        ({"transform": "par"}, "'par'"),
    ],
)
def test_from_dict_rejects_bad_keys_and_values(d, bad):
    with pytest.raises(ConfigError) as info:
        RewardRule.from_dict(d)
    assert bad in str(info.value)


# --- serialisation --------------------------------------------------------------------

_PARAM = {"uwo": "lam", "brme": "lam", "lcb": "beta", "softmin": "beta"}


@st.composite
def rules(draw):
    agg = draw(st.sampled_from(AGGREGATIONS))
    kwargs = {}
    key = _PARAM.get(agg)
    if key is not None and draw(st.booleans()):
        lo, hi = (1e-3, 1.0) if agg in ("brme", "softmin") else (0.0, 10.0)
        kwargs[key] = draw(st.floats(lo, hi, allow_nan=False))
    name = draw(st.sampled_from(TRANSFORMS))
    tkw = {}
    if name == "centered_logsigmoid":
        tkw["reference"] = draw(st.sampled_from(["median", "mean", "MEAN"]))
    if name == "running_mean":
        tkw["momentum"] = draw(st.none() | st.floats(1e-6, 1.0))
    return RewardRule.parse(
        agg.upper() if draw(st.booleans()) else agg, **kwargs, transform=name, **tkw
    )


@settings(max_examples=200, deadline=None)
@given(rules())
def test_dict_round_trip_property(rule):
    d = rule.to_dict()
    assert set(d) == {"aggregation", "transform"}
    back = RewardRule.from_dict(json.loads(json.dumps(d)))
    assert back == rule
    assert back.to_dict() == d
    assert back.label() == rule.label()


@pytest.mark.parametrize("agg", AGGREGATIONS)
@pytest.mark.parametrize("name", TRANSFORMS)
def test_dict_round_trip_every_combination(agg, name):
    rule = RewardRule(Aggregation(agg), Transform(name))
    text = json.dumps(rule.to_dict())
    back = RewardRule.from_dict(json.loads(text))
    assert back == rule
    assert back.aggregation.params() == Aggregation(agg).params()  # defaults filled in
    # the round-tripped rule computes the same rewards
    rng = np.random.default_rng(7)
    members = rng.normal(size=(3, 4))
    kw = {"groups": ["a", "a", "b", "b"]}
    np.testing.assert_array_equal(back.apply(members, **kw), rule.apply(members, **kw))


def test_dict_shapes_and_defaults():
    assert RewardRule().to_dict() == {
        "aggregation": {"name": "mean"},
        "transform": {"name": "none"},
    }
    rule = RewardRule.parse("UWO", lam=0.5, transform="Centered_LogSigmoid")
    assert rule.to_dict() == {
        "aggregation": {"name": "uwo", "lam": 0.5},
        "transform": {"name": "centered_logsigmoid", "reference": "median"},
    }
    assert RewardRule.parse(transform="running_mean").to_dict()["transform"] == {
        "name": "running_mean",
        "momentum": None,
    }
    assert RewardRule.from_dict({}) == RewardRule()
    assert RewardRule.from_dict({"aggregation": {"name": "wco"}}) == RewardRule.parse("wco")
    # default parameter filled in: the implicit and explicit default are the same rule
    assert RewardRule(Aggregation("uwo")) == RewardRule.parse("uwo", lam=0.5)


def test_labels():
    assert RewardRule().label() == "mean"
    assert RewardRule.parse("uwo", lam=0.5).label() == "UWO λ=0.5"
    assert RewardRule.parse("lcb", transform="par").label() == "LCB β=1 → PAR"
    assert (
        RewardRule.parse("wco", transform="centered_logsigmoid", reference="mean").label()
        == "WCO → centered log-sigmoid (ref=mean)"
    )
    assert RewardRule.parse(transform="running_mean", momentum=0.1).label() == (
        "mean → running mean (EMA 0.1)"
    )
    assert Transform("running_mean").label() == "running mean"


def test_frozen():
    rule = RewardRule()
    with pytest.raises(AttributeError):
        rule.transform = Transform("par")  # type: ignore[misc]
    with pytest.raises(AttributeError):
        rule.transform.name = "par"  # type: ignore[misc]


# --- properties -----------------------------------------------------------------------

_members = st.integers(1, 4).flatmap(
    lambda k: st.integers(1, 8).flatmap(
        lambda n: hnp.arrays(np.float64, (k, n), elements=st.floats(-5.0, 5.0))
    )
)


@settings(max_examples=150, deadline=None)
@given(_members, st.sampled_from(AGGREGATIONS), st.data())
def test_bounds_for_random_inputs(members, agg, data):
    n = members.shape[1]
    groups = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    cls = RewardRule.parse(agg, transform="centered_logsigmoid").apply(members, groups=groups)
    assert cls.shape == (n,)
    assert np.all(cls <= 0.0) and np.all(np.isfinite(cls))
    p = RewardRule.parse(agg, transform="par").apply(members, groups=groups)
    assert p.shape == (n,)
    assert np.all(p > 0.0) and np.all(p < 1.0)
    refs = data.draw(hnp.arrays(np.float64, (n, 2), elements=st.floats(-5.0, 5.0)))
    p2 = RewardRule.parse(agg, transform="par").apply(members, references=refs)
    assert np.all(p2 > 0.0) and np.all(p2 < 1.0)


@settings(max_examples=100, deadline=None)
@given(_members)
def test_transforms_preserve_order_within_a_group(members):
    # All items in one group: both transforms are increasing functions of r.
    n = members.shape[1]
    rule = RewardRule.parse("lcb")
    r = rule.apply(members)
    for name in ("centered_logsigmoid", "par"):
        out = RewardRule.parse("lcb", transform=name).apply(members, groups=[0] * n)
        order = np.argsort(r, kind="stable")
        assert np.all(np.diff(out[order]) >= -1e-12)


def test_docstring_examples():
    result = doctest.testmod(rule_mod)
    assert result.attempted > 0
    assert result.failed == 0
