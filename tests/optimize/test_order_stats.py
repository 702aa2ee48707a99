"""Best-of-n order-statistics estimator against brute-force subset enumeration."""

from __future__ import annotations

import ast
import doctest
import itertools
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rewardhedge.optimize.order_stats as os_mod
from rewardhedge.optimize import (
    best_of_n_weights,
    expected_best_of_n,
    expected_best_of_n_ragged,
    kl_best_of_n,
)


def brute_force(proxy: np.ndarray, values: np.ndarray, n: int) -> float:
    """Mean over all n-subsets of the value best-of-n picks, ties broken uniformly."""
    total = 0.0
    count = 0
    for subset in itertools.combinations(range(len(proxy)), n):
        idx = np.array(subset)
        best = proxy[idx].max()
        tied = idx[proxy[idx] == best]
        total += values[tied].mean()
        count += 1
    assert count == math.comb(len(proxy), n)
    return total / count


# --- KL ----------------------------------------------------------------------------------


def test_kl_known_values():
    assert kl_best_of_n(1) == 0.0
    assert kl_best_of_n(2) == pytest.approx(math.log(2) - 0.5, rel=1e-15)
    assert kl_best_of_n(16) == pytest.approx(math.log(16) - 15 / 16, rel=1e-15)
    assert isinstance(kl_best_of_n(4), float)


def test_kl_vectorised_and_increasing():
    ns = np.arange(1, 2001)
    kl = kl_best_of_n(ns)
    assert isinstance(kl, np.ndarray) and kl.shape == ns.shape
    assert kl[0] == 0.0
    assert np.all(np.diff(kl) > 0)
    np.testing.assert_allclose(kl, np.log(ns) - (ns - 1) / ns)
    assert kl_best_of_n([1, 2]).tolist() == pytest.approx([0.0, math.log(2) - 0.5])


@pytest.mark.parametrize("bad", [0, 0.5, -3, float("nan"), [1, 0]])
def test_kl_rejects_n_below_one(bad):
    with pytest.raises(ValueError, match=">= 1"):
        kl_best_of_n(bad)


# --- weights ---------------------------------------------------------------------------


@pytest.mark.parametrize("N", [1, 2, 3, 5, 8, 13])
def test_weights_match_exact_binomials(N):
    for n in range(1, N + 1):
        w = best_of_n_weights(N, n)
        exact = [Fraction(math.comb(i - 1, n - 1), math.comb(N, n)) for i in range(1, N + 1)]
        np.testing.assert_allclose(w, [float(f) for f in exact], rtol=1e-12, atol=0)
        assert sum(exact) == 1
        assert np.all(w[: n - 1] == 0.0)  # exact zeros below rank n
        assert w.sum() == pytest.approx(1.0, abs=1e-14)


def test_weights_large_pool_no_overflow():
    N = 100_000
    for n in (1, 2, 64, 4096, N):
        w = best_of_n_weights(N, n)
        assert np.all(np.isfinite(w)) and np.all(w >= 0)
        assert w.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(best_of_n_weights(N, 1), 1.0 / N)
    assert best_of_n_weights(N, N)[-1] == 1.0
    # n=2: w_i = (i-1) / C(N, 2); check the top rank.
    assert best_of_n_weights(N, 2)[-1] == pytest.approx((N - 1) / math.comb(N, 2), rel=1e-9)


def test_weights_are_increasing_in_rank():
    w = best_of_n_weights(20, 5)
    assert np.all(np.diff(w[4:]) > 0)


@pytest.mark.parametrize(("N", "n"), [(5, 0), (5, 6), (0, 1), (5, -1)])
def test_weights_bad_sizes(N, n):
    with pytest.raises(ValueError, match="n =="):
        best_of_n_weights(N, n)


def test_weights_reject_non_integers():
    with pytest.raises(ValueError, match="integer"):
        best_of_n_weights(5, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="integer"):
        best_of_n_weights(5, True)  # type: ignore[arg-type]


# --- expected best-of-n vs brute force -------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [False, True])
def test_matches_brute_force(seed, ties):
    rng = np.random.default_rng(seed)
    P, N = 3, 7
    # Integer proxies in 0..2 give many ties.
    proxy = rng.integers(0, 3, size=(P, N)).astype(float) if ties else rng.normal(size=(P, N))
    gold = rng.normal(size=(P, N))
    ns = list(range(1, N + 1))
    got = expected_best_of_n(proxy, gold, ns)
    assert got.shape == (N, P)
    for p in range(P):
        for j, n in enumerate(ns):
            assert got[j, p] == pytest.approx(brute_force(proxy[p], gold[p], n), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    N=st.integers(1, 7),
)
def test_matches_brute_force_property(data, N):
    levels = data.draw(st.integers(1, 4))
    proxy = np.array(data.draw(st.lists(st.integers(0, levels), min_size=N, max_size=N)), float)
    gold = np.array(
        data.draw(
            st.lists(
                st.floats(-100, 100, allow_nan=False, allow_infinity=False),
                min_size=N,
                max_size=N,
            )
        )
    )
    got = expected_best_of_n(proxy[None], gold[None], list(range(1, N + 1)))[:, 0]
    want = [brute_force(proxy, gold, n) for n in range(1, N + 1)]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_independent_of_candidate_order_with_ties():
    rng = np.random.default_rng(7)
    proxy = np.array([[1.0, 2.0, 2.0, 0.0, 2.0, 1.0]])
    gold = rng.normal(size=(1, 6))
    ns = [1, 2, 3, 6]
    base = expected_best_of_n(proxy, gold, ns)
    for _ in range(5):
        perm = rng.permutation(6)
        np.testing.assert_allclose(expected_best_of_n(proxy[:, perm], gold[:, perm], ns), base)


