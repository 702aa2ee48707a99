"""Rewards for RL trainers: a TRL ``reward_funcs`` adapter and PF-PPO-style batch filtering.

Why: an RL policy is optimised *against* the reward model, so it drifts to
exactly the responses the model is least sure about. The adapter hands TRL
(GRPO, RLOO, ...) the reward of a :class:`RewardRule` (e.g. a conservative
aggregation) and can abstain (``None``, which TRL turns into NaN, "no
reward") where the ensemble disagrees too much; :func:`filter_by_uncertainty`
drops or down-weights such samples before the policy update.

Numpy only; the server client (:mod:`rewardhedge.optimize.remote`, httpx)
is imported only when a URL or remote source is used.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardhedge.encoders.base import check_texts
from rewardhedge.errors import ConfigError, unknown_option
from rewardhedge.types import RewardEstimate
from rewardhedge.uncertainty.reward_rule import RewardRule

__all__ = [
    "ABSTAIN_ON",
    "BatchFilter",
    "async_reward_function",
    "filter_by_uncertainty",
    "format_completion",
    "format_prompt",
    "reward_function",
]

ABSTAIN_ON: tuple[str, ...] = ("epistemic", "total")
"""What ``abstain_above`` is compared with: the epistemic std, or sqrt(epistemic + aleatoric)."""

FILTER_MODES: tuple[str, ...] = ("filter", "weight")

_ROLES = {"user": "Human", "assistant": "Assistant"}


def _content(message: Any) -> str:
    """A message's text; multimodal content lists keep their text parts only."""
    if not isinstance(message, dict) or "content" not in message:
        raise TypeError(f"a conversation message must be a dict with 'content', got {message!r}.")
    content = message["content"]
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def format_prompt(prompt: str | Sequence[dict[str, Any]]) -> str:
    """A TRL prompt as the HH-RLHF text our reward models were trained on.

    A str is returned as is. A conversation becomes ``"\\n\\nHuman: {user}
    \\n\\nAssistant: {assistant}...\\n\\nAssistant:"``: system (and developer)
    messages are put first as plain text, other roles are written as
    ``"\\n\\n{Role}: {content}"``, and the final ``"\\n\\nAssistant:"`` marker
    is where :func:`rewardhedge.data.hh.split_hh_dialogue` cuts training prompts.
    """
    if isinstance(prompt, str):
        return prompt
    head, turns = [], []
    for msg in prompt:
        role = msg.get("role", "user") if isinstance(msg, dict) else "user"
        if role in ("system", "developer"):
            head.append(_content(msg))
        else:
            turns.append(f"\n\n{_ROLES.get(role, str(role).capitalize())}: {_content(msg)}")
    return "\n\n".join(head) + "".join(turns) + "\n\nAssistant:"


def format_completion(completion: str | Sequence[dict[str, Any]]) -> str:
    """A TRL completion as a response: a str as is, a conversation as its contents
    joined by blank lines (usually just the one assistant message)."""
    if isinstance(completion, str):
        return completion
    return "\n\n".join(_content(m) for m in completion)


def _check_options(abstain_above: float | None, abstain_on: str, name: str) -> None:
    if abstain_above is not None and (
        isinstance(abstain_above, bool)
        or not isinstance(abstain_above, int | float)
        or not (math.isfinite(abstain_above) and abstain_above >= 0)
    ):
        raise ConfigError(
            f"abstain_above == {abstain_above!r}, must be a finite number >= 0 "
            "(an uncertainty in reward units) or None."
        )
    if abstain_on not in ABSTAIN_ON:
        raise unknown_option("abstain_on", abstain_on, ABSTAIN_ON)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"name == {name!r}, must be a non-empty string (TRL logs it).")


def _resolve_source(source: Any) -> Any:
    if isinstance(source, str):
        from rewardhedge.optimize.remote import RemoteRewardModel

        return RemoteRewardModel(source, token=os.environ.get("REWARDHEDGE_TOKEN") or None)
    if not callable(getattr(source, "score", None)):
        raise ConfigError(
            f"source == {source!r}, must be a reward model with score(prompts, responses), "
            "a RemoteRewardModel, or a reward server URL."
        )
    return source


