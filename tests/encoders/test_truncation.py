"""The token-budget rule, on plain id lists (no tokenizer needed)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewardhedge.encoders.truncation import N_SPECIAL, truncate_pair


def test_long_prompt_keeps_its_end_and_response_its_start() -> None:
    prompt = list(range(1000))
    response = list(range(5000, 5010))
    t = truncate_pair(prompt, response, max_length=64)
    budget = 64 - N_SPECIAL
    assert t.response == response  # a short response survives whole
    assert t.prompt == prompt[-(budget - 10) :]  # the prompt fills the rest from its end
    assert t.prompt_truncated and not t.response_truncated and t.truncated


def test_long_response_keeps_three_quarters_and_prompt_a_quarter() -> None:
    budget = 256 - N_SPECIAL
    t = truncate_pair(list(range(500)), list(range(1000, 2000)), max_length=256)
    assert len(t.response) == budget - budget // 4 >= 0.75 * budget
    assert t.response == list(range(1000, 1000 + len(t.response)))
    assert t.prompt == list(range(500))[-(budget // 4) :]
    assert t.prompt_truncated and t.response_truncated


def test_short_prompt_gives_the_response_the_rest() -> None:
    budget = 32 - N_SPECIAL
    t = truncate_pair([1, 2, 3], list(range(100, 200)), max_length=32)
    assert t.prompt == [1, 2, 3]
    assert len(t.response) == budget - 3
    assert not t.prompt_truncated and t.response_truncated


def test_nothing_cut_when_it_fits() -> None:
    t = truncate_pair([1, 2], [3, 4, 5], max_length=8)
    assert (t.prompt, t.response, t.truncated) == ([1, 2], [3, 4, 5], False)


def test_empty_parts() -> None:
    assert truncate_pair([], [], 8).prompt == []
    t = truncate_pair(list(range(50)), [], 16)
    assert t.response == [] and t.prompt == list(range(50))[-13:]


def test_max_length_too_small() -> None:
    with pytest.raises(ValueError, match="max_length"):
        truncate_pair([1], [2], 3)


@given(
    n_p=st.integers(0, 700),
    n_r=st.integers(0, 700),
    max_length=st.integers(8, 520),
)
def test_rule_properties(n_p: int, n_r: int, max_length: int) -> None:
    prompt, response = list(range(n_p)), list(range(10_000, 10_000 + n_r))
    t = truncate_pair(prompt, response, max_length)
    budget = max_length - N_SPECIAL
    assert len(t.prompt) + len(t.response) <= budget
    assert t.prompt == prompt[len(prompt) - len(t.prompt) :]  # a suffix
    assert t.response == response[: len(t.response)]  # a prefix
    assert len(t.response) == min(n_r, budget - min(n_p, budget // 4))
    assert len(t.prompt) >= min(n_p, budget // 4)
    if n_p + n_r <= budget:
        assert not t.truncated
    else:  # the budget is used in full
        assert len(t.prompt) + len(t.response) == budget
    assert t.prompt_truncated == (len(t.prompt) < n_p)
    assert t.response_truncated == (len(t.response) < n_r)
