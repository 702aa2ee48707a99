"""Micro-batching: coalesce concurrent requests into few forward passes, with a bounded queue.

An RL trainer sends many small requests at once (OpenRLHF's client sends one
query per request). Scoring each alone wastes the batch dimension; scoring on
the event loop would stall every other request. So requests join a queue, one
worker takes up to ``max_batch_items`` of them at a time, scores them in a
single worker thread and hands each request its slice. While a batch is being
scored, the next one fills up, so under load no time is spent waiting.

Closed-loop callers need one more rule. Eight RL workers that each send a
request, wait for its answer and send the next would otherwise settle into
two halves: four are scored while the other four queue, and the halves never
meet, so every batch is half as large as it could be (on a CPU, where a small
forward pass costs nearly as much as a large one, that halves throughput).
So when the worker frees up and fewer requests wait than it has just answered
plus those already waiting, it gives the answered clients a short time to
send their next request: until all are back, or until none has come for
``rejoin_gap_s`` since the last one did (they come back one by one, a few ms
apart, as their client code turns each answer into the next request; 32
clients in one Python process take ~100 ms), and never longer than
``rejoin_wait_s`` or ``rejoin_fraction`` of the last batch's scoring time, so
the wait never costs more than that share. A lone caller never waits: it is
already back when the worker looks.

The queue is bounded in items, not requests: a request that would overflow it
is refused at once (the HTTP layer answers 503 with Retry-After) instead of
letting memory and latency grow without bound.

One request must not fail its neighbours. If scoring a micro-batch raises (a
text the tokenizer chokes on, say), the batch is split in halves and each is
scored again, down to single requests, so only the requests whose own items
fail hear the error and the others get their scores. A model that fails for
everyone costs at most 2n - 1 calls for n requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from rewardhedge.types import RewardEstimate

ScoreFn = Callable[[list[str], list[str]], RewardEstimate]


class QueueFullError(RuntimeError):
    """The queue has no room for this request's items; try again later."""


class BatcherClosedError(RuntimeError):
    """The server is shutting down and takes no new work."""


@dataclass
class _Job:
    prompts: list[str]
    responses: list[str]
    future: asyncio.Future[RewardEstimate]

    @property
    def n(self) -> int:
        return len(self.prompts)


@dataclass
class BatcherStats:
    """Counters for ``/health``: how much work went through and how it was batched."""

    batches: int = 0
    items_scored: int = 0
    requests_rejected: int = 0
    largest_batch: int = 0
    errors: int = 0
    """Requests answered with an error because scoring their own items failed."""
    isolations: int = 0
    """Failed micro-batches re-scored in parts to find the requests that failed them."""
    rejoin_waits: int = 0
    """Times the worker waited for just-answered clients to send again."""
    scoring_seconds: float = 0.0
    """Wall time spent inside the model (its share of uptime is the scorer's utilisation)."""