def _resolve_rule(rule: RewardRule | str | None, source: Any) -> RewardRule:
    if rule is None:
        own = getattr(source, "rule", None)
        return own if isinstance(own, RewardRule) else RewardRule()
    if isinstance(rule, RewardRule):
        return rule
    if isinstance(rule, str):
        try:
            return RewardRule.parse(rule)
        except ConfigError as exc:
            raise ConfigError(f"rule: {exc}") from exc
    raise ConfigError(f"rule == {rule!r}, must be a RewardRule, an aggregation name or None.")


class _Adapter:
    """What the sync and async reward functions share: texts in, rewards out."""

    def __init__(
        self,
        source: Any,
        rule: RewardRule | str | None,
        abstain_above: float | None,
        abstain_on: str,
        fp: Callable[[Any], str] | None,
        fc: Callable[[Any], str] | None,
        name: str,
    ) -> None:
        _check_options(abstain_above, abstain_on, name)
        for opt, fn in (("format_prompt", fp), ("format_completion", fc)):
            if fn is not None and not callable(fn):
                raise ConfigError(f"{opt} == {fn!r}, must be a callable or None.")
        self.source = _resolve_source(source)
        self.rule = _resolve_rule(rule, self.source)
        self.state = self.rule.new_state() if self.rule.needs_state else None
        self.abstain_above = None if abstain_above is None else float(abstain_above)
        self.abstain_on = abstain_on
        self.format_prompt: Callable[[Any], str] = fp or format_prompt
        self.format_completion: Callable[[Any], str] = fc or format_completion
        self._lock = threading.Lock()

    def texts(
        self, prompts: Sequence[Any], completions: Sequence[Any]
    ) -> tuple[list[str], list[str]]:
        return check_texts(
            [self.format_prompt(p) for p in prompts],
            [self.format_completion(c) for c in completions],
        )

    def finish(self, est: RewardEstimate, prompts: list[str]) -> list[float | None]:
        """The rule's rewards for the whole batch, then ``None`` where uncertainty is too high."""
        with self._lock:  # the running-mean state is shared by every call
            rewards = self.rule.apply(est, groups=prompts, state=self.state)
        out: list[float | None] = [float(r) for r in rewards]
        if self.abstain_above is not None:
            var = est.epistemic if self.abstain_on == "epistemic" else est.total
            unc = np.sqrt(np.maximum(var, 0.0))
            for i in np.flatnonzero(~(unc <= self.abstain_above)):  # NaN abstains too
                out[i] = None
        return out

    def doc(self) -> str:
        src = getattr(self.source, "url", type(self.source).__name__)
        abstain = (
            ""
            if self.abstain_above is None
            else f" None where the {self.abstain_on} std > {self.abstain_above:g}."
        )
        return f"rewardhedge reward ({self.rule.label()}) from {src}.{abstain}"


