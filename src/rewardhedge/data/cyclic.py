"""A generated rock–paper–scissors preference set: intransitive on purpose.

Each prompt gets three responses, one per move (``rock``, ``paper``, ``scissors``;
the move is written in the text, among random filler words), and all three
comparisons between them. With ``structure="cyclic"`` the preferences form a cycle,
paper ≻ rock, scissors ≻ paper, rock ≻ scissors, so any scalar reward, which orders
the three responses, gets at most 2 of a prompt's 3 comparisons right: every
Bradley–Terry model is capped at accuracy 2/3 here, while a general preference
model (``rewardhedge.estimators.general_preference``) can reach 1.
``structure="transitive"`` orders the same texts scissors ≻ paper ≻ rock, which a
scalar reward can fit exactly: the control.

Example:
    >>> pairs = rock_paper_scissors_pairs(2, seed=0)
    >>> len(pairs), sorted({(move_of(p.chosen), move_of(p.rejected)) for p in pairs})
    (6, [('paper', 'rock'), ('rock', 'scissors'), ('scissors', 'paper')])
"""

from __future__ import annotations

import itertools

import numpy as np

from rewardhedge.errors import ConfigError
from rewardhedge.types import PreferencePair

__all__ = ["MOVES", "STRUCTURES", "move_of", "prefers", "rock_paper_scissors_pairs"]

MOVES = ("rock", "paper", "scissors")
"""The three response types; each response names exactly one of them."""

STRUCTURES = ("cyclic", "transitive")

_BEATS = {
    "cyclic": {("paper", "rock"), ("scissors", "paper"), ("rock", "scissors")},
    "transitive": {("paper", "rock"), ("scissors", "paper"), ("scissors", "rock")},
}
"""``(winner, loser)`` for each unordered pair of moves."""

_OPENERS = ("Sure.", "Alright,", "Okay:", "Here goes:", "Right,", "Well,", "Fine,", "So,")
# No word here shares a bucket with a move in the 64-wide hashing encoder the tests use
# (its response block is 48 wide), so the move stays visible to it.
_FILLER = (
    "today", "again", "quickly", "obviously", "honestly", "for sure", "this time",
    "with confidence", "without doubt", "as planned", "by instinct", "for luck",
    "naturally", "carefully", "happily", "after thinking", "once more", "boldly",
)  # fmt: skip
_TOPICS = (
    "the tournament", "a friendly match", "the final round", "a bet", "the practice game",
    "a coin of honour", "the office league", "a rematch", "the school yard", "the cup",
)  # fmt: skip


def prefers(winner: str, loser: str, structure: str = "cyclic") -> bool:
    """Whether ``winner`` beats ``loser`` under ``structure`` (two different moves)."""
    if structure not in _BEATS:
        raise ConfigError(f"structure == {structure!r}, must be one of: {', '.join(STRUCTURES)}.")
    return (winner, loser) in _BEATS[structure]


def move_of(text: str) -> str:
    """The move a generated response names."""
    found = [m for m in MOVES if f"throwing {m}" in text.lower()]
    if len(found) != 1:
        raise ValueError(f"{text!r} names {len(found)} moves, expected one.")
    return found[0]


def _response(move: str, rng: np.random.Generator) -> str:
    opener = _OPENERS[int(rng.integers(len(_OPENERS)))]
    k = int(rng.integers(1, 4))
    filler = " ".join(str(w) for w in rng.choice(_FILLER, size=k, replace=False))
    return f"{opener} throwing {move} {filler}."


def rock_paper_scissors_pairs(
    n_prompts: int,
    *,
    seed: int = 0,
    structure: str = "cyclic",
    flip: float = 0.0,
) -> list[PreferencePair]:
    """``3 · n_prompts`` pairs: every two of a prompt's three responses (one per move).

    Args:
        n_prompts: prompts to generate (each gives 3 pairs).
        seed: seeds the texts, the side order and the flips; prompts of different
            seeds differ (the seed is in the prompt), so sets of two seeds are
            prompt-disjoint.
        structure: ``cyclic`` (paper ≻ rock ≻ scissors ≻ paper: a scalar reward gets
            at most 2/3 right) or ``transitive`` (scissors ≻ paper ≻ rock).
        flip: probability that a pair's label is flipped (label noise).

    Returns:
        Pairs with ``subset`` = the structure and ``id`` = ``"<structure>-<seed>-<prompt>-<j>"``.
    """
    if isinstance(n_prompts, bool) or not isinstance(n_prompts, int) or n_prompts < 1:
        raise ConfigError(f"n_prompts == {n_prompts!r}, must be an integer >= 1.")
    if structure not in _BEATS:
        raise ConfigError(f"structure == {structure!r}, must be one of: {', '.join(STRUCTURES)}.")
    if not 0.0 <= flip <= 1.0:
        raise ConfigError(f"flip == {flip!r}, must be in [0, 1].")
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n_prompts):
        topic = _TOPICS[int(rng.integers(len(_TOPICS)))]
        prompt = f"Round {seed}-{i} of {topic}: rock, paper or scissors? Pick one."
        texts = {m: _response(m, rng) for m in MOVES}
        for j, (a, b) in enumerate(itertools.combinations(MOVES, 2)):
            win, lose = (a, b) if prefers(a, b, structure) else (b, a)
            if rng.random() < flip:
                win, lose = lose, win
            pairs.append(
                PreferencePair(
                    prompt,
                    texts[win],
                    texts[lose],
                    subset=structure,
                    id=f"{structure}-{seed}-{i}-{j}",
                )
            )
    return pairs
