"""A client for the rewardhedge reward server, shaped like a local reward model.

Why: an RL trainer usually runs on other GPUs (or another machine) than the
reward model. :class:`RemoteRewardModel` gives it the same
``score(prompts, responses) -> RewardEstimate`` as a local
:class:`~rewardhedge.estimators.ensemble.EnsembleRewardModel`, so best-of-n, the TRL
adapter (:mod:`rewardhedge.optimize.rl_rewards`) and any aggregation or
transform work unchanged on a served model.

Server contract: ``POST {url}/v1/score`` with ``{"items": [{"prompt", "response"}]}``
(and ``Authorization: Bearer <token>``) answers ``{"results": [{"reward",
"mean", "epistemic", "aleatoric", "std", "members"}], "rule", "n_members"}``;
errors are ``{"detail": "..."}`` with status 401, 413, 422, 503 (with
``Retry-After``) or 504.

Needs httpx (the ``serve`` extra).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    import httpx
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
    raise ModuleNotFoundError(
        "rewardhedge.optimize.remote needs httpx; install it with: pip install 'rewardhedge[serve]'"
    ) from exc

from rewardhedge.encoders.base import check_texts
from rewardhedge.errors import ConfigError, RewardHedgeError
from rewardhedge.types import RewardEstimate
from rewardhedge.uncertainty.reward_rule import RewardRule

__all__ = ["RemoteRewardError", "RemoteRewardModel"]

MAX_RETRY_WAIT = 5.0
"""Longest wait (seconds) between retries, whatever ``Retry-After`` asks for."""

_RESULT_FIELDS = ("reward", "mean", "epistemic", "aleatoric", "members")

_Chunk = tuple[RewardEstimate, np.ndarray]
"""One answer: the estimate and the server's ``reward`` column."""

# Errors after which the request surely or probably never reached the model:
# safe to send again. A read timeout is not retried (the server is slow, not
# gone; it answers 504 itself when scoring takes too long).
_RETRY_ERRORS = (httpx.NetworkError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


class RemoteRewardError(RewardHedgeError):
    """The reward server answered with an error, an unreadable body, or not at all.

    Attributes:
        status: the HTTP status (``None`` when no answer came).
        url: the URL requested.
        detail: the server's ``detail`` text (or what went wrong).
    """

    def __init__(self, status: int | None, url: str, detail: str) -> None:
        self.status = status
        self.url = url
        self.detail = detail
        what = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"reward server {url}: {what}: {detail}")


