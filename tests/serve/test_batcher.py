"""MicroBatcher on a real event loop: closed-loop callers share batches, lone callers never wait.

The scoring function stands in for a model whose forward pass costs about the
same for one item as for eight (a CPU encoder): it sleeps a fixed time per
call and scores each response by its length, so every answer can be checked.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from rewardhedge.serve.batcher import MicroBatcher
from rewardhedge.types import RewardEstimate


def slow_length_scorer(seconds: float):
    def score(prompts: list[str], responses: list[str]) -> RewardEstimate:
        time.sleep(seconds)
        lengths = np.array([len(r) for r in responses], dtype=float)
        return RewardEstimate.from_members(np.stack([lengths, lengths + 2.0]))

    return score


async def closed_loop(
    batcher: MicroBatcher, clients: int, rounds: int, step_s: float = 0.003
) -> list[float]:
    """``clients`` callers that each send one item, wait for it, pause, and send again.

    Their pauses differ (``step_s`` apart: 3 to 24 ms for 8 clients), as real
    clients' turnarounds do, so the answered ones come back one by one rather
    than all at once.
    """
    batcher.start()
    means: list[float] = []

    async def client(i: int) -> None:
        for r in range(rounds):
            text = "x" * (i * rounds + r + 1)
            est = await batcher.score(["p"], [text])
            assert est.mean.tolist() == [len(text) + 1.0]  # its own slice, not a neighbour's
            means.append(float(est.mean[0]))
            await asyncio.sleep(step_s * (i + 1))

    try:
        await asyncio.gather(*(client(i) for i in range(clients)))
    finally:
        await batcher.stop()
    return means


def mean_batch(batcher: MicroBatcher) -> float:
    return batcher.stats.items_scored / batcher.stats.batches


def test_closed_loop_clients_share_whole_batches() -> None:
    async def run(rejoin_wait_s: float) -> MicroBatcher:
        batcher = MicroBatcher(
            slow_length_scorer(0.2), max_wait_s=0.002, rejoin_wait_s=rejoin_wait_s
        )
        means = await closed_loop(batcher, clients=8, rounds=6)
        assert len(means) == 48 and batcher.stats.items_scored == 48
        return batcher

    waiting = asyncio.run(run(0.05))
    not_waiting = asyncio.run(run(0.0))
    # Waiting for the answered clients keeps all eight in one batch; without it
    # the early returners start a batch of their own and the group splits.
    assert mean_batch(waiting) >= 7.0
    assert waiting.stats.rejoin_waits >= 4
    assert mean_batch(not_waiting) <= 5.0
    assert not_waiting.stats.rejoin_waits == 0
    assert not_waiting.stats.batches >= 1.5 * waiting.stats.batches


def test_a_lone_client_never_waits_to_rejoin() -> None:
    async def run() -> tuple[MicroBatcher, float]:
        batcher = MicroBatcher(slow_length_scorer(0.01), rejoin_wait_s=5.0, rejoin_fraction=10.0)
        t0 = time.perf_counter()
        await closed_loop(batcher, clients=1, rounds=10)
        return batcher, time.perf_counter() - t0

    batcher, seconds = asyncio.run(run())
    assert batcher.stats.batches == 10
    assert batcher.stats.rejoin_waits == 0
    assert seconds < 5.0  # one rejoin wait alone would take 5 s


def test_rejoin_wait_is_bounded_by_a_share_of_the_batch_time() -> None:
    """Clients that never come back cost at most rejoin_fraction of a batch's time."""

    async def run() -> tuple[int, float]:
        batcher = MicroBatcher(
            slow_length_scorer(0.1), rejoin_wait_s=10.0, rejoin_fraction=0.5, rejoin_gap_s=10.0
        )
        batcher.start()
        try:
            # Two answered at once, then only one sends again: the worker waits
            # for the other for 0.5 x 0.1 s, not for 10 s.
            await asyncio.gather(batcher.score(["p"], ["a"]), batcher.score(["p"], ["b"]))
            t0 = time.perf_counter()
            est = await batcher.score(["p"], ["abc"])
            return int(est.mean[0]), time.perf_counter() - t0
        finally:
            await batcher.stop()

    mean, seconds = asyncio.run(run())
    assert mean == 4
    assert 0.1 + 0.04 <= seconds < 2.0


