"""The token-budget rule for one cross-encoded (prompt, response) sequence.

The layout is ``[CLS] prompt_tail [SEP] response_head [SEP]``, so the budget
for content is ``B = max_length - 3``. The response keeps up to
``B - min(len(prompt), B // 4)`` tokens from its start; the prompt then fills
what is left from its end (cut from the left, so the latest turn survives).
A long prompt therefore never pushes the response out, and a long prompt
keeps at least a quarter of the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

N_SPECIAL = 3
"""Special tokens in the layout: [CLS], [SEP] after the prompt, [SEP] at the end."""


@dataclass(frozen=True)
class TruncatedPair:
    prompt: list[int]
    """The kept tail of the prompt ids."""
    response: list[int]
    """The kept head of the response ids."""
    prompt_truncated: bool
    response_truncated: bool

    @property
    def truncated(self) -> bool:
        return self.prompt_truncated or self.response_truncated


def content_budget(max_length: int) -> int:
    """Tokens available for prompt + response once the specials are placed."""
    return max_length - N_SPECIAL


def split_budget(n_prompt: int, n_response: int, budget: int) -> tuple[int, int]:
    """How many prompt and response tokens fit in ``budget`` content tokens.

    The response keeps up to ``budget - min(n_prompt, budget // 4)``; the prompt
    fills what is left. Returns ``(prompt_keep, response_keep)``.

    Example:
        >>> split_budget(100, 100, 40)
        (10, 30)
    """
    r_keep = min(n_response, budget - min(n_prompt, budget // 4))
    return min(n_prompt, budget - r_keep), r_keep


def truncate_pair(
    prompt_ids: Sequence[int], response_ids: Sequence[int], max_length: int
) -> TruncatedPair:
    """Apply the budget rule (see the module docstring).

    Example:
        >>> t = truncate_pair(list(range(100)), list(range(1000, 1100)), 43)
        >>> len(t.prompt), len(t.response), t.prompt[-1], t.response[0]
        (10, 30, 99, 1000)
    """
    budget = content_budget(max_length)
    if budget < 1:
        raise ValueError(f"max_length == {max_length}, must be >= {N_SPECIAL + 1}.")
    n_p, n_r = len(prompt_ids), len(response_ids)
    p_keep, r_keep = split_budget(n_p, n_r, budget)
    return TruncatedPair(
        prompt=list(prompt_ids[n_p - p_keep :]),
        response=list(response_ids[:r_keep]),
        prompt_truncated=p_keep < n_p,
        response_truncated=r_keep < n_r,
    )