class RemoteRewardModel:
    """Score (prompt, response) items on a rewardhedge server.

    Args:
        url: the server's base URL, e.g. ``"http://127.0.0.1:8000"``.
        token: bearer token, sent as ``Authorization: Bearer <token>``.
        timeout: seconds for each HTTP request.
        max_items_per_request: items per request; larger inputs are split
            into chunks (sent concurrently by :meth:`ascore`).
        retries: how many times to resend a request after a 503 (waiting
            ``Retry-After`` seconds, at most 5) or a connection error.

    The sync client is kept open; call :meth:`close` (or use ``with``). The
    async client is created on first :meth:`ascore` in the running event loop
    (again if a later call runs in another loop); close it with :meth:`aclose`.

    Example:
        >>> with RemoteRewardModel("http://127.0.0.1:8000") as rm:  # doctest: +SKIP
        ...     est = rm.score(["Hi?"], ["Hello!"])
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 60.0,
        max_items_per_request: int = 256,
        retries: int = 3,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"url == {url!r}, must be an http:// or https:// base URL "
                "such as 'http://127.0.0.1:8000'."
            )
        if token is not None and (not isinstance(token, str) or not token):
            raise ConfigError(f"token == {token!r}, must be a non-empty string or None.")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not (math.isfinite(timeout) and timeout > 0)
        ):
            raise ConfigError(f"timeout == {timeout!r}, must be a finite number of seconds > 0.")
        for name, value, low in (
            ("max_items_per_request", max_items_per_request, 1),
            ("retries", retries, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} == {value!r}, must be an integer >= {low}.")
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.max_items_per_request = max_items_per_request
        self.retries = retries
        self.server_rule_label: str | None = None
        """The ``rule`` label of the last successful answer (the server's aggregation/transform)."""
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return (
            f"RemoteRewardModel({self.url!r}, max_items_per_request={self.max_items_per_request})"
        )

    @property
    def endpoint(self) -> str:
        return f"{self.url}/v1/score"

    # -- public API -----------------------------------------------------------

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> RewardEstimate:
        """Rewards with their uncertainty, as the server's model computes them."""
        return self._merge([est for est, _ in self._send(prompts, responses)])

    def reward(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """`(n,)` the server's ``reward`` field: its configured aggregation and transform.

        Group transforms (centered log-sigmoid, PAR) compare items within one
        request only, so keep a prompt's candidates within one chunk.
        """
        parts = [reward for _, reward in self._send(prompts, responses)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def fetch_rule(self) -> RewardRule:
        """The server's reward rule (aggregation and transform), read from ``GET /v1/model``,
        so an adapter can apply exactly that rule to the estimates it receives."""
        client = self._sync_client()
        try:
            resp = client.get(f"{self.url}/v1/model")
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if resp.status_code != 200:
            raise RemoteRewardError(resp.status_code, f"{self.url}/v1/model", _detail(resp))
        try:
            return RewardRule.from_dict(resp.json()["rule"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RemoteRewardError(
                resp.status_code, f"{self.url}/v1/model", f"no valid 'rule' in the answer ({exc})"
            ) from exc

    async def ascore(self, prompts: Sequence[str], responses: Sequence[str]) -> RewardEstimate:
        """:meth:`score` for asyncio: the chunks are sent concurrently."""
        prompts, responses = check_texts(prompts, responses)
        chunks = self._chunks(prompts, responses)
        if not chunks:
            return _empty()
        client = self._async_client()
        parts = await asyncio.gather(*(self._apost(client, body) for body in chunks))
        return self._merge([est for est, _ in parts])

    def close(self) -> None:
        """Close the sync HTTP client (a later call opens a new one)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the async HTTP client."""
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
            self._aclient_loop = None

    def __enter__(self) -> RemoteRewardModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> RemoteRewardModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
        self.close()

    # -- internals ------------------------------------------------------------

    def _chunks(self, prompts: list[str], responses: list[str]) -> list[dict[str, Any]]:
        step = self.max_items_per_request
        return [
            {
                "items": [
                    {"prompt": p, "response": r}
                    for p, r in zip(prompts[i : i + step], responses[i : i + step], strict=True)
                ]
            }
            for i in range(0, len(prompts), step)
        ]

    def _send(self, prompts: Sequence[str], responses: Sequence[str]) -> list[_Chunk]:
        prompts, responses = check_texts(prompts, responses)
        chunks = self._chunks(prompts, responses)
        if not chunks:
            return []
        client = self._sync_client()
        return [self._post(client, body) for body in chunks]

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, headers=self._headers)
        return self._client

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient_loop is not loop:
            # A client's connections belong to the loop that opened them.
            self._aclient = httpx.AsyncClient(timeout=self.timeout, headers=self._headers)
            self._aclient_loop = loop
        return self._aclient

    def _post(self, client: httpx.Client, body: dict[str, Any]) -> _Chunk:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                resp = client.post(self.endpoint, json=body)
            except _RETRY_ERRORS as exc:
                if last:
                    raise self._unreachable(exc) from exc
                time.sleep(_backoff(attempt))
                continue
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from exc
            if resp.status_code == 503 and not last:
                time.sleep(_retry_after(resp, attempt))
                continue
            return self._read(resp, len(body["items"]))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _apost(self, client: httpx.AsyncClient, body: dict[str, Any]) -> _Chunk:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                resp = await client.post(self.endpoint, json=body)
            except _RETRY_ERRORS as exc:
                if last:
                    raise self._unreachable(exc) from exc
                await asyncio.sleep(_backoff(attempt))
                continue
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from exc
            if resp.status_code == 503 and not last:
                await asyncio.sleep(_retry_after(resp, attempt))
                continue
            return self._read(resp, len(body["items"]))
        raise AssertionError("unreachable")  # pragma: no cover

    def _unreachable(self, exc: Exception) -> RemoteRewardError:
        tries = f" after {self.retries + 1} attempt(s)" if isinstance(exc, _RETRY_ERRORS) else ""
        return RemoteRewardError(None, self.endpoint, f"{type(exc).__name__}{tries}: {exc}")

    def _read(self, resp: httpx.Response, n: int) -> _Chunk:
        """Check an answer and turn its results into an estimate and the ``reward`` column."""
        url = str(resp.request.url)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not resp.is_success:
            raise RemoteRewardError(resp.status_code, url, _detail(resp))
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list) or len(results) != n:
            got = f"{len(results)} results" if isinstance(results, list) else "no 'results' list"
            raise RemoteRewardError(resp.status_code, url, f"malformed answer: {got} for {n} items")
        try:
            cols = {f: [r[f] for r in results] for f in _RESULT_FIELDS}
            members = np.asarray(cols.pop("members"), dtype=np.float64)
            arrays = {f: np.asarray(v, dtype=np.float64) for f, v in cols.items()}
            if members.ndim != 2 or any(a.ndim != 1 for a in arrays.values()):
                raise ValueError("'members' must be a list of numbers of one length for every item")
        except (KeyError, TypeError, ValueError) as exc:
            raise RemoteRewardError(
                resp.status_code, url, f"malformed answer: {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(data.get("rule"), str):
            self.server_rule_label = data["rule"]
        est = RewardEstimate(arrays["mean"], arrays["epistemic"], arrays["aleatoric"], members.T)
        return est, arrays["reward"]

    def _merge(self, parts: list[RewardEstimate]) -> RewardEstimate:
        """Concatenate the chunks' estimates in order."""
        if not parts:
            return _empty()
        if len(parts) == 1:
            return parts[0]
        if len({p.n_members for p in parts}) != 1:
            raise RemoteRewardError(
                None, self.endpoint, "malformed answers: chunks have differing member counts"
            )
        return RewardEstimate(
            mean=np.concatenate([p.mean for p in parts]),
            epistemic=np.concatenate([p.epistemic for p in parts]),
            aleatoric=np.concatenate([p.aleatoric for p in parts]),
            members=np.concatenate([p.members for p in parts], axis=1),
        )


def _detail(resp: httpx.Response) -> str:
    """The server's ``detail`` message, else the start of the body."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    detail = data.get("detail") if isinstance(data, dict) else None
    return str(detail) if detail is not None else (resp.text[:500] or resp.reason_phrase)


def _backoff(attempt: int) -> float:
    return min(0.1 * 2**attempt, MAX_RETRY_WAIT)


def _retry_after(resp: httpx.Response, attempt: int) -> float:
    """The server's ``Retry-After`` (integer seconds), capped; a backoff without one."""
    try:
        return min(max(int(resp.headers.get("Retry-After", "")), 0), MAX_RETRY_WAIT)
    except ValueError:
        return _backoff(attempt)


def _empty() -> RewardEstimate:
    e = np.zeros(0)
    return RewardEstimate(e, e, e, np.zeros((0, 0)))
