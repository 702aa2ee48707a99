"""Credit assignment: one reward per solution from the rewards of its steps.

A process reward model (PRM) scores every step ``r_1 … r_T`` of a solution; a
search or an RL update needs one number per solution. The choice matters
because a policy optimises whatever the aggregation rewards:

=======  ==================================================  ===================================
kind     solution reward                                     what it rewards
=======  ==================================================  ===================================
sum      ``Σ_t r_t``                                         more steps, whatever they are
mean     ``(1/T) Σ_t r_t``                                   a high *share* of good steps
min      ``min_t r_t``                                       the weakest step (PURE's min-form)
softmin  ``Σ_t w_t r_t``, ``w = softmax(−r / τ)``            the weak steps, smoothly
last     ``r_T``                                             the final step only
=======  ==================================================  ===================================

Why min: with ``sum``, every extra step the PRM finds plausible adds reward,
so a policy learns to pile up cheap correct steps ("padding") — appending any
step with ``r > 0`` strictly raises the sum, and a wrong solution padded long
enough outscores a short correct one. ``mean`` dilutes one wrong step among
many easy ones, which padding also exploits. ``min`` — Cheng et al., "Stop
Summation: Min-Form Credit Assignment Is All Process Reward Model Needs for
Reasoning" (PURE) — values a solution by its worst step: a chain of reasoning
is only as good as its weakest link, and appending a step never raises it
(appending one at least as good as the worst leaves it unchanged).

``softmin`` is the form PURE trains with: the step rewards weighted by
``softmax(−r/τ)``, a weighted mean that puts most weight on the lowest
rewards. It lies between ``min`` and ``mean``, tends to ``min`` as ``τ → 0``
and to ``mean`` as ``τ → ∞``; ``τ`` is in reward units (PURE uses 0.1 on
rewards in about [−1, 1]). ``last`` is the "outcome-like" choice of scoring
only the final step.

Shapes: steps lie along the last axis. Member rows come for free: an
ensemble's `(m, T)` step rewards for one solution give `(m,)` solution
rewards, one per member, so a conservative aggregation over the members
(:mod:`rewardhedge.uncertainty.aggregation`) can run afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rewardhedge.config import Option
from rewardhedge.errors import ConfigError

__all__ = ["DEFAULT_SOFTMIN_TEMPERATURE", "CreditKind", "aggregate_steps", "pad_ragged"]

DEFAULT_SOFTMIN_TEMPERATURE = 0.1
"""PURE's temperature for the soft-min weights, in reward units."""


class CreditKind(Option):
    """How step rewards become one reward per solution (see the module docstring)."""

    SUM = "sum"
    """``Σ_t r_t``: the usual return; rewarded by padding with plausible steps."""
    MEAN = "mean"
    """``(1/T) Σ_t r_t``: the average step; dilutes a wrong step among easy ones."""
    MIN = "min"
    """``min_t r_t``: the worst step (PURE, "Stop Summation: min-form credit assignment")."""
    SOFTMIN = "softmin"
    """``Σ_t softmax(−r/τ)_t · r_t``: PURE's smooth min (``min`` as τ → 0, ``mean`` as τ → ∞)."""
    LAST = "last"
    """``r_T``: the final step's reward only."""


