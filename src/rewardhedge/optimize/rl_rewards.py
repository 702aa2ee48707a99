"""Rewards for RL trainers: a TRL ``reward_funcs`` adapter (and PF-PPO-style filtering).

Why: an RL policy is optimised *against* the reward model, so it drifts to
exactly the responses the model is least sure about. The adapter hands TRL
(GRPO, RLOO, ...) the reward of a :class:`RewardRule` (e.g. a conservative
aggregation) and can abstain (``None``, which TRL turns into NaN, "no
reward") where the ensemble disagrees too much; :func:`filter_by_uncertainty`
(defined in :mod:`rewardhedge.optimize.policy_filter`, re-exported here)
drops or down-weights such samples before the policy update.

Numpy only; the server client (:mod:`rewardhedge.optimize.remote`, httpx)
is imported only when a URL or remote source is used.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from rewardhedge.encoders.base import check_texts
from rewardhedge.errors import ConfigError, unknown_option
from rewardhedge.optimize.policy_filter import BatchFilter, filter_by_uncertainty
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
        fetch = getattr(source, "fetch_rule", None)
        own = fetch() if callable(fetch) else getattr(source, "rule", None)
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
            ``None`` takes the source's own rule: ``model.rule`` for a local
            model, the server's (``GET /v1/model``) for a remote one, else the
            mean. Either way it is applied here, to the estimate, with the
            batch's prompts as groups and one running-mean state kept across calls.
        abstain_above: if set, items whose uncertainty (a std, reward units)
            is above it get ``None`` (TRL: NaN, no reward). The rule still
            sees the whole batch, so a kept item's reward does not depend on it.
        abstain_on: ``"epistemic"`` (ensemble disagreement) or ``"total"``.
        format_prompt, format_completion: turn TRL prompts/completions (str or
            conversations) into text; default :func:`format_prompt` /
            :func:`format_completion` (HH-RLHF style).
        name: the function's ``__name__``, which TRL logs.

    Other keyword arguments (``completion_ids``, ``trainer_state``, dataset
    columns) are accepted and ignored. The function's ``source`` and ``rule``
    attributes are the model it calls (close a remote one with
    ``fn.source.close()``) and the rule it applies.
    """
    ad = _Adapter(source, rule, abstain_above, abstain_on, format_prompt, format_completion, name)

    def reward_fn(
        prompts: Sequence[Any], completions: Sequence[Any], **_: Any
    ) -> list[float | None]:
        p, c = ad.texts(prompts, completions)
        return ad.finish(ad.source.score(p, c), p)

    return _named(reward_fn, ad, name)


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

    return _named(reward_fn, ad, name)


def _named(fn: Callable[..., Any], ad: _Adapter, name: str) -> Callable[..., Any]:
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = ad.doc()
    fn.source = ad.source  # type: ignore[attr-defined]
    fn.rule = ad.rule  # type: ignore[attr-defined]
    return fn
