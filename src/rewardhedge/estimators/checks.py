"""One conformance suite for every reward-model family, in the spirit of scikit-learn's
``check_estimator``.

:func:`check_reward_model` fits models from a factory and runs every check in
:data:`CHECKS` on them; each check is also a function of a :class:`ConformanceCase`,
so a test can parametrize over them and share the (cached) fitted models::

    case = ConformanceCase(make_model, train_pairs, tmp_dir=tmp_path, test_pairs=held_out)
    for check in CHECKS:
        check(case)

A check that fails raises :class:`AssertionError` whose message starts with the
check's name and the case's label. What each check asserts:

``check_score_shapes``
    ``score`` gives `(n,)` float64 ``mean``/``epistemic``/``aleatoric`` and `(m, n)`
    float64 ``members``, all finite, with the same ``m`` for any ``n`` (0 included);
    ``compare`` gives `(n_pairs,)` float64 probabilities in [0, 1], `(m, n_pairs)`
    member probabilities ``σ(member_logits / T)`` whose mean is ``prob``, the margin
    of the means and the model's temperature; ``reward`` gives `(n,)` float64, finite,
    ``rule.apply(score)``.
``check_uncertainty_variances``
    ``epistemic`` and ``aleatoric`` are ≥ 0, and relate to the members as the family
    documents (see :func:`epistemic_contract` and :func:`aleatoric_contract`):
    ``members_var`` — ``epistemic == members.var(axis=0)`` exactly (deep ensembles,
    MC dropout and Gaussian heads of :class:`EnsembleRewardModel` without an error
    predictor, every :class:`FinetunedRewardModel` kind); ``total_variance`` — the
    Laplace estimator's law of total variance, ``epistemic ≥`` the variance across
    heads of each head's mean draw (its antithetic draws average to its MAP reward);
    ``nonnegative`` — only ``≥ 0`` (DEUP: a predicted excess loss in nats, not a
    variance of the members). ``aleatoric`` is exactly zero where no member models
    noise (everything but Gaussian heads).
``check_determinism``
    Two models from ``make_model(seed)`` fitted on the same pairs give bit-identical
    scores, compare probabilities and temperature; with ``seed_changes_scores``, a
    model from ``make_model(seed + 1)`` gives different members.
``check_save_load``
    After ``save`` and ``load`` (default :func:`~rewardhedge.estimators.loading.load_reward_model`,
    which opens either family): bit-identical scores, rewards (the model's rule and two
    others), compare probabilities, temperature and rule; saving an unfitted model is
    covered by ``check_not_fitted``.
``check_batch_invariance``
    Scoring the items one by one, or in reverse order, agrees with scoring them all at
    once: exactly when ``batch_rtol == 0``, else within ``batch_rtol`` × the reward
    scale (the largest ``|member reward|``) for rewards and within
    ``4·batch_rtol`` × scale² for the variances; and no test pair's order (the sign of
    its mean margin) changes, unless both margins lie within the tolerance of 0.
``check_not_fitted``
    On a model from ``make_model(seed)`` that was never fitted, ``score``, ``compare``,
    ``reward``, ``evaluate`` and ``save`` raise :class:`~rewardhedge.errors.NotFittedError`
    (``save`` writes nothing), and ``temperature`` is 1.0.
``check_aggregations``
    For every aggregation the library has (:data:`~rewardhedge.uncertainty.aggregation.AGGREGATIONS`,
    at default and extreme parameters), on the model's own estimates: the result is
    `(n,)` float64 and finite; ``mean`` returns the estimate's ``mean``; every
    conservative one (wco, uwo, lcb, brme, softmin) is ≤ the mean of the members it
    aggregates (``members.mean(axis=0)``: with a member normalisation this is not the
    raw ``mean``, so the raw mean is no bound), and brme and softmin are ≥ the
    minimum; when every member equals the mean, each returns the mean; permuting the
    members changes nothing (to rounding); ``reward`` with that aggregation as its
    rule returns ``aggregation.apply(score)``.
``check_temperature``
    The temperature is fitted only on pairs that no reported metric uses.
    For every family, ``compare``, ``evaluate`` (plain, with abstention, with OOD pairs)
    on the test pairs leave ``model.temperature`` unchanged. Per family, from reading
    their ``fit``:

    - :class:`EnsembleRewardModel`: with ``uncertainty.calibration_folds`` = F ≥ 2,
      ``fit`` cross-fits F models (folds drawn from ``train.seed``), each predicting
      the training pairs it did not see, and fits the temperature
      (:meth:`TemperatureScaling.fit` on those held-out member logits, within
      ``TEMPERATURE_BOUNDS``) on them; the model that scores is fitted on all pairs
      and its own (in-sample) predictions are never used for calibration. The check
      recomputes that temperature from a fresh cross-fit and requires equality, and
      fits the same config with ``calibration_folds=0`` (and no error predictor,
      which needs the folds): its temperature is exactly 1.0.
    - :class:`FinetunedRewardModel`: cross-fitting K fine-tunes is too costly, so
      ``fit(pairs, eval_pairs=...)`` splits ``eval_pairs`` by prompt
      (:func:`~rewardhedge.estimators.finetuned.split_calibration`: a share
      ``config.calibration_fraction`` of the prompts, drawn with ``config.seed``) into
      ``calibration_pairs_`` and ``report_pairs_``, and fits the temperature after
      training (and after the member normalisation) on ``compare(calibration_pairs_)``'s
      member logits alone; reported metrics use ``report_pairs_`` alone
      (``rewardhedge finetune`` writes ``eval.json`` on them). The check, with the
      case's ``calibration_pairs`` passed as ``eval_pairs``, recomputes the split and
      requires: the model's two parts are that split, share no pair and no prompt, and
      together are ``eval_pairs`` (as a multiset); ``calibration_pairs_hash_`` (saved
      in the manifest) is ``hash_pairs`` of the calibration part, ``None`` when it is
      empty; the temperature equals one fitted on ``compare`` of the calibration part
      alone (1.0 when it is empty). A fit without ``eval_pairs`` has temperature 1.0,
      no calibration pairs and ``report_pairs_ is None``. ``fit``'s training-time
      metrics (``report_.history``: accuracy and mean probability every
      ``eval_every`` steps) use all of ``eval_pairs``, at temperature 1, before the
      temperature is fitted.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rewardhedge.data.fingerprint import hash_pairs
from rewardhedge.errors import NotFittedError
from rewardhedge.estimators.base import RewardModelBase
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.estimators.finetuned import FinetunedRewardModel, split_calibration
from rewardhedge.estimators.loading import load_reward_model
from rewardhedge.train.pair_targets import PairTargets
from rewardhedge.types import (
    PairwiseEstimate,
    PreferencePair,
    RewardEstimate,
    member_logits,
    sigmoid,
)
from rewardhedge.uncertainty.aggregation import AGGREGATIONS, Aggregation
from rewardhedge.uncertainty.calibration import TEMPERATURE_BOUNDS, TemperatureScaling
from rewardhedge.uncertainty.reward_rule import RewardRule, Transform

__all__ = [
    "CHECKS",
    "CONSERVATIVE",
    "ConformanceCase",
    "aleatoric_contract",
    "check_aggregations",
    "check_batch_invariance",
    "check_determinism",
    "check_not_fitted",
    "check_reward_model",
    "check_save_load",
    "check_score_shapes",
    "check_temperature",
    "check_uncertainty_variances",
    "epistemic_contract",
]

CONSERVATIVE = frozenset({"wco", "uwo", "lcb", "brme", "softmin"})
"""Aggregations that are never above the mean of the members they aggregate."""

CHECKED_AGGREGATIONS: tuple[Aggregation, ...] = (
    *(Aggregation(name) for name in AGGREGATIONS),
    Aggregation("uwo", lam=3.0),
    Aggregation("lcb", beta=3.0),
    Aggregation("brme", lam=0.0),
    Aggregation("brme", lam=1.0),
    Aggregation("softmin", beta=0.05),
    Aggregation("softmin", beta=50.0),
)
"""Every aggregation at its default parameter, and the extremes of each parameter."""

EPISTEMIC_CONTRACTS = ("members_var", "total_variance", "nonnegative")
ALEATORIC_CONTRACTS = ("zero", "nonnegative")


def _default_load(path: Path) -> RewardModelBase:
    return load_reward_model(path, use_cache=False)


@dataclass
class ConformanceCase:
    """A model family under test: how to make and fit it, and the pairs to use.

    Fitted models are cached on the case (one per seed), so checks run one after
    the other share them.

    Args:
        make_model: ``make_model(seed)`` returns a new, unfitted model whose
            training is seeded by ``seed`` (equal seeds must give equal models).
        pairs: training pairs.
        tmp_dir: a folder the save/load checks may write into.
        test_pairs: the pairs scored, compared and evaluated (default: ``pairs``);
            both sides of each are the scored items.
        calibration_pairs: held-out pairs passed to ``fit`` as ``eval_pairs`` (the
            family must take that keyword, as :class:`FinetunedRewardModel` does);
            ``None`` fits on ``pairs`` alone.
        seed: the seed of the models the checks fit.
        batch_rtol: the batch-size tolerance, relative to the reward scale
            (0: scores must be bit-identical whatever the batch).
        seed_changes_scores: also require that another seed gives other members.
        load: reads a saved folder back (default: ``load_reward_model``).
        epistemic: override :func:`epistemic_contract` (one of
            :data:`EPISTEMIC_CONTRACTS`); ``aleatoric`` likewise.
        label: a name for messages (default: the class and the seed).
    """

    make_model: Callable[[int], RewardModelBase]
    pairs: Sequence[PreferencePair]
    tmp_dir: str | Path
    test_pairs: Sequence[PreferencePair] | None = None
    calibration_pairs: Sequence[PreferencePair] | None = None
    seed: int = 0
    batch_rtol: float = 0.0
    seed_changes_scores: bool = True
    load: Callable[[Path], RewardModelBase] = _default_load
    epistemic: str | None = None
    aleatoric: str | None = None
    label: str | None = None
    _fitted: dict[int, RewardModelBase] = field(default_factory=dict, init=False, repr=False)
    _saves: itertools.count = field(default_factory=itertools.count, init=False, repr=False)

    def __post_init__(self) -> None:
        self.pairs = list(self.pairs)
        self.test_pairs = list(self.test_pairs) if self.test_pairs is not None else self.pairs
        if self.calibration_pairs is not None:
            self.calibration_pairs = list(self.calibration_pairs)
        self.tmp_dir = Path(self.tmp_dir)
        if not self.pairs or not self.test_pairs:
            raise ValueError("a conformance case needs at least one training and one test pair.")
        if not (self.batch_rtol >= 0 and math.isfinite(self.batch_rtol)):
            raise ValueError(f"batch_rtol == {self.batch_rtol!r}, must be a finite number >= 0.")
        if self.epistemic is not None and self.epistemic not in EPISTEMIC_CONTRACTS:
            raise ValueError(f"epistemic == {self.epistemic!r}, must be in {EPISTEMIC_CONTRACTS}.")
        if self.aleatoric is not None and self.aleatoric not in ALEATORIC_CONTRACTS:
            raise ValueError(f"aleatoric == {self.aleatoric!r}, must be in {ALEATORIC_CONTRACTS}.")

    # -- models ------------------------------------------------------------------------
    def fit(self, seed: int | None = None) -> RewardModelBase:
        """A newly made model fitted on ``pairs`` (and ``calibration_pairs``); not cached."""
        model = self.make_model(self.seed if seed is None else seed)
        kwargs: dict[str, Any] = {}
        if self.calibration_pairs is not None:
            if "eval_pairs" not in inspect.signature(model.fit).parameters:
                raise TypeError(
                    f"calibration_pairs given, but {type(model).__name__}.fit takes no "
                    "eval_pairs; leave calibration_pairs out for this family."
                )
            kwargs["eval_pairs"] = self.calibration_pairs
        fitted = model.fit(self.pairs, **kwargs)
        return model if fitted is None else fitted

    def fitted(self, seed: int | None = None) -> RewardModelBase:
        """The model fitted with ``seed`` (default: the case's), fitted once and cached."""
        seed = self.seed if seed is None else seed
        if seed not in self._fitted:
            self._fitted[seed] = self.fit(seed)
        return self._fitted[seed]

    def new_folder(self, stem: str) -> Path:
        """A path under ``tmp_dir`` that no earlier check used."""
        return self.tmp_dir / f"{stem}-{next(self._saves)}"

    # -- data --------------------------------------------------------------------------
    def items(self) -> tuple[list[str], list[str]]:
        """Both sides of every test pair: chosen responses first, then rejected ones."""
        pairs = self.test_pairs
        prompts = [p.prompt for p in pairs]
        return prompts + prompts, [p.chosen for p in pairs] + [p.rejected for p in pairs]

    def name(self) -> str:
        if self.label is not None:
            return self.label
        return f"{getattr(self.make_model, '__name__', 'make_model')}(seed={self.seed})"


Check = Callable[[ConformanceCase], None]


def _conformance_check(fn: Check) -> Check:
    """Every failure of ``fn`` (an assertion, or any exception the model raises) becomes
    an ``AssertionError`` that names the check and the case."""

    @functools.wraps(fn)
    def run(case: ConformanceCase) -> None:
        try:
            fn(case)
        except AssertionError as exc:
            raise AssertionError(f"{fn.__name__} failed for {case.name()}: {exc}") from exc
        except Exception as exc:
            raise AssertionError(
                f"{fn.__name__} failed for {case.name()}: raised {type(exc).__name__}: {exc}"
            ) from exc

    return run


def _require(condition: Any, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _same(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """Bit-identical arrays (same shape, dtype and values)."""
    a, b = np.asarray(a), np.asarray(b)
    _require(a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}")
    _require(a.dtype == b.dtype, f"{what}: dtype {a.dtype} vs {b.dtype}")
    _require(
        np.array_equal(a, b, equal_nan=True),
        f"{what}: not bit-identical, max |difference| {_max_diff(a, b):.3g}",
    )


def _same_estimate(a: RewardEstimate, b: RewardEstimate, what: str) -> None:
    for name in ("mean", "epistemic", "aleatoric", "members"):
        _same(getattr(a, name), getattr(b, name), f"{what} {name}")


def _same_pairwise(a: PairwiseEstimate, b: PairwiseEstimate, what: str) -> None:
    _same(a.prob, b.prob, f"{what} prob")
    _same(a.members, b.members, f"{what} member probabilities")
    _require(
        a.temperature == b.temperature, f"{what} temperature {a.temperature} vs {b.temperature}"
    )


def _reward_scale(est: RewardEstimate) -> float:
    """The largest |reward| among members and means (a floor keeps it > 0)."""
    values = [np.abs(est.members).max(initial=0.0), np.abs(est.mean).max(initial=0.0)]
    return max(float(max(values)), 1e-12)


# -- contracts ---------------------------------------------------------------------------


def epistemic_contract(model: RewardModelBase) -> str:
    """How a fitted model's ``epistemic`` relates to its members (see the module docstring).

    ``members_var`` unless the family documents otherwise: the Laplace estimator of
    :class:`EnsembleRewardModel` gives ``total_variance`` and an error predictor (DEUP)
    ``nonnegative``.
    """
    if isinstance(model, EnsembleRewardModel):
        if getattr(model, "error_predictor_", None) is not None:
            return "nonnegative"
        if model.config.uncertainty.estimator.value == "laplace":
            return "total_variance"
    return "members_var"


def aleatoric_contract(model: RewardModelBase) -> str:
    """``zero`` when no member models noise, else ``nonnegative`` (Gaussian and HL-Gauss
    heads, and families this module does not know)."""
    if isinstance(model, EnsembleRewardModel):
        gaussian = model.config.uncertainty.estimator.value == "gaussian"
        histogram = model.config.train.objective.value == "hl_gauss"
        return "nonnegative" if gaussian or histogram else "zero"
    if isinstance(model, FinetunedRewardModel):
        return "zero"
    return "nonnegative"


def _n_heads(model: RewardModelBase, n_rows: int) -> int:
    """Heads (K) behind the `(m, n)` member rows, head-major (``m = K·samples``)."""
    if isinstance(model, EnsembleRewardModel):
        return model.config.n_members
    if isinstance(model, FinetunedRewardModel):
        return model.config.members
    return n_rows


# -- the checks --------------------------------------------------------------------------


def _check_estimate_shapes(est: Any, n: int, what: str) -> int:
    _require(
        isinstance(est, RewardEstimate), f"{what} is a {type(est).__name__}, not a RewardEstimate"
    )
    for name in ("mean", "epistemic", "aleatoric"):
        arr = getattr(est, name)
        _require(isinstance(arr, np.ndarray), f"{what}.{name} is a {type(arr).__name__}")
        _require(arr.shape == (n,), f"{what}.{name} has shape {arr.shape}, expected ({n},)")
        _require(arr.dtype == np.float64, f"{what}.{name} has dtype {arr.dtype}, expected float64")
        _require(np.all(np.isfinite(arr)), f"{what}.{name} has non-finite values")
    members = est.members
    _require(isinstance(members, np.ndarray), f"{what}.members is a {type(members).__name__}")
    _require(
        members.ndim == 2 and members.shape[1] == n and members.shape[0] >= 1,
        f"{what}.members has shape {members.shape}, expected (m >= 1, {n})",
    )
    _require(members.dtype == np.float64, f"{what}.members has dtype {members.dtype}")
    _require(np.all(np.isfinite(members)), f"{what}.members has non-finite values")
    return int(members.shape[0])


@_conformance_check
def check_score_shapes(case: ConformanceCase) -> None:
    model = case.fitted()
    prompts, responses = case.items()
    n = len(prompts)
    est = model.score(prompts, responses)
    m = _check_estimate_shapes(est, n, "score")
    few = model.score(prompts[:3], responses[:3])
    _require(
        _check_estimate_shapes(few, len(prompts[:3]), "score of 3 items") == m, "m changes with n"
    )
    empty = model.score([], [])
    _require(_check_estimate_shapes(empty, 0, "score of no items") == m, "m changes for n = 0")

    pairs = case.test_pairs
    k = len(pairs)
    cmp = model.compare(pairs)
    _require(isinstance(cmp, PairwiseEstimate), f"compare gave a {type(cmp).__name__}")
    for name, shape in (("prob", (k,)), ("margin", (k,)), ("members", (m, k))):
        arr = getattr(cmp, name)
        _require(arr.shape == shape, f"compare.{name} has shape {arr.shape}, expected {shape}")
        _require(arr.dtype == np.float64, f"compare.{name} has dtype {arr.dtype}")
        _require(np.all(np.isfinite(arr)), f"compare.{name} has non-finite values")
    for name in ("prob", "members"):
        arr = getattr(cmp, name)
        _require(
            np.all((arr >= 0) & (arr <= 1)),
            f"compare.{name} leaves [0, 1]: min {arr.min():.6g}, max {arr.max():.6g}",
        )
    _require(
        cmp.temperature == model.temperature,
        f"compare used temperature {cmp.temperature}, the model's is {model.temperature}",
    )
    logits = member_logits(cmp.chosen, cmp.rejected)
    want = sigmoid(logits / model.temperature)
    _require(
        np.allclose(cmp.members, want, rtol=1e-12, atol=1e-15),
        "compare.members is not σ(member_logits / T), "
        f"max |difference| {_max_diff(cmp.members, want):.3g}",
    )
    _require(
        np.allclose(cmp.prob, cmp.members.mean(axis=0), rtol=1e-12, atol=1e-15),
        "compare.prob is not the mean of the member probabilities",
    )
    _require(
        np.allclose(cmp.margin, cmp.chosen.mean - cmp.rejected.mean, rtol=1e-12, atol=0),
        "compare.margin is not chosen.mean - rejected.mean",
    )

    reward = model.reward(prompts, responses)
    _require(isinstance(reward, np.ndarray), f"reward gave a {type(reward).__name__}")
    _require(reward.shape == (n,), f"reward has shape {reward.shape}, expected ({n},)")
    _require(reward.dtype == np.float64, f"reward has dtype {reward.dtype}, expected float64")
    _require(np.all(np.isfinite(reward)), "reward has non-finite values")
    _same(reward, model.rule.apply(est, groups=list(prompts)), "reward vs rule.apply(score)")


@_conformance_check
def check_uncertainty_variances(case: ConformanceCase) -> None:
    model = case.fitted()
    est = model.score(*case.items())
    for name in ("epistemic", "aleatoric"):
        arr = getattr(est, name)
        _require(np.all(arr >= 0), f"{name} has negative values (min {arr.min():.3g})")
    contract = case.epistemic or epistemic_contract(model)
    members = est.members
    if contract == "members_var":
        _same(est.epistemic, members.var(axis=0), "epistemic vs members.var(axis=0)")
    elif contract == "total_variance":
        k = _n_heads(model, members.shape[0])
        _require(members.shape[0] % k == 0, f"{members.shape[0]} member rows for {k} heads")
        head_means = members.reshape(k, -1, members.shape[1]).mean(axis=1)
        between = head_means.var(axis=0)
        slack = 1e-9 * np.maximum(between, _reward_scale(est) ** 2 * 1e-6)
        gap = float(np.min(est.epistemic - between + slack))
        _require(
            gap >= 0,
            "epistemic is below the variance across heads of their mean draws "
            f"(law of total variance), by {-gap:.3g}",
        )
        _require(np.all(est.epistemic > 0), "a posterior predictive variance is 0")
    contract = case.aleatoric or aleatoric_contract(model)
    if contract == "zero":
        _require(
            np.all(est.aleatoric == 0),
            f"aleatoric is not 0 for a family that models no noise (max {est.aleatoric.max():.3g})",
        )


@_conformance_check
def check_determinism(case: ConformanceCase) -> None:
    first = case.fitted()
    second = case.fit(case.seed)
    items = case.items()
    _same_estimate(first.score(*items), second.score(*items), f"two fits with seed {case.seed}:")
    _require(
        first.temperature == second.temperature,
        f"two fits with seed {case.seed}: temperature {first.temperature} vs {second.temperature}",
    )
    _same_pairwise(
        first.compare(case.test_pairs), second.compare(case.test_pairs), "two fits: compare"
    )
    if case.seed_changes_scores:
        other = case.fit(case.seed + 1)
        _require(
            not np.array_equal(other.score(*items).members, first.score(*items).members),
            f"seeds {case.seed} and {case.seed + 1} give identical members: the seed is ignored",
        )


@_conformance_check
def check_save_load(case: ConformanceCase) -> None:
    model = case.fitted()
    folder = model.save(case.new_folder("saved"))
    folder = Path(folder) if folder is not None else None
    _require(folder is not None and folder.is_dir(), f"save returned {folder!r}, not a folder")
    loaded = case.load(folder)
    _require(isinstance(loaded, RewardModelBase), f"load gave a {type(loaded).__name__}")
    prompts, responses = case.items()
    _same_estimate(model.score(prompts, responses), loaded.score(prompts, responses), "score:")
    _require(loaded.rule == model.rule, f"rule {loaded.rule} vs {model.rule}")
    _require(
        loaded.temperature == model.temperature,
        f"temperature {loaded.temperature!r} after load, {model.temperature!r} before",
    )
    rules = [
        None,
        RewardRule(Aggregation("wco")),
        RewardRule(Aggregation("lcb", beta=2.0), Transform("centered_logsigmoid")),
    ]
    for rule in rules:
        label = "the model's rule" if rule is None else rule.label()
        _same(
            model.reward(prompts, responses, rule=rule),
            loaded.reward(prompts, responses, rule=rule),
            f"reward ({label})",
        )
    _same_pairwise(model.compare(case.test_pairs), loaded.compare(case.test_pairs), "compare")


@_conformance_check
def check_batch_invariance(case: ConformanceCase) -> None:
    model = case.fitted()
    prompts, responses = case.items()
    full = model.score(prompts, responses)
    singles = [model.score([p], [r]) for p, r in zip(prompts, responses, strict=True)]
    one_by_one = RewardEstimate(
        mean=np.concatenate([s.mean for s in singles]),
        epistemic=np.concatenate([s.epistemic for s in singles]),
        aleatoric=np.concatenate([s.aleatoric for s in singles]),
        members=np.concatenate([s.members for s in singles], axis=1),
    )
    reverse = model.score(prompts[::-1], responses[::-1]).take(np.arange(len(prompts))[::-1])
    scale = _reward_scale(full)
    rtol = case.batch_rtol
    for what, other in (("one by one", one_by_one), ("in reverse order", reverse)):
        problems = []
        for name in ("mean", "epistemic", "aleatoric", "members"):
            a, b = getattr(full, name), getattr(other, name)
            if a.shape != b.shape or a.dtype != b.dtype:
                problems.append(f"{name} {b.shape} {b.dtype} vs {a.shape} {a.dtype}")
                continue
            variance = name in ("epistemic", "aleatoric")
            unit = scale**2 if variance else scale
            diff = _max_diff(a, b)
            if diff > (4 * rtol if variance else rtol) * unit or (rtol == 0 and diff > 0):
                problems.append(
                    f"{name} by {diff:.3g} ({diff / unit:.3g} of the reward scale"
                    f"{'²' if variance else ''})"
                )
        _require(
            not problems,
            f"scored {what} vs all at once (reward scale {scale:.3g}, batch_rtol {rtol:g}), "
            f"differ: {'; '.join(problems)}",
        )
        k = len(case.test_pairs)
        m_full = full.mean[:k] - full.mean[k:]
        m_other = other.mean[:k] - other.mean[k:]
        tie = (np.abs(m_full) <= 2 * rtol * scale) & (np.abs(m_other) <= 2 * rtol * scale)
        flipped = np.flatnonzero((np.sign(m_full) != np.sign(m_other)) & ~tie)
        _require(
            flipped.size == 0,
            f"scored {what}: {flipped.size} pair(s) change order, e.g. pair {flipped[:1].tolist()}",
        )


@_conformance_check
def check_not_fitted(case: ConformanceCase) -> None:
    model = case.make_model(case.seed)
    pair = case.test_pairs[0]
    folder = case.new_folder("unfitted")
    calls: dict[str, Callable[[], Any]] = {
        "score": lambda: model.score([pair.prompt], [pair.chosen]),
        "compare": lambda: model.compare([pair]),
        "reward": lambda: model.reward([pair.prompt], [pair.chosen]),
        "evaluate": lambda: model.evaluate([pair], reps=10),
        "save": lambda: model.save(folder),
    }
    for method, call in calls.items():
        try:
            call()
        except NotFittedError:
            continue
        except Exception as exc:
            raise AssertionError(
                f"{method} before fit raised {type(exc).__name__} ({exc}), not NotFittedError"
            ) from exc
        raise AssertionError(f"{method} before fit raised nothing; expected NotFittedError")
    _require(not folder.exists(), f"save before fit wrote {folder}")
    _require(model.temperature == 1.0, f"an unfitted model has temperature {model.temperature}")


@_conformance_check
def check_aggregations(case: ConformanceCase) -> None:
    unknown = set(AGGREGATIONS) - CONSERVATIVE - {"mean"}
    _require(
        not unknown,
        f"aggregation(s) {sorted(unknown)} are not covered: say in checks.CONSERVATIVE "
        "whether they are conservative",
    )
    model = case.fitted()
    prompts, responses = case.items()
    est = model.score(prompts, responses)
    n, m = len(est), est.n_members
    scale = _reward_scale(est)
    atol = 1e-10 * max(scale, scale**2)
    members_mean = est.members.mean(axis=0)
    members_min = est.members.min(axis=0)
    agree = RewardEstimate(
        mean=est.mean.copy(),
        epistemic=np.zeros(n),
        aleatoric=np.zeros(n),
        members=np.tile(est.mean, (m, 1)),
    )
    rng = np.random.default_rng(case.seed)
    perms = [np.arange(m)[::-1], rng.permutation(m)]
    for agg in CHECKED_AGGREGATIONS:
        label = agg.label()
        out = agg.apply(est)
        _require(
            isinstance(out, np.ndarray) and out.shape == (n,) and out.dtype == np.float64,
            f"{label}: result of shape {np.shape(out)}, dtype {getattr(out, 'dtype', None)}",
        )
        _require(np.all(np.isfinite(out)), f"{label}: non-finite values")
        if agg.name == "mean":
            _same(out, est.mean, f"{label} vs the estimate's mean")
        if agg.name in CONSERVATIVE:
            excess = float(np.max(out - members_mean))
            _require(
                excess <= atol,
                f"{label} exceeds the members' mean by {excess:.3g} (conservative)",
            )
        if agg.name in ("brme", "softmin"):
            below = float(np.max(members_min - out))
            _require(below <= atol, f"{label} is below the members' minimum by {below:.3g}")
        same = agg.apply(agree)
        _require(
            np.allclose(same, est.mean, rtol=1e-12, atol=atol),
            f"{label}: with every member equal to the mean it gives something else, "
            f"max |difference| {_max_diff(same, est.mean):.3g}",
        )
        for perm in perms:
            shuffled = RewardEstimate(est.mean, est.epistemic, est.aleatoric, est.members[perm])
            moved = agg.apply(shuffled)
            _require(
                np.allclose(moved, out, rtol=1e-12, atol=atol),
                f"{label}: permuting the members changes it by {_max_diff(moved, out):.3g}",
            )
        if agg in [Aggregation(name) for name in AGGREGATIONS]:  # defaults: via reward()
            _same(
                model.reward(prompts, responses, rule=RewardRule(agg)),
                agg.apply(est),
                f"reward with rule {label} vs {label} applied to score",
            )


@_conformance_check
def check_temperature(case: ConformanceCase) -> None:
    model = case.fitted()
    t0 = model.temperature
    _require(
        isinstance(t0, float) and math.isfinite(t0) and t0 > 0,
        f"temperature {t0!r} is not a finite float > 0",
    )
    pairs = case.test_pairs
    uses: list[tuple[str, Callable[[], Any]]] = [
        ("compare", lambda: model.compare(pairs)),
        ("evaluate", lambda: model.evaluate(pairs, reps=20)),
        ("evaluate with ood_pairs", lambda: model.evaluate(pairs, reps=20, ood_pairs=case.pairs)),
    ]
    if len(pairs) >= 4:
        uses.append(
            ("evaluate with abstention", lambda: model.evaluate(pairs, reps=20, abstain_alpha=0.5))
        )
    for what, use in uses:
        use()
        _require(
            model.temperature == t0,
            f"{what} on the test pairs changed the temperature from {t0!r} to {model.temperature!r}",
        )

    if isinstance(model, EnsembleRewardModel):
        _ensemble_temperature(case, model)
    elif isinstance(model, FinetunedRewardModel):
        _finetuned_temperature(case, model)


def _ensemble_temperature(case: ConformanceCase, model: EnsembleRewardModel) -> None:
    from rewardhedge.train.fitting import cross_fit

    folds = model.config.uncertainty.calibration_folds
    if folds >= 2:
        pairs = case.pairs
        prompts = [p.prompt for p in pairs]
        feats = np.asarray(
            model.encoder.encode(
                prompts + prompts, [p.chosen for p in pairs] + [p.rejected for p in pairs]
            ),
            dtype=np.float32,
        )
        n = len(pairs)
        targets = PairTargets.from_pairs(pairs, model.config)
        held = cross_fit(feats[:n], feats[n:], model.config, folds=folds, targets=targets)
        logits = member_logits(held.chosen, held.rejected)
        want = TemperatureScaling.fit(logits, np.ones(logits.shape[1]), bounds=TEMPERATURE_BOUNDS)
        _require(
            model.temperature == want.temperature,
            f"temperature {model.temperature!r} is not the one fitted on the {folds}-fold "
            f"cross-fitted held-out predictions of the training pairs ({want.temperature!r})",
        )
    else:
        _require(
            model.temperature == 1.0, f"calibration_folds=0 but temperature {model.temperature}"
        )
    bare = case.make_model(case.seed)
    unc = replace(bare.config.uncertainty, calibration_folds=0, error_predictor=False)
    bare.config = replace(bare.config, uncertainty=unc)
    bare.fit(case.pairs)
    _require(
        bare.temperature == 1.0,
        f"fitted with calibration_folds=0, the temperature is {bare.temperature!r}, not 1.0",
    )


def _finetuned_temperature(case: ConformanceCase, model: FinetunedRewardModel) -> None:
    if case.calibration_pairs is None:
        _no_calibration(model, "fitted without eval_pairs")
    else:
        _finetuned_split(case.calibration_pairs, model)
    bare = case.make_model(case.seed).fit(case.pairs)
    _no_calibration(bare, "fitted without eval_pairs")


def _no_calibration(model: FinetunedRewardModel, how: str) -> None:
    _require(model.temperature == 1.0, f"{how}, the temperature is {model.temperature!r}, not 1.0")
    cal = getattr(model, "calibration_pairs_", None)
    _require(cal == [], f"{how}, calibration_pairs_ is not [] ({type(cal).__name__})")
    _require(
        getattr(model, "calibration_pairs_hash_", "missing") is None,
        f"{how}, calibration_pairs_hash_ is not None",
    )
    _require(
        getattr(model, "report_pairs_", "missing") is None, f"{how}, report_pairs_ is not None"
    )


def _finetuned_split(eval_pairs: list[PreferencePair], model: FinetunedRewardModel) -> None:
    """The temperature saw the calibration part alone, and the report part is the rest."""
    for name in ("calibration_pairs_", "report_pairs_", "calibration_pairs_hash_"):
        _require(hasattr(model, name), f"fitted with eval_pairs, the model has no {name}")
    cal, held = model.calibration_pairs_, model.report_pairs_
    _require(held is not None, "fitted with eval_pairs, report_pairs_ is None")
    _require(
        Counter(cal) + Counter(held) == Counter(eval_pairs),
        f"calibration_pairs_ ({len(cal)}) and report_pairs_ ({len(held)}) are not a "
        f"partition of the {len(eval_pairs)} eval_pairs",
    )
    shared = {p.prompt for p in cal} & {p.prompt for p in held}
    _require(
        not shared,
        f"{len(shared)} prompt(s) are in both calibration_pairs_ and report_pairs_, "
        f"e.g. {min(shared, default='')[:60]!r}",
    )
    want_cal, want_held = split_calibration(
        eval_pairs, model.config.calibration_fraction, model.config.seed
    )
    _require(
        cal == want_cal and held == want_held,
        "calibration_pairs_/report_pairs_ are not split_calibration(eval_pairs, "
        f"calibration_fraction={model.config.calibration_fraction}, seed={model.config.seed})",
    )
    want_hash = hash_pairs(cal) if cal else None
    _require(
        model.calibration_pairs_hash_ == want_hash,
        f"calibration_pairs_hash_ {model.calibration_pairs_hash_!r} is not the hash of "
        f"calibration_pairs_ ({want_hash!r})",
    )
    want = 1.0
    if cal:
        est = model.compare(cal)
        logits = member_logits(est.chosen, est.rejected)
        fitted = TemperatureScaling.fit(logits, np.ones(logits.shape[1]), bounds=TEMPERATURE_BOUNDS)
        want = fitted.temperature
    _require(
        model.temperature == want,
        f"temperature {model.temperature!r} is not the one fitted on compare() of the "
        f"{len(cal)} calibration pairs alone ({want!r})",
    )


CHECKS: tuple[Check, ...] = (
    check_not_fitted,
    check_score_shapes,
    check_uncertainty_variances,
    check_determinism,
    check_save_load,
    check_batch_invariance,
    check_aggregations,
    check_temperature,
)
"""Every conformance check, in the order :func:`check_reward_model` runs them."""


def check_reward_model(
    make_model: Callable[[int], RewardModelBase],
    pairs: Sequence[PreferencePair],
    *,
    tmp_dir: str | Path,
    test_pairs: Sequence[PreferencePair] | None = None,
    calibration_pairs: Sequence[PreferencePair] | None = None,
    seed: int = 0,
    batch_rtol: float = 0.0,
    seed_changes_scores: bool = True,
    load: Callable[[Path], RewardModelBase] = _default_load,
    epistemic: str | None = None,
    aleatoric: str | None = None,
    checks: Sequence[Check] = CHECKS,
    label: str | None = None,
) -> ConformanceCase:
    """Run every conformance check on the family ``make_model`` builds.

    ``make_model(seed)`` returns a new, unfitted model (equal seeds, equal models).
    The other arguments are those of :class:`ConformanceCase`; ``checks`` picks a
    subset of :data:`CHECKS`. Every check runs; if any fails, one
    ``AssertionError`` lists each failed check by name with its message.

    Returns:
        The case, with its fitted models cached (``case.fitted()``).

    Example:
        >>> # check_reward_model(lambda s: EnsembleRewardModel(config_with_seed(s)),
        >>> #                    train_pairs, tmp_dir=tmp_path, test_pairs=held_out)
    """
    case = ConformanceCase(
        make_model,
        pairs,
        tmp_dir,
        test_pairs=test_pairs,
        calibration_pairs=calibration_pairs,
        seed=seed,
        batch_rtol=batch_rtol,
        seed_changes_scores=seed_changes_scores,
        load=load,
        epistemic=epistemic,
        aleatoric=aleatoric,
        label=label,
    )
    failures = []
    for check in checks:
        try:
            check(case)
        except AssertionError as exc:
            failures.append(str(exc))
    if failures:
        raise AssertionError(
            f"{len(failures)} of {len(checks)} conformance checks failed for {case.name()}:\n- "
            + "\n- ".join(failures)
        )
    return case