def pad_ragged(rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack ragged step rewards into a padded array and their lengths.

    Args:
        rows: ``n`` arrays of shape `(..., T_i)` that share their leading shape
            `L` (`()` for plain step rewards, `(m,)` for an ensemble's members).

    Returns:
        ``(padded, lengths)``: `(*L, n, max T_i)` float64 with NaN in the padding,
        and `(n,)` int lengths ``T_i``.

    Raises:
        ValueError: no rows, or rows whose leading shapes differ.
    """
    arrays = [np.asarray(r, dtype=np.float64) for r in rows]
    if not arrays:
        raise ValueError("step rewards: got no solutions (an empty list).")
    lead = arrays[0].shape[:-1]
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise ValueError(f"step rewards: solution {i} is a scalar, not an array of steps.")
        if a.shape[:-1] != lead:
            raise ValueError(
                f"step rewards: solution {i} has shape {a.shape}, but solution 0 has "
                f"leading shape {lead}; every solution needs the same member rows."
            )
    lengths = np.array([a.shape[-1] for a in arrays], dtype=np.int64)
    padded = np.full((*lead, len(arrays), int(lengths.max())), np.nan)  # (*L, n, T_max)
    for i, a in enumerate(arrays):
        padded[..., i, : a.shape[-1]] = a
    return padded, lengths


def _step_mask(shape: tuple[int, ...], lengths: np.ndarray | Sequence[int] | None) -> np.ndarray:
    """`shape`-shaped bool mask of the real steps (``t < length``)."""
    t_max = shape[-1]
    if lengths is None:
        return np.ones(shape, dtype=bool)
    lens = np.asarray(lengths)
    if lens.dtype.kind not in "iu":
        raise ValueError(f"lengths must be integers, got dtype {lens.dtype}.")
    try:
        lens = np.broadcast_to(lens, shape[:-1])
    except ValueError:
        raise ValueError(
            f"lengths of shape {lens.shape} do not broadcast to the solutions' shape "
            f"{shape[:-1]} (step rewards {shape})."
        ) from None
    if lens.size and (lens.min() < 1 or lens.max() > t_max):
        bad = int(lens.min() if lens.min() < 1 else lens.max())
        raise ValueError(f"lengths must be in [1, {t_max}] (the padded steps), got {bad}.")
    return np.arange(t_max) < lens[..., None]  # (..., T)


def aggregate_steps(
    step_rewards: np.ndarray | Sequence[np.ndarray],
    kind: CreditKind | str = CreditKind.MIN,
    *,
    lengths: np.ndarray | Sequence[int] | None = None,
    temperature: float = DEFAULT_SOFTMIN_TEMPERATURE,
) -> np.ndarray:
    """One reward per solution from its step rewards.

    Args:
        step_rewards: either an array `(..., T)` of step rewards (steps on the
            last axis; with ``lengths``, only the first ``lengths`` steps of each
            row count and the rest may hold anything, NaN included), or a ragged
            list of ``n`` arrays `(..., T_i)` with a shared leading shape `L`.
        kind: a :class:`CreditKind` or its name.
        lengths: for an array, the number of real steps per row; any shape that
            broadcasts to `step_rewards.shape[:-1]` (e.g. `(n,)` for `(m, n, T)`
            member rows). Not allowed with a ragged list, which carries its own.
        temperature: ``softmin`` only: ``τ > 0`` in reward units.

    Returns:
        float64 `step_rewards.shape[:-1]` for an array (a 0-d array for one
        solution's `(T,)`), or `(*L, n)` for a ragged list: `(n,)` for plain
        solutions, `(m, n)` for member rows — members first, as
        :attr:`~rewardhedge.types.RewardEstimate.members`.

    Raises:
        ConfigError: unknown ``kind``, or a bad ``temperature``.
        ValueError: a solution with no steps, non-finite rewards in real steps,
            or ``lengths`` that do not fit.

    Example:
        >>> aggregate_steps(np.array([1.0, -2.0, 3.0]), "min").item()
        -2.0
        >>> aggregate_steps([np.array([1.0, 3.0]), np.array([2.0])], "sum").tolist()
        [4.0, 2.0]
        >>> aggregate_steps(np.array([[1.0, 2.0], [0.0, 4.0]]), "last").tolist()
        [2.0, 4.0]
    """
    kind = CreditKind.parse(kind, "credit")
    if kind is CreditKind.SOFTMIN:
        _check_temperature(temperature)
    if isinstance(step_rewards, np.ndarray):
        r = np.asarray(step_rewards, dtype=np.float64)
    elif isinstance(step_rewards, Sequence) and not isinstance(step_rewards, str):
        if lengths is not None:
            raise ValueError("lengths is for a padded array; a ragged list carries its own.")
        r, lengths = pad_ragged(step_rewards)
    else:
        raise TypeError(
            "step_rewards must be a numpy array (..., T) or a list of per-solution arrays, "
            f"got {type(step_rewards).__name__}."
        )
    if r.ndim == 0 or r.shape[-1] == 0:
        raise ValueError(f"step rewards of shape {r.shape} hold no steps; a solution needs >= 1.")
    mask = _step_mask(r.shape, lengths)  # (..., T)
    if not np.isfinite(r[mask]).all():
        raise ValueError("step rewards must be finite in every real (unpadded) step.")
    return _credit(r, mask, kind, temperature)


def _check_temperature(temperature: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating)):
        raise ConfigError(f"credit 'softmin': temperature == {temperature!r}, must be a number.")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError(
            f"credit 'softmin': temperature == {temperature!r}, must be finite and > 0 "
            "(use credit 'min' for the hard minimum)."
        )


def _credit(r: np.ndarray, mask: np.ndarray, kind: CreditKind, tau: float) -> np.ndarray:
    """Masked reductions over the last axis: `(..., T) -> (...)`."""
    zeroed = np.where(mask, r, 0.0)  # (..., T), padding contributes nothing
    if kind is CreditKind.SUM:
        return zeroed.sum(axis=-1)
    if kind is CreditKind.MEAN:
        return zeroed.sum(axis=-1) / mask.sum(axis=-1)
    if kind is CreditKind.MIN:
        return np.where(mask, r, np.inf).min(axis=-1)
    if kind is CreditKind.LAST:
        last = mask.sum(axis=-1, keepdims=True) - 1  # (..., 1) index of the last real step
        return np.take_along_axis(zeroed, last, axis=-1)[..., 0]
    # softmin: weights softmax(−r/τ) over the real steps, shifted by the minimum so the
    # largest logit is 0 (no overflow at small τ; underflowing weights are the limit).
    lo = np.where(mask, r, np.inf).min(axis=-1, keepdims=True)  # (..., 1)
    logits = np.where(mask, -(r - lo) / tau, -np.inf)  # (..., T), max 0
    w = np.exp(logits)
    w /= w.sum(axis=-1, keepdims=True)
    return (w * zeroed).sum(axis=-1)
