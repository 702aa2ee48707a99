"""Conservative ensemble aggregations against hand-computed values and properties."""

from __future__ import annotations

import doctest
import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import rewardhedge.uncertainty.aggregation as agg_mod
from rewardhedge.errors import ConfigError
from rewardhedge.types import RewardEstimate
from rewardhedge.uncertainty import AGGREGATIONS, Aggregation, aggregate

# --- known answers --------------------------------------------------------------------

# Two members, two items: item 0 has members {1, 3}, item 1 has {0, 0}.
TWO = np.array([[1.0, 0.0], [3.0, 0.0]])


def test_hand_computed_two_members():
    assert aggregate(TWO, "mean").tolist() == [2.0, 0.0]
    assert aggregate(TWO, "wco").tolist() == [1.0, 0.0]
    # var (ddof=0) of {1, 3} is 1, std is 1.
    assert aggregate(TWO, "uwo").tolist() == [1.5, 0.0]  # 2 - 0.5 * 1
    assert aggregate(TWO, "uwo", lam=2.0).tolist() == [0.0, 0.0]
    assert aggregate(TWO, "lcb").tolist() == [1.0, 0.0]  # 2 - 1 * 1
    assert aggregate(TWO, "lcb", beta=0.5).tolist() == [1.5, 0.0]
    assert aggregate(TWO, "brme").tolist() == [1.5, 0.0]  # 0.5 * 2 + 0.5 * 1
    assert aggregate(TWO, "brme", lam=0.25).tolist() == [1.25, 0.0]
    # soft-min β=1: -log((e^-1 + e^-3) / 2)
    want = -math.log((math.exp(-1.0) + math.exp(-3.0)) / 2.0)
    out = aggregate(TWO, "softmin")
    assert out[0] == pytest.approx(want, rel=1e-14)
    assert out[1] == 0.0


def test_hand_computed_three_members_population_variance():
    r = np.array([[0.0], [3.0], [6.0]])  # mean 3, var (ddof=0) 6, std sqrt(6)
    assert aggregate(r, "uwo", lam=0.25)[0] == pytest.approx(3.0 - 0.25 * 6.0)
    assert aggregate(r, "lcb", beta=2.0)[0] == pytest.approx(3.0 - 2.0 * math.sqrt(6.0))
    assert aggregate(r, "brme", lam=0.2)[0] == pytest.approx(0.2 * 3.0 + 0.8 * 0.0)
    # ddof=1 would give var 9: make sure that is not what we compute.
    assert aggregate(r, "uwo", lam=1.0)[0] != pytest.approx(3.0 - 9.0)


def test_matches_reward_estimate_fields():
    rng = np.random.default_rng(0)
    members = rng.normal(size=(5, 7))
    est = RewardEstimate.from_members(members)
    np.testing.assert_allclose(aggregate(est, "mean"), est.mean)
    np.testing.assert_allclose(aggregate(est, "uwo", lam=0.7), est.mean - 0.7 * est.epistemic)
    np.testing.assert_allclose(aggregate(est, "lcb", beta=1.3), est.lower(1.3))
    np.testing.assert_allclose(aggregate(members, "wco"), members.min(axis=0))


def test_softmin_against_naive_formula_and_limits():
    rng = np.random.default_rng(1)
    r = rng.normal(size=(4, 6))
    for beta in (0.3, 1.0, 5.0):
        naive = -beta * np.log(np.mean(np.exp(-r / beta), axis=0))
        np.testing.assert_allclose(aggregate(r, "softmin", beta=beta), naive, rtol=1e-12)
    # β → 0 is the minimum, β → ∞ the mean.
    np.testing.assert_allclose(aggregate(r, "softmin", beta=1e-4), r.min(axis=0), atol=1e-3)
    np.testing.assert_allclose(aggregate(r, "softmin", beta=1e5), r.mean(axis=0), atol=1e-4)