def reward_function(
    source: Any,
    *,
    rule: RewardRule | str | None = None,
    abstain_above: float | None = None,
    abstain_on: str = "epistemic",
    format_prompt: Callable[[Any], str] | None = None,
    format_completion: Callable[[Any], str] | None = None,
    name: str = "rewardhedge",
) -> Callable[..., list[float | None]]:
    """A TRL reward function: ``f(prompts=..., completions=..., **kwargs) -> list[float | None]``.

    Args:
        source: a model with ``score(prompts, responses) -> RewardEstimate``
            (an ``EnsembleRewardModel``, a ``RemoteRewardModel``) or a server
            URL (token from ``$REWARDHEDGE_TOKEN``).
        rule: a :class:`RewardRule` or an aggregation name (``"uwo"``);
            ``None`` takes ``source.rule`` when it is a RewardRule (local
            models), else the mean. A remote server's own rule is *not* used:
            it is applied here, to the estimate, with the prompts as groups
            and one running-mean state kept across calls.
        abstain_above: if set, items whose uncertainty (a std, reward units)
            is above it get ``None`` (TRL: NaN, no reward). The rule still
            sees the whole batch, so a kept item's reward does not depend on it.
        abstain_on: ``"epistemic"`` (ensemble disagreement) or ``"total"``.
        format_prompt, format_completion: turn TRL prompts/completions (str or
            conversations) into text; default :func:`format_prompt` /
            :func:`format_completion` (HH-RLHF style).
        name: the function's ``__name__``, which TRL logs.

    Other keyword arguments (``completion_ids``, ``trainer_state``, dataset
    columns) are accepted and ignored.
    """
    ad = _Adapter(source, rule, abstain_above, abstain_on, format_prompt, format_completion, name)

    def reward_fn(
        prompts: Sequence[Any], completions: Sequence[Any], **_: Any
    ) -> list[float | None]:
        p, c = ad.texts(prompts, completions)
        return ad.finish(ad.source.score(p, c), p)

    reward_fn.__name__ = reward_fn.__qualname__ = name
    reward_fn.__doc__ = ad.doc()
    return reward_fn


def async_reward_function(
    source: Any,
    *,
    rule: RewardRule | str | None = None,
    abstain_above: float | None = None,
    abstain_on: str = "epistemic",
    format_prompt: Callable[[Any], str] | None = None,
    format_completion: Callable[[Any], str] | None = None,
    name: str = "rewardhedge",
) -> Callable[..., Awaitable[list[float | None]]]:
    """:func:`reward_function` as an ``async def``, which TRL awaits concurrently with others.

    Uses ``source.ascore`` when the source has it (remote), else runs
    ``source.score`` in a worker thread so the event loop is not blocked.
    """
    ad = _Adapter(source, rule, abstain_above, abstain_on, format_prompt, format_completion, name)
    ascore = getattr(ad.source, "ascore", None)

    async def reward_fn(
        prompts: Sequence[Any], completions: Sequence[Any], **_: Any
    ) -> list[float | None]:
        p, c = ad.texts(prompts, completions)
        if callable(ascore):
            est = await ascore(p, c)
        else:
            est = await asyncio.to_thread(ad.source.score, p, c)
        return ad.finish(est, p)

    reward_fn.__name__ = reward_fn.__qualname__ = name
    reward_fn.__doc__ = ad.doc()
    return reward_fn


@dataclass(frozen=True)
class BatchFilter:
    """Which samples of a batch to train on, and with what weight.

    Attributes:
        mask: `(n,)` bool, True for kept samples.
        weights: `(n,)` float; 0 for dropped samples, mean 1 over kept ones.
        threshold: ``filter`` mode: the largest kept uncertainty (with
            ``keep``) or ``max_uncertainty``; ``weight`` mode: the scale
            ``s``. NaN for an empty batch.
    """

    mask: np.ndarray
    weights: np.ndarray
    threshold: float

    @property
    def n_kept(self) -> int:
        return int(self.mask.sum())

    @property
    def indices(self) -> np.ndarray:
        """Indices of the kept samples, ascending."""
        return np.flatnonzero(self.mask)


