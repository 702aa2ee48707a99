"""Preference pairs as token ids, and the order they are trained in.

Chosen and rejected of a batch go through the network in one forward pass
(``2B`` sequences), padded to the batch's longest, so a batch should hold
pairs of similar length; or, with ``packing``, end to end in a few rows with
no padding to speak of (:func:`collate_packed`). :func:`pair_batches` shuffles, cuts the shuffled
pairs into mega-batches, sorts each by length and slices it: padding stays
small while the order stays random (the scheme of Hugging Face's
``group_by_length``). Every order is a pure function of ``(seed, epoch)``,
which is what makes resuming from a data position exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rewardhedge.encoders.packing import packed_inputs, plan_passes
from rewardhedge.encoders.reward_tokenizer import RewardTokenizer, pad_batch
from rewardhedge.types import PreferencePair

MEGABATCH = 64
"""Batches per length-sorted mega-batch."""


@dataclass
class EncodedPairs:
    """Token ids of every pair, with the targets the objectives read."""

    chosen: list[list[int]]
    rejected: list[list[int]]
    margin: np.ndarray
    """`(n,)` required reward gaps (0 where the data has none)."""
    chosen_score: np.ndarray
    """`(n,)` ratings of the chosen responses, NaN where absent."""
    rejected_score: np.ndarray
    truncated: np.ndarray
    """`(n,)` bool: the pair lost tokens to ``max_length`` (kept, but counted)."""

    def __len__(self) -> int:
        return len(self.chosen)

    @property
    def lengths(self) -> np.ndarray:
        """`(n,)` the longer side of each pair: the width it needs in a batch."""
        return np.array(
            [max(len(c), len(r)) for c, r in zip(self.chosen, self.rejected, strict=True)],
            dtype=np.int64,
        )

    @property
    def n_truncated(self) -> int:
        return int(self.truncated.sum())

    @classmethod
    def encode(cls, pairs: Sequence[PreferencePair], tokenizer: RewardTokenizer) -> EncodedPairs:
        prompts = [p.prompt for p in pairs]
        chosen, trunc_c = tokenizer.encode_many(prompts, [p.chosen for p in pairs])
        rejected, trunc_r = tokenizer.encode_many(prompts, [p.rejected for p in pairs])

        def numbers(values: list[float | None], fill: float) -> np.ndarray:
            return np.array([fill if v is None else v for v in values], dtype=np.float32)

        return cls(
            chosen=chosen,
            rejected=rejected,
            margin=numbers([p.margin for p in pairs], 0.0),
            chosen_score=numbers([p.chosen_score for p in pairs], np.nan),
            rejected_score=numbers([p.rejected_score for p in pairs], np.nan),
            truncated=trunc_c | trunc_r,
        )


@dataclass
class PairBatch:
    """One micro-batch as tensors: ``2B`` sequences, chosen first."""

    index: np.ndarray
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    margin: torch.Tensor
    scores: torch.Tensor
    """`(2B,)` ratings of chosen then rejected (NaN where absent)."""
    n_tokens: int
    """Real (unpadded) tokens, counted on the host."""
    n_padded: int
    """Tokens including padding."""
    position_ids: torch.Tensor | None = None
    """Packed batches only: positions, restarting at 0 for every sequence."""
    pool_at: torch.Tensor | None = None
    """Packed batches only: `(2B,)` flat index of each sequence's pooled token."""

    def to(self, device: torch.device | str) -> PairBatch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return PairBatch(
            self.index,
            move(self.input_ids),
            move(self.attention_mask),
            move(self.margin),
            move(self.scores),
            self.n_tokens,
            self.n_padded,
            move(self.position_ids),
            move(self.pool_at),
        )

    @property
    def model_inputs(self) -> tuple[torch.Tensor | None, ...]:
        """What the reward network takes: ids and mask, plus the packing tensors."""
        if self.position_ids is None:
            return (self.input_ids, self.attention_mask)
        return (self.input_ids, self.attention_mask, self.position_ids, self.pool_at)


def collate(data: EncodedPairs, index: np.ndarray, pad_id: int, multiple_of: int) -> PairBatch:
    """Stack chosen then rejected sequences of ``index`` into one padded batch."""
    seqs = [data.chosen[i] for i in index] + [data.rejected[i] for i in index]
    ids, mask = pad_batch(seqs, pad_id, multiple_of)
    scores = np.concatenate([data.chosen_score[index], data.rejected_score[index]])
    return PairBatch(
        index=index,
        input_ids=torch.from_numpy(ids),
        attention_mask=torch.from_numpy(mask),
        margin=torch.from_numpy(data.margin[index]),
        scores=torch.from_numpy(scores),
        n_tokens=int(mask.sum()),
        n_padded=int(mask.size),
    )


def collate_packed(
    data: EncodedPairs,
    index: np.ndarray,
    pad_id: int,
    multiple_of: int,
    *,
    row_tokens: int,
    pooling: str,
) -> PairBatch:
    """Chosen then rejected sequences of ``index`` packed end to end into rows of about
    ``row_tokens`` (padding-free: rows are nearly equal in length, see
    :func:`~rewardhedge.encoders.packing.plan_passes`), for one forward pass; the
    tensors come from :func:`~rewardhedge.encoders.packing.packed_inputs`."""
    seqs = [data.chosen[i] for i in index] + [data.rejected[i] for i in index]
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    (rows,) = plan_passes(lengths, max(row_tokens, int(lengths.max())), len(seqs))
    ids, mask, positions, at = packed_inputs(seqs, rows, pad_id, pooling, multiple_of)
    scores = np.concatenate([data.chosen_score[index], data.rejected_score[index]])
    return PairBatch(
        index=index,
        input_ids=ids,
        attention_mask=mask,
        margin=torch.from_numpy(data.margin[index]),
        scores=torch.from_numpy(scores),
        n_tokens=int(lengths.sum()),
        n_padded=ids.numel(),
        position_ids=positions,
        pool_at=at,
    )


def pair_batches(
    lengths: np.ndarray, batch_size: int, *, seed: int, epoch: int, group_by_length: bool = True
) -> list[np.ndarray]:
    """The batches of one epoch, in training order (a pure function of seed and epoch).

    Example:
        >>> b = pair_batches(np.array([5, 50, 6, 49]), 2, seed=0, epoch=0)
        >>> sorted(sorted(x.tolist()) for x in b)
        [[0, 2], [1, 3]]
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches: list[np.ndarray] = []
    mega = MEGABATCH * batch_size
    for lo in range(0, len(order), mega):
        chunk = order[lo : lo + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def padding_fraction(
    chosen_lengths: np.ndarray, rejected_lengths: np.ndarray, batches: Sequence[np.ndarray]
) -> float:
    """Share of the tokens of the padded batches that are padding (chosen and rejected
    of a batch padded to its longest sequence, as :func:`collate` does).

    Example:
        >>> padding_fraction(np.array([4, 2]), np.array([2, 4]), [np.array([0, 1])])
        0.25
    """
    real = padded = 0
    for b in batches:
        real += int(chosen_lengths[b].sum() + rejected_lengths[b].sum())
        padded += max(int(chosen_lengths[b].max()), int(rejected_lengths[b].max())) * 2 * len(b)
    return 1.0 - real / padded if padded else 0.0