def test_softmin_is_stable_for_large_rewards():
    r = np.array([[1e4, -1e4], [1e4 + 1.0, -1e4 + 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = aggregate(r, "softmin", beta=0.01)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, [1e4 + 0.01 * math.log(2.0), -1e4 + 0.01 * math.log(2.0)])


# --- properties -------------------------------------------------------------------------

ALL_CONFIGS = [
    Aggregation("mean"),
    Aggregation("wco"),
    Aggregation("uwo"),
    Aggregation("uwo", lam=3.0),
    Aggregation("lcb"),
    Aggregation("lcb", beta=0.0),
    Aggregation("brme"),
    Aggregation("brme", lam=0.0),
    Aggregation("brme", lam=1.0),
    Aggregation("softmin"),
    Aggregation("softmin", beta=0.05),
]

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(row=hnp.arrays(np.float64, st.integers(1, 8), elements=finite))
def test_single_member_is_returned_unchanged(row):
    members = row[None, :]
    for agg in ALL_CONFIGS:
        out = agg.apply(members)
        assert out.shape == row.shape
        np.testing.assert_array_equal(out, row, err_msg=agg.label())


@settings(max_examples=60, deadline=None)
@given(
    members=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 5)),
        elements=finite,
    )
)
def test_ordering_between_min_and_mean(members):
    mean = members.mean(axis=0)
    lo = members.min(axis=0)
    tol = 1e-9 * (1.0 + np.abs(members).max())
    for agg in ALL_CONFIGS:
        out = agg.apply(members)
        assert out.shape == mean.shape
        assert np.all(out <= mean + tol), agg.label()
        if agg.name in ("wco", "brme", "softmin"):
            assert np.all(out >= lo - tol), agg.label()


@settings(max_examples=40, deadline=None)
@given(
    value=finite,
    k=st.integers(1, 7),
    n=st.integers(1, 4),
)
def test_agreeing_members_give_their_common_value(value, k, n):
    members = np.full((k, n), value)
    for agg in ALL_CONFIGS:
        np.testing.assert_allclose(agg.apply(members), value, rtol=1e-12, atol=1e-12)


def test_conservatism_increases_with_parameter():
    rng = np.random.default_rng(2)
    r = rng.normal(size=(5, 50))
    for name, grid in (("uwo", [0, 0.5, 1, 4]), ("lcb", [0, 0.5, 1, 4])):
        key = "lam" if name == "uwo" else "beta"
        outs = [aggregate(r, name, **{key: g}) for g in grid]
        for a, b in itertools.pairwise(outs):
            assert np.all(b <= a)
    # BRME: a *smaller* λ is more conservative; soft-min: a *smaller* β is.
    brme = [aggregate(r, "brme", lam=g) for g in (1.0, 0.5, 0.0)]
    soft = [aggregate(r, "softmin", beta=g) for g in (10.0, 1.0, 0.1)]
    for seq in (brme, soft):
        for a, b in itertools.pairwise(seq):
            assert np.all(b <= a + 1e-12)


def test_lambda_and_beta_scale_differently():
    """LCB is scale-equivariant, UWO is not: λ multiplies a variance, β a std."""
    rng = np.random.default_rng(3)
    r = rng.normal(size=(4, 10))
    c = 10.0
    np.testing.assert_allclose(aggregate(c * r, "lcb"), c * aggregate(r, "lcb"))
    assert not np.allclose(aggregate(c * r, "uwo"), c * aggregate(r, "uwo"))
    # With spread s, UWO λ subtracts λ·s² and LCB β subtracts β·s.
    s2 = r.var(axis=0)
    np.testing.assert_allclose(
        r.mean(axis=0) - aggregate(c * r, "uwo", lam=0.5) / c, 0.5 * c * s2, rtol=1e-10
    )


def test_axis_argument():
    rng = np.random.default_rng(4)
    r = rng.normal(size=(3, 5))
    cube = rng.normal(size=(2, 5, 3))
    for agg in ALL_CONFIGS:
        np.testing.assert_allclose(agg.apply(r.T, axis=1), agg.apply(r))
        np.testing.assert_allclose(agg.apply(r.T, axis=-1), agg.apply(r))
        out = agg.apply(cube, axis=-1)
        assert out.shape == (2, 5)
        np.testing.assert_allclose(out[1], agg.apply(cube[1].T))


def test_empty_members_axis_is_an_error():
    with pytest.raises(ValueError, match="no members"):
        aggregate(np.zeros((0, 3)), "mean")


# --- parsing, labels, serialisation ------------------------------------------------


def test_names_are_the_documented_ones():
    assert AGGREGATIONS == ("mean", "wco", "uwo", "lcb", "brme", "softmin")


