"""Best-of-n from one pool: the unbiased order-statistics estimator and KL(n).

Why: the overoptimisation curve needs the *expected* gold reward of best-of-n
for every n up to N. Drawing many random n-subsets of the pool is slow and
noisy; the expectation over all C(N, n) subsets has a closed form. Sort the
pool ascending by the proxy reward: the candidate at rank i (1-based) is the
proxy argmax of a uniformly random n-subset with probability

    w_i = C(i−1, n−1) / C(N, n)

(the subset must contain it and n−1 of the i−1 candidates below it). So
``E[value of best-of-n] = Σ_i w_i · value_(i)`` exactly, with no sampling
noise, as in Gao et al., "Scaling Laws for Reward Model Overoptimization".

Ties in the proxy are resolved as if best-of-n broke them uniformly at random:
each candidate's value is replaced by the mean value of its tie group before
weighting. That is exactly the expectation under random tie-breaking (a random
order inside each tie group, independent of the subset, puts every member of
the group at each of the group's ranks equally often), and it does not depend
on how the sort happens to order tied candidates.

Also here: ``KL(n) = log n − (n−1)/n``, the KL divergence of the best-of-n
distribution from the base policy (Gao et al.; exact for continuous rewards
without ties), the x-axis of the overoptimisation plot.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import gammaln

__all__ = [
    "best_of_n_weights",
    "expected_best_of_n",
    "expected_best_of_n_ragged",
    "kl_best_of_n",
]


def kl_best_of_n(n: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
    """KL divergence of best-of-n from the base policy: ``log n − (n−1)/n``.

    Vectorised; a scalar in gives a ``float`` out. ``n`` may be non-integer
    (the formula is smooth), but must be ``>= 1``.

    Example:
        >>> kl_best_of_n(1)
        0.0
        >>> round(kl_best_of_n(2), 6)
        0.193147
    """
    arr = np.asarray(n, dtype=np.float64)
    if np.any(np.isnan(arr)) or np.any(arr < 1):
        raise ValueError(f"n must be >= 1, got {n!r}.")
    kl = np.log(arr) - (arr - 1.0) / arr
    if kl.ndim == 0:
        return float(kl)
    return kl


def _check_n(N: int, n: int) -> None:
    for label, v in (("N", N), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"{label} must be an integer, got {v!r}.")
    if n < 1:
        raise ValueError(f"n == {n}, must be >= 1.")
    if n > N:
        raise ValueError(f"n == {n} exceeds the pool size N == {N}; need 1 <= n <= N.")


def best_of_n_weights(N: int, n: int) -> np.ndarray:
    """Probability that the rank-i candidate of N is the best of a random n-subset.

    Ranks are ascending (index 0 is the lowest proxy reward, index N−1 the
    highest): ``w[i−1] = C(i−1, n−1) / C(N, n)``. Computed in log space
    (``gammaln``) so large pools do not overflow; ranks below n get exact
    zeros; the weights sum to 1.

    Example:
        >>> (best_of_n_weights(4, 2) * 6).round(12).tolist()  # C(i-1, 1) / C(4, 2)
        [0.0, 1.0, 2.0, 3.0]
    """
    _check_n(N, n)
    N, n = int(N), int(n)
    w = np.zeros(N, dtype=np.float64)
    i = np.arange(n, N + 1, dtype=np.float64)  # ranks with nonzero weight
    log_num = gammaln(i) - gammaln(float(n)) - gammaln(i - n + 1.0)
    log_den = gammaln(N + 1.0) - gammaln(n + 1.0) - gammaln(N - n + 1.0)
    w[n - 1 :] = np.exp(log_num - log_den)
    # Remove the last rounding error so the weights are a distribution.
    return w / w.sum()


def _as_ns(ns: int | Sequence[int] | np.ndarray) -> tuple[list[int], bool]:
    scalar = np.ndim(ns) == 0
    arr = np.atleast_1d(np.asarray(ns))
    if arr.ndim != 1:
        raise ValueError(f"ns must be an int or a 1-D sequence of ints, got shape {arr.shape}.")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ns must be integers, got {ns!r}.")
    return [int(v) for v in arr], scalar


def _tie_averaged_sorted(proxy: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`(P, N)` values sorted ascending by proxy, averaged within proxy-tie groups."""
    P, N = proxy.shape
    order = np.argsort(proxy, axis=1, kind="stable")
    s = np.take_along_axis(proxy, order, axis=1)
    v = np.take_along_axis(values, order, axis=1)
    if v.size == 0:
        return v
    # A new group starts at column 0 of every row and wherever the proxy changes.
    starts = np.ones((P, N), dtype=bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    gid = np.cumsum(starts.ravel()) - 1  # global group ids, rows never share one
    n_groups = int(gid[-1]) + 1
    sums = np.bincount(gid, weights=v.ravel(), minlength=n_groups)
    counts = np.bincount(gid, minlength=n_groups)
    return (sums / counts)[gid].reshape(P, N)


def expected_best_of_n(
    proxy: np.ndarray,
    values: np.ndarray,
    ns: int | Sequence[int] | np.ndarray,
) -> np.ndarray:
    """Expected value of the candidate best-of-n picks by proxy, for every pool and n.

    Args:
        proxy: `(P, N)` proxy rewards: P pools (prompts) of N candidates.
        values: `(P, N)` the value to average for the picked candidate, e.g.
            the gold reward (the overoptimisation curve) or the proxy itself.
        ns: the n values, each in ``1..N``; an int gives a `(P,)` result.

    Returns:
        `(len(ns), P)` exact expectations over all n-subsets of each pool
        (uniformly random tie-breaking among equal proxy rewards; see the
        module docstring). ``n=1`` is the pool mean of ``values``; ``n=N`` is
        the value of the proxy argmax (mean over tied argmaxes).

    Example:
        >>> proxy = np.array([[0.1, 0.9, 0.5]])
        >>> gold = np.array([[1.0, 0.0, 2.0]])
        >>> expected_best_of_n(proxy, gold, [1, 2, 3]).ravel().round(6).tolist()
        [1.0, 0.666667, 0.0]
    """
    p = np.asarray(proxy, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(
            f"proxy must have shape (P, N) (pools x candidates), got {p.shape}; "
            "for one pool pass proxy[None, :]."
        )
    if v.shape != p.shape:
        raise ValueError(f"values must have the shape of proxy {p.shape}, got {v.shape}.")
    if np.isnan(p).any():
        raise ValueError("proxy contains NaN; best-of-n cannot rank NaN rewards.")
    n_list, scalar = _as_ns(ns)
    N = p.shape[1]
    if not n_list:
        return np.zeros((0, p.shape[0]))
    weights = np.stack([best_of_n_weights(N, n) for n in n_list])  # (len(ns), N)
    out = weights @ _tie_averaged_sorted(p, v).T
    return out[0] if scalar else out


def expected_best_of_n_ragged(
    proxy: Sequence[np.ndarray | Sequence[float]],
    values: Sequence[np.ndarray | Sequence[float]],
    ns: int | Sequence[int] | np.ndarray,
) -> np.ndarray:
    """:func:`expected_best_of_n` for pools of unequal size.

    Args:
        proxy: P 1-D arrays, pool p having ``N_p`` candidates.
        values: P 1-D arrays of the same lengths.
        ns: the n values; each must be ``<= min_p N_p`` (best-of-n is not
            defined for a pool with fewer than n candidates).

    Returns:
        `(len(ns), P)` (or `(P,)` for an int ``ns``), pool order kept.
    """
    if len(proxy) != len(values):
        raise ValueError(f"proxy has {len(proxy)} pools but values has {len(values)}.")
    pools = []
    for idx, (pp, vv) in enumerate(zip(proxy, values, strict=True)):
        a = np.asarray(pp, dtype=np.float64)
        b = np.asarray(vv, dtype=np.float64)
        if a.ndim != 1 or b.shape != a.shape:
            raise ValueError(
                f"pool {idx}: proxy and values must be 1-D of equal length, "
                f"got {a.shape} and {b.shape}."
            )
        pools.append((a, b))
    n_list, scalar = _as_ns(ns)
    out = np.empty((len(n_list), len(pools)), dtype=np.float64)
    sizes = np.array([a.shape[0] for a, _ in pools], dtype=np.int64)
    if n_list and len(pools):
        smallest = int(sizes.min())
        if max(n_list) > smallest:
            where = int(np.argmin(sizes))
            raise ValueError(
                f"n == {max(n_list)} exceeds the size of pool {where} ({smallest} "
                "candidates); every n must be <= the smallest pool size."
            )
    for size in np.unique(sizes):
        idx = np.flatnonzero(sizes == size)
        p = np.stack([pools[i][0] for i in idx])
        v = np.stack([pools[i][1] for i in idx])
        out[:, idx] = expected_best_of_n(p, v, n_list)
    return out[0] if scalar else out


def expected_best_of_n_padded(
    proxy: np.ndarray,
    values: np.ndarray,
    ns: Sequence[int] | np.ndarray,
) -> np.ndarray:
    """:func:`expected_best_of_n` for pools of unequal size stored left-aligned in
    `(P, N_max)` arrays, NaN after each pool's last candidate.

    A pool of ``N_p`` candidates supports the n up to ``N_p``: its entries for larger
    n are NaN (it enters only the n it supports). Returns `(len(ns), P)`.
    """
    p = np.asarray(proxy, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if p.ndim != 2 or v.shape != p.shape:
        raise ValueError(f"proxy and values must be (P, N) of one shape, got {p.shape}, {v.shape}.")
    n_list, _ = _as_ns(ns)
    sizes = (~np.isnan(v)).sum(axis=1)
    out = np.full((len(n_list), p.shape[0]), np.nan)
    for size in np.unique(sizes):
        rows = np.flatnonzero(sizes == size)
        ok = [j for j, n in enumerate(n_list) if n <= size]
        if not ok or size < 1:
            continue
        sub_p, sub_v = p[rows, :size], v[rows, :size]
        if np.isnan(sub_p).any() or np.isnan(v[rows, size:]).sum() != (p.shape[1] - size) * len(
            rows
        ):
            raise ValueError("pools must be left-aligned: known values first, NaN after them.")
        out[np.ix_(ok, rows)] = expected_best_of_n(sub_p, sub_v, [n_list[j] for j in ok])
    return out