def test_endpoints():
    rng = np.random.default_rng(8)
    proxy = rng.normal(size=(5, 9))
    gold = rng.normal(size=(5, 9))
    out = expected_best_of_n(proxy, gold, [1, 9])
    np.testing.assert_allclose(out[0], gold.mean(axis=1))
    np.testing.assert_allclose(out[1], gold[np.arange(5), proxy.argmax(axis=1)])
    # Ties at the top: n=N gives the mean over the tied argmaxes.
    tied = expected_best_of_n(np.array([[3.0, 1.0, 3.0]]), np.array([[10.0, -5.0, 20.0]]), 3)
    assert tied.tolist() == [15.0]


def test_proxy_against_itself_is_increasing_in_n():
    rng = np.random.default_rng(9)
    proxy = rng.normal(size=(4, 30))
    out = expected_best_of_n(proxy, proxy, range(1, 31))
    assert np.all(np.diff(out, axis=0) > 0)


def test_all_tied_pool_gives_the_mean_for_every_n():
    gold = np.array([[1.0, 5.0, -3.0, 7.0]])
    out = expected_best_of_n(np.zeros((1, 4)), gold, [1, 2, 3, 4])
    np.testing.assert_allclose(out[:, 0], 2.5)


def test_hand_computed_small_pool():
    # Sorted by proxy the gold values are [4, 0, 8]; n=2 weights [0, 1/3, 2/3].
    proxy = np.array([[0.5, 0.1, 0.9]])
    gold = np.array([[0.0, 4.0, 8.0]])
    out = expected_best_of_n(proxy, gold, [1, 2, 3])[:, 0]
    np.testing.assert_allclose(out, [4.0, 16.0 / 3.0, 8.0])


def test_scalar_and_empty_ns():
    proxy = np.arange(6.0).reshape(2, 3)
    assert expected_best_of_n(proxy, proxy, 2).shape == (2,)
    assert expected_best_of_n(proxy, proxy, []).shape == (0, 2)
    assert expected_best_of_n(proxy, proxy, np.array([1, 3])).shape == (2, 2)
    assert expected_best_of_n(np.zeros((0, 3)), np.zeros((0, 3)), [1, 2]).shape == (2, 0)


def test_input_errors():
    proxy = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"\(P, N\)"):
        expected_best_of_n(np.zeros(3), np.zeros(3), [1])
    with pytest.raises(ValueError, match="shape of proxy"):
        expected_best_of_n(proxy, np.zeros((2, 4)), [1])
    with pytest.raises(ValueError, match="exceeds"):
        expected_best_of_n(proxy, proxy, [4])
    with pytest.raises(ValueError, match="integers"):
        expected_best_of_n(proxy, proxy, [1.5])
    with pytest.raises(ValueError, match="NaN"):
        expected_best_of_n(np.array([[0.0, np.nan]]), np.zeros((1, 2)), [1])


# --- ragged pools ------------------------------------------------------------------------


def test_ragged_matches_per_pool_and_brute_force():
    rng = np.random.default_rng(10)
    sizes = [5, 3, 6, 3, 4]
    proxy = [rng.integers(0, 3, size=s).astype(float) for s in sizes]
    gold = [rng.normal(size=s) for s in sizes]
    ns = [1, 2, 3]
    out = expected_best_of_n_ragged(proxy, gold, ns)
    assert out.shape == (3, 5)
    for p in range(5):
        single = expected_best_of_n(proxy[p][None], gold[p][None], ns)[:, 0]
        np.testing.assert_allclose(out[:, p], single)
        for j, n in enumerate(ns):
            assert out[j, p] == pytest.approx(brute_force(proxy[p], gold[p], n), abs=1e-12)
    assert expected_best_of_n_ragged(proxy, gold, 2).shape == (5,)


def test_ragged_errors():
    with pytest.raises(ValueError, match="pool 1"):
        expected_best_of_n_ragged([[1.0, 2.0], [1.0]], [[0.0, 0.0], [0.0, 0.0]], [1])
    with pytest.raises(ValueError, match="smallest pool"):
        expected_best_of_n_ragged([[1.0, 2.0, 3.0], [1.0, 2.0]], [[0, 0, 0], [0, 0]], [3])
    with pytest.raises(ValueError, match="2 pools"):
        expected_best_of_n_ragged([[1.0], [2.0]], [[1.0]], [1])


# --- docs and dependencies ------------------------------------------------------------


def test_docstring_examples():
    result = doctest.testmod(os_mod)
    assert result.attempted > 0
    assert result.failed == 0


def test_imports_no_torch():
    folder = Path(os_mod.__file__).parent
    for path in (folder / "order_stats.py", folder / "scaling.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                for name in names:
                    assert name.split(".")[0] != "torch", f"{path.name} imports {name}"