def test_parse_is_case_insensitive_and_validates():
    assert Aggregation.parse(" UWO ", lam=0.3) == Aggregation("uwo", lam=0.3)
    with pytest.raises(ConfigError, match=r"must be one of.*Did you mean 'wco'"):
        Aggregation.parse("wcoo")
    with pytest.raises(ConfigError, match="must be one of"):
        Aggregation("Mean")  # the constructor takes canonical names only
    with pytest.raises(ConfigError, match="must be one of"):
        Aggregation.parse(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("lcb", {"lam": 1.0}, "does not use 'lam'.*takes only 'beta'"),
        ("uwo", {"beta": 1.0}, "does not use 'beta'.*takes only 'lam'"),
        ("mean", {"lam": 0.5}, "does not use 'lam'.*takes no parameter"),
        ("wco", {"beta": 0.5}, "does not use 'beta'"),
        ("brme", {"lam": 1.5}, r"must be in \[0, 1\]"),
        ("brme", {"lam": -0.1}, ">= 0"),
        ("uwo", {"lam": -1.0}, ">= 0"),
        ("lcb", {"beta": -0.5}, ">= 0"),
        ("softmin", {"beta": 0.0}, "must be > 0"),
        ("uwo", {"lam": float("nan")}, "finite"),
        ("lcb", {"beta": float("inf")}, "finite"),
        ("uwo", {"lam": True}, "number"),
        ("uwo", {"lam": "0.5"}, "number"),
    ],
)
def test_bad_parameters(name, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Aggregation.parse(name, **kwargs)
    with pytest.raises(ConfigError, match=match):
        Aggregation(name, **kwargs)


def test_edge_parameters_allowed():
    assert Aggregation.parse("brme", lam=0).params() == {"lam": 0.0}
    assert Aggregation.parse("brme", lam=1).params() == {"lam": 1.0}
    assert Aggregation.parse("lcb", beta=0).params() == {"beta": 0.0}
    assert Aggregation.parse("uwo", lam=np.float32(0.25)).lam == 0.25


def test_params_and_labels():
    assert Aggregation("mean").params() == {}
    assert Aggregation("wco").params() == {}
    assert Aggregation("uwo").params() == {"lam": 0.5}
    assert Aggregation("lcb").params() == {"beta": 1.0}
    assert Aggregation("brme").params() == {"lam": 0.5}
    assert Aggregation("softmin").params() == {"beta": 1.0}
    assert Aggregation("uwo", lam=2).params() == {"lam": 2.0}
    assert Aggregation("mean").label() == "mean"
    assert Aggregation("wco").label() == "WCO"
    assert Aggregation("uwo", lam=0.5).label() == "UWO λ=0.5"
    assert Aggregation("lcb").label() == "LCB β=1"
    assert Aggregation("brme", lam=0.25).label() == "BRME λ=0.25"
    assert Aggregation("softmin", beta=2).label() == "soft-min β=2"


def test_dict_round_trip():
    for agg in ALL_CONFIGS:
        d = agg.to_dict()
        back = Aggregation.from_dict(d)
        assert back.to_dict() == d
        assert back.params() == agg.params()
    assert Aggregation("uwo").to_dict() == {"name": "uwo", "lam": 0.5}
    assert Aggregation.from_dict({"name": "LCB", "beta": 2}) == Aggregation("lcb", beta=2.0)
    with pytest.raises(ConfigError, match=r"unknown key.*'lamda'"):
        Aggregation.from_dict({"name": "uwo", "lamda": 0.5})
    with pytest.raises(ConfigError, match="no 'name'"):
        Aggregation.from_dict({"lam": 0.5})


def test_aggregate_equals_apply():
    rng = np.random.default_rng(5)
    r = rng.normal(size=(4, 3))
    assert np.array_equal(aggregate(r, "brme", lam=0.3), Aggregation("brme", lam=0.3).apply(r))
    with pytest.raises(ConfigError):
        aggregate(r, "lcb", lam=0.3)


def test_frozen():
    agg = Aggregation("uwo")
    with pytest.raises(AttributeError):
        agg.lam = 1.0  # type: ignore[misc]


# --- docs and dependencies ------------------------------------------------------------


def test_docstring_examples():
    result = doctest.testmod(agg_mod)
    assert result.attempted > 0
    assert result.failed == 0


def test_imports_no_torch(module_imports):
    allowed_roots = {"__future__", "numpy", "scipy", "math", "dataclasses", "typing"}
    allowed_own = {"rewardhedge.types", "rewardhedge.errors"}
    folder = Path(agg_mod.__file__).parent
    for path in (folder / "aggregation.py", folder / "__init__.py"):
        for name in module_imports(path):
            root = name.split(".")[0]
            ok = (
                root in allowed_roots
                or name in allowed_own
                or name.startswith("rewardhedge.uncertainty")
            )
            assert ok, f"{path.name} imports {name}"