def _uncertainty(u: RewardEstimate | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(u, RewardEstimate):
        return np.sqrt(np.maximum(u.epistemic, 0.0))
    arr = np.asarray(u, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"uncertainty must have shape (n,), got {arr.shape}.")
    bad = np.flatnonzero(np.isnan(arr) | (arr < 0))
    if bad.size:
        raise ValueError(
            f"uncertainty[{bad[0]}] == {arr[bad[0]]!r}; uncertainties must be >= 0 (not NaN)."
        )
    return arr


def _n_keep(keep: float, n: int) -> int:
    """``ceil(keep·n)``, rounded first so 0.3·10 keeps 3, not 4."""
    return math.ceil(round(keep * n, 9))


def _check_number(name: str, value: Any, *, upper: float | None) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and not math.isnan(value)
    if ok and upper is not None:
        ok = 0 < value <= upper
    elif ok:
        ok = value >= 0
    if not ok:
        rule = "in (0, 1]" if upper is not None else ">= 0"
        raise ConfigError(f"{name} == {value!r}, must be a number {rule}.")
    return float(value)


def filter_by_uncertainty(
    uncertainty: RewardEstimate | np.ndarray | Sequence[float],
    *,
    keep: float | None = None,
    max_uncertainty: float | None = None,
    mode: str = "filter",
    groups: Sequence[Hashable] | None = None,
) -> BatchFilter:
    """Drop (or down-weight) the samples whose reward the model is least sure of.

    PF-PPO ("Policy Filtration in RLHF") trains only on samples whose reward
    is reliable, because gradients from mis-rewarded samples teach the policy
    the reward model's mistakes. Here reliability is the model's own
    uncertainty: the std of the ensemble (``uncertainty`` as an `(n,)` array of
    stds, or a :class:`RewardEstimate`, whose epistemic std is used).

    Modes:
        ``"filter"``: keep the ``ceil(keep·n)`` most certain samples
        (``0 < keep <= 1``; at least one), or those with uncertainty
        ``<= max_uncertainty``; give exactly one of the two. Kept weights are 1.
        Ties go to the lower index. With ``groups`` (e.g. prompt ids, one GRPO
        group each) the rule applies within each group and every group keeps
        at least its most certain sample.
        ``"weight"``: keep all, with ``w_i = 1 / (1 + (u_i / s)²)`` for
        ``s`` = the median uncertainty (or ``max_uncertainty``), scaled to
        mean 1: a sample at ``s`` counts half as much as a certain one.
    """
    if mode not in FILTER_MODES:
        raise unknown_option("mode", mode, FILTER_MODES)
    u = _uncertainty(uncertainty)
    n = u.shape[0]
    if groups is not None and len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} samples; they must match.")
    if max_uncertainty is not None:
        max_uncertainty = _check_number("max_uncertainty", max_uncertainty, upper=None)
    if mode == "weight":
        if keep is not None or groups is not None:
            raise ConfigError("keep and groups are only used by mode='filter'; leave them None.")
        return _weights(u, max_uncertainty)
    if (keep is None) == (max_uncertainty is None):
        raise ConfigError(
            f"mode='filter' needs exactly one of keep (got {keep!r}) and "
            f"max_uncertainty (got {max_uncertainty!r})."
        )
    if keep is not None:
        keep = _check_number("keep", keep, upper=1.0)
    mask = np.zeros(n, dtype=bool)
    for idx in _group_indices(groups, n):
        order = idx[np.argsort(u[idx], kind="stable")]
        if keep is not None:
            mask[order[: _n_keep(keep, idx.size)]] = True
        else:
            ok = idx[u[idx] <= max_uncertainty]
            mask[ok if ok.size or groups is None else order[:1]] = True
    if keep is not None:
        threshold = float(u[mask].max()) if mask.any() else math.nan
    else:
        threshold = float(max_uncertainty)  # type: ignore[arg-type]
    return BatchFilter(mask, mask.astype(np.float64), threshold)


def _group_indices(groups: Sequence[Hashable] | None, n: int) -> list[np.ndarray]:
    if groups is None:
        return [np.arange(n)] if n else []
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    return [np.asarray(v, dtype=np.int64) for v in members.values()]


def _weights(u: np.ndarray, scale: float | None) -> BatchFilter:
    n = u.shape[0]
    if n == 0:
        return BatchFilter(np.zeros(0, dtype=bool), np.zeros(0), math.nan)
    s = float(np.median(u)) if scale is None else scale
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(u == 0, 0.0, u / s)  # s == 0: only certain samples get weight
    ratio = np.nan_to_num(ratio, nan=np.inf)  # inf / inf: s is inf, so is this sample
    w = 1.0 / (1.0 + ratio**2)
    total = w.sum()
    w = w * (n / total) if total > 0 else np.ones(n)  # all infinitely uncertain: uniform
    return BatchFilter(np.ones(n, dtype=bool), w, s)