def test_many_clients_coming_back_one_by_one_still_share_one_batch() -> None:
    """32 clients return 3 ms apart (~100 ms for all): a fixed 50 ms wait splits them
    into two alternating groups; waiting until arrivals pause keeps them together."""

    async def run(gap_s: float, cap_s: float) -> MicroBatcher:
        batcher = MicroBatcher(
            slow_length_scorer(0.4),
            rejoin_wait_s=cap_s,
            rejoin_fraction=1.0,
            rejoin_gap_s=gap_s,
        )
        await closed_loop(batcher, clients=32, rounds=4)
        return batcher

    by_gap = asyncio.run(run(gap_s=0.03, cap_s=0.3))
    fixed = asyncio.run(run(gap_s=10.0, cap_s=0.05))
    assert mean_batch(by_gap) >= 28.0
    assert mean_batch(fixed) <= 22.0


def test_rejoin_wait_ends_when_clients_stop_coming_back() -> None:
    """Three answered, one comes back, the other two never do: the worker stops
    waiting rejoin_gap_s after the last arrival, long before its other bounds."""

    async def run() -> float:
        batcher = MicroBatcher(
            slow_length_scorer(0.05), rejoin_wait_s=10.0, rejoin_fraction=100.0, rejoin_gap_s=0.03
        )
        batcher.start()
        try:
            await asyncio.gather(*(batcher.score(["p"], [c]) for c in "abc"))
            t0 = time.perf_counter()
            await batcher.score(["p"], ["abcd"])
            return time.perf_counter() - t0
        finally:
            await batcher.stop()

    seconds = asyncio.run(run())
    assert 0.05 + 0.02 <= seconds < 0.05 + 0.5  # one gap of waiting, not 10 s or 5 s


def test_a_failing_model_answers_every_request_in_its_batch() -> None:
    def broken(prompts: list[str], responses: list[str]) -> RewardEstimate:
        raise RuntimeError("CUDA out of memory")

    async def run() -> list[BaseException | RewardEstimate]:
        batcher = MicroBatcher(broken, max_wait_s=0.05)
        batcher.start()
        try:
            return await asyncio.gather(
                *(batcher.score(["p"], [str(i)]) for i in range(3)), return_exceptions=True
            )
        finally:
            await batcher.stop()

    results = asyncio.run(run())
    assert all(isinstance(r, RuntimeError) and "out of memory" in str(r) for r in results)


def test_a_failing_request_fails_alone() -> None:
    """Eight requests share a batch and one of them makes the model raise: the batch is
    re-scored in halves, so that request hears the error and the other seven get their
    own scores, in few extra calls."""
    calls: list[int] = []

    def picky(prompts: list[str], responses: list[str]) -> RewardEstimate:
        calls.append(len(responses))
        if "bad" in responses:
            raise ValueError("cannot tokenize 'bad'")
        return slow_length_scorer(0.0)(prompts, responses)

    async def run() -> list[BaseException | RewardEstimate]:
        batcher = MicroBatcher(picky, max_wait_s=0.05)
        batcher.start()
        try:
            texts = ["a" * (i + 1) if i != 5 else "bad" for i in range(8)]
            results = await asyncio.gather(
                *(batcher.score(["p"], [t]) for t in texts), return_exceptions=True
            )
            assert batcher.stats.errors == 1 and batcher.stats.isolations == 3
            assert batcher.queued_items == 0
            return results
        finally:
            await batcher.stop()

    results = asyncio.run(run())
    assert isinstance(results[5], ValueError) and "cannot tokenize" in str(results[5])
    for i, est in enumerate(results):
        if i != 5:
            assert isinstance(est, RewardEstimate) and est.mean.tolist() == [i + 2.0]
    # all 8 fail; 0-3 pass; 4-7 fail; 4-5 fail; 4 passes; 5 fails alone; 6-7 pass
    assert calls == [8, 4, 4, 2, 1, 1, 2]


@pytest.mark.parametrize("clients", [2, 5])
def test_every_answer_is_the_callers_own(clients: int) -> None:
    batcher = MicroBatcher(slow_length_scorer(0.02))
    means = asyncio.run(closed_loop(batcher, clients=clients, rounds=4))
    assert sorted(means) == [float(k + 1) for k in range(1, clients * 4 + 1)]