class MicroBatcher:
    """Queue + one scoring worker. Create it inside a running event loop, then ``start()``.

    Args:
        score_fn: ``(prompts, responses) -> RewardEstimate``; runs in a worker thread.
        max_batch_items: most items per call of ``score_fn``. A single request with
            more items is scored on its own, whole.
        max_wait_s: how long an idle worker waits for more requests to join.
        max_queue_items: items waiting or being scored before ``submit`` refuses work.
            A request arriving at an empty queue is always accepted.
        rejoin_wait_s: longest wait for just-answered clients to send again (0: never).
        rejoin_fraction: that wait is also at most this share of the last batch's
            scoring time.
        rejoin_gap_s: once one has come back, the wait also ends when no other
            has for this long.
    """

    def __init__(
        self,
        score_fn: ScoreFn,
        *,
        max_batch_items: int = 64,
        max_wait_s: float = 0.002,
        max_queue_items: int = 4096,
        rejoin_wait_s: float = 0.25,
        rejoin_fraction: float = 0.25,
        rejoin_gap_s: float = 0.03,
    ) -> None:
        self._score_fn = score_fn
        self.max_batch_items = max_batch_items
        self.max_wait_s = max_wait_s
        self.max_queue_items = max_queue_items
        self.rejoin_wait_s = rejoin_wait_s
        self.rejoin_fraction = rejoin_fraction
        self.rejoin_gap_s = rejoin_gap_s
        self._expected_jobs = 0  # requests waiting + requests just answered, at the last delivery
        self._last_batch_s = 0.0
        self._last_arrival = 0.0
        self._returned = 0  # requests arrived since the last answers went out
        self.stats = BatcherStats()
        self._jobs: deque[_Job] = deque()
        self._queued_items = 0
        self._waiting_items = 0
        self._arrived = asyncio.Event()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rewardhedge-score")

    @property
    def queued_items(self) -> int:
        """Items accepted and not yet answered (waiting or being scored)."""
        return self._queued_items

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def score(self, prompts: Sequence[str], responses: Sequence[str]) -> RewardEstimate:
        """Queue the items and wait for their estimate.

        Raises:
            QueueFullError: no room in the queue (nothing was queued).
            BatcherClosedError: the batcher is stopping.
        """
        if self._closed:
            raise BatcherClosedError("the server is shutting down")
        n = len(prompts)
        if self._queued_items and self._queued_items + n > self.max_queue_items:
            self.stats.requests_rejected += 1
            raise QueueFullError(
                f"queue full: {self._queued_items} items waiting, {n} more would exceed "
                f"max_queue_items={self.max_queue_items}"
            )
        future: asyncio.Future[RewardEstimate] = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(list(prompts), list(responses), future))
        self._last_arrival = future.get_loop().time()
        self._returned += 1
        self._queued_items += n
        self._waiting_items += n
        self._arrived.set()
        # A timeout or a client that goes away cancels this task and with it the
        # future, which the worker then skips.
        return await future

    async def stop(self, grace_s: float = 30.0) -> None:
        """Refuse new work, finish what is queued (for up to ``grace_s``), then stop."""
        self._closed = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while (
            self._queued_items > 0
            and self._task is not None
            and not self._task.done()
            and loop.time() < deadline
        ):
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for job in self._jobs:
            if not job.future.done():
                job.future.set_exception(BatcherClosedError("the server is shutting down"))
        self._jobs.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- the worker ----------------------------------------------------------------------
    async def _next_batch(self) -> list[_Job]:
        while not self._jobs:
            self._arrived.clear()
            await self._arrived.wait()
        loop = asyncio.get_running_loop()
        expected, self._expected_jobs = self._expected_jobs, 0
        rejoin = min(self.rejoin_wait_s, self.rejoin_fraction * self._last_batch_s)
        rejoining = rejoin > 0 and len(self._jobs) < expected
        wait = self.max_wait_s
        if rejoining:
            self.stats.rejoin_waits += 1
            wait = max(wait, rejoin)
        deadline = loop.time() + wait
        while self._waiting_items < self.max_batch_items:
            now = loop.time()
            remaining = deadline - now
            if rejoining and self._returned:  # once one is back, a pause means no more soon
                remaining = min(remaining, self._last_arrival + self.rejoin_gap_s - now)
            if remaining <= 0 or (rejoining and len(self._jobs) >= expected):
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        batch: list[_Job] = []
        size = 0
        while self._jobs:
            job = self._jobs[0]
            if job.future.done():  # cancelled while waiting: drop it
                self._jobs.popleft()
                self._queued_items -= job.n
                self._waiting_items -= job.n
                continue
            if batch and size + job.n > self.max_batch_items:
                break
            batch.append(self._jobs.popleft())
            self._waiting_items -= job.n
            size += job.n
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            started = loop.time()
            try:
                answered = await self._score_isolating(batch)
            finally:
                self._queued_items -= sum(job.n for job in batch)
            if answered:
                self._last_batch_s = loop.time() - started
                self._returned = 0
                self._expected_jobs = len(self._jobs) + len(batch)

    async def _score_isolating(self, jobs: list[_Job]) -> bool:
        """Score ``jobs`` in one call; if it raises, score each half apart, down to
        single requests, so only a request whose own items fail hears the error.
        Returns whether any request got its scores."""
        jobs = [job for job in jobs if not job.future.done()]  # timed out meanwhile: skip
        if not jobs:
            return False
        loop = asyncio.get_running_loop()
        prompts = [p for job in jobs for p in job.prompts]
        responses = [r for job in jobs for r in job.responses]
        started = loop.time()
        try:
            est = await loop.run_in_executor(self._executor, self._score_fn, prompts, responses)
        except Exception as exc:
            self.stats.scoring_seconds += loop.time() - started
            if len(jobs) == 1:  # this request's own items fail: it hears why
                self.stats.errors += 1
                if not jobs[0].future.done():
                    jobs[0].future.set_exception(exc)
                return False
            self.stats.isolations += 1
            half = len(jobs) // 2
            first = await self._score_isolating(jobs[:half])
            second = await self._score_isolating(jobs[half:])
            return first or second
        self.stats.scoring_seconds += loop.time() - started
        self._deliver(jobs, est)
        return True

    def _deliver(self, batch: list[_Job], est: RewardEstimate) -> None:
        self.stats.batches += 1
        self.stats.items_scored += len(est)
        self.stats.largest_batch = max(self.stats.largest_batch, len(est))
        start = 0
        for job in batch:
            part = est.take(np.arange(start, start + job.n))
            start += job.n
            if not job.future.done():
                job.future.set_result(part)
