"""One token sequence per (prompt, response), as a fine-tuned reward backbone reads it.

A sequence is ``head + prompt + middle + response + tail``: the fixed parts
are the special tokens or the chat template's markup, and only the prompt and
the response text are ever cut. When the sequence is too long the prompt loses
tokens from its left and the response keeps its start (the budget rule of
:func:`split_budget`), while the closing markup (end-of-turn, EOS, [SEP]) is
always kept, because the reward is read at the last token of a decoder.

Three layouts, picked from the tokenizer:

* ``chat``: the tokenizer has a chat template. The prompt becomes user and
  assistant turns (HH-RLHF's ``"\\n\\nHuman: … \\n\\nAssistant:"`` dialogues are
  split into their turns), the response the final assistant turn.
* ``pair``: an encoder with ``[CLS]``/``[SEP]`` (BERT-like): ``[CLS] p [SEP] r [SEP]``.
* ``plain``: ``BOS? prompt response EOS?``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardhedge.encoders.base import check_texts
from rewardhedge.encoders.truncation import split_budget

LAYOUTS = ("chat", "pair", "plain")

_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


@dataclass(frozen=True)
class TokenizedItem:
    """One encoded (prompt, response) and what truncation did to it."""

    ids: list[int]
    prompt_truncated: bool
    response_truncated: bool

    @property
    def truncated(self) -> bool:
        return self.prompt_truncated or self.response_truncated


def prompt_messages(prompt: str) -> list[dict[str, str]]:
    """Chat messages for a prompt: HH-RLHF dialogues split into turns, otherwise one user turn.

    Example:
        >>> prompt_messages("\\n\\nHuman: hi\\n\\nAssistant: hello\\n\\nHuman: why?\\n\\nAssistant:")
        [{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': 'hello'}, {'role': 'user', 'content': 'why?'}]
    """
    parts = _HH_TURN.split(prompt)
    if len(parts) < 3 or parts[0].strip():
        return [{"role": "user", "content": prompt}]
    messages = []
    for speaker, text in zip(parts[1::2], parts[2::2], strict=True):
        role = "user" if speaker == "Human" else "assistant"
        messages.append({"role": role, "content": text.strip()})
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    return messages or [{"role": "user", "content": prompt}]


def pick_layout(tokenizer: Any, use_chat_template: bool = True) -> str:
    """``chat`` when the tokenizer has a template (and it is wanted), ``pair`` for
    [CLS]/[SEP] encoders, otherwise ``plain``."""
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        return "chat"
    if tokenizer.cls_token_id is not None and tokenizer.sep_token_id is not None:
        return "pair"
    return "plain"


class RewardTokenizer:
    """Encodes (prompt, response) items for a reward backbone, keeping the response.

    Args:
        tokenizer: a Hugging Face tokenizer (fast or slow).
        max_length: token budget for the whole sequence, fixed parts included.
        use_chat_template: use the tokenizer's chat template when it has one.

    Example:
        >>> # tok = AutoTokenizer.from_pretrained("path/to/local/model")
        >>> # RewardTokenizer(tok, 1024).encode("question", "answer").ids
    """

    def __init__(self, tokenizer: Any, max_length: int, *, use_chat_template: bool = True) -> None:
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.layout = pick_layout(tokenizer, use_chat_template)
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self.pad_id = int(pad)

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of many texts in one call (a fast tokenizer batches them in Rust)."""
        if not texts:
            return []
        return [list(x) for x in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def _texts(self, prompt: str, response: str) -> tuple[str, str, str]:
        """``(prompt part, response, closing markup)`` as text, for the chat layout."""
        tok = self.tokenizer
        messages = prompt_messages(prompt)
        prefix = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        full = tok.apply_chat_template(
            [*messages, {"role": "assistant", "content": response}], tokenize=False
        )
        if full.startswith(prefix):
            rest = full[len(prefix) :]
            # Templates that trim contents (Llama 3, Gemma) render the stripped response.
            for content in dict.fromkeys((response, response.strip())):
                at = rest.find(content) if content else -1
                if at >= 0:
                    return prefix + rest[:at], content, rest[at + len(content) :]
            return prefix, rest, ""
        # A template that rewrites earlier turns once a reply follows: keep the prompt whole.
        return prefix, response, ""

    def _fixed(self) -> tuple[list[int], list[int], list[int]]:
        """The ``(head, middle, tail)`` special tokens of the pair and plain layouts."""
        tok = self.tokenizer
        if self.layout == "pair":
            return [tok.cls_token_id], [tok.sep_token_id], [tok.sep_token_id]
        head = [tok.bos_token_id] if tok.bos_token_id is not None else []
        tail = [tok.eos_token_id] if tok.eos_token_id is not None else []
        return head, [], tail

    def _cut(
        self, head: list[int], p: list[int], mid: list[int], r: list[int], tail: list[int]
    ) -> TokenizedItem:
        budget = self.max_length - len(head) - len(mid) - len(tail)
        if budget < 1:
            raise ValueError(
                f"max_length == {self.max_length} leaves no room for text: the {self.layout!r} "
                f"layout's fixed tokens alone take {len(head) + len(mid) + len(tail)}."
            )
        p_keep, r_keep = split_budget(len(p), len(r), budget)
        ids = head + p[len(p) - p_keep :] + mid + r[:r_keep] + tail
        return TokenizedItem(ids, p_keep < len(p), r_keep < len(r))

    def encode(self, prompt: str, response: str) -> TokenizedItem:
        """The token ids of one item, cut to ``max_length`` (see the module docstring)."""
        return self.encode_items([prompt], [response])[0]

    def encode_items(self, prompts: Sequence[str], responses: Sequence[str]) -> list[TokenizedItem]:
        """Every item encoded, with the text tokenised in a few batched calls."""
        prompts, responses = check_texts(prompts, responses)
        if self.layout == "chat":
            parts = [self._texts(p, r) for p, r in zip(prompts, responses, strict=True)]
            ps = self._ids([x[0] for x in parts])
            rs = self._ids([x[1] for x in parts])
            tails = self._ids([x[2] for x in parts])
            return [self._cut([], p, [], r, t) for p, r, t in zip(ps, rs, tails, strict=True)]
        head, mid, tail = self._fixed()
        ps, rs = self._ids(list(prompts)), self._ids(list(responses))
        return [self._cut(head, p, mid, r, tail) for p, r in zip(ps, rs, strict=True)]

    def encode_many(
        self, prompts: Sequence[str], responses: Sequence[str]
    ) -> tuple[list[list[int]], np.ndarray]:
        """Ids of every item and a boolean array of which were truncated."""
        items = self.encode_items(prompts, responses)
        return [i.ids for i in items], np.array([i.truncated for i in items], dtype=bool)


def pad_batch(
    sequences: Sequence[Sequence[int]], pad_id: int, multiple_of: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad to the longest (rounded up to ``multiple_of``): ``(input_ids, attention_mask)``.

    Example:
        >>> ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0, multiple_of=4)
        >>> ids.tolist(), mask.tolist()
        ([[5, 6, 7, 0], [8, 0, 0, 0]], [[1, 1, 1, 0], [1, 0, 0, 0]])
    """
    width = max(len(s) for s in sequences)
    width = -(-width // multiple_of) * multiple_of
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = s
        mask[i, : len(s)] = 1
    return ids, mask
