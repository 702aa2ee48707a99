"""Optional shared-secret authentication, compared in constant time.

The token is checked on the request's headers alone, before any of its body is
read (:class:`~rewardhedge.serve.guard.RequestGuard`), so a client without it
costs the server a header lookup, not a parsed body.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from rewardhedge.errors import ConfigError

TOKEN_ENV = "REWARDHEDGE_TOKEN"
"""Environment variable ``rewardhedge serve`` reads the token from when ``--token`` is absent."""

UNAUTHORISED = "missing or wrong token: send 'Authorization: Bearer <token>'"
"""The ``detail`` of every 401."""


def presented_token(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The token a client sent, from raw ASGI headers: ``Authorization: Bearer <t>``
    or ``X-Api-Key: <t>`` (the second is what OpenRLHF's own reward server accepts)."""
    key = b""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, rest = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and rest.strip():
                return rest.strip()
        elif name == b"x-api-key":
            key = key or value.strip()
    return key or None


def token_matches(headers: Iterable[tuple[bytes, bytes]], token: str) -> bool:
    """Whether the request carries ``token``. ``hmac.compare_digest`` takes the same
    time wherever the strings differ, so timing leaks nothing about it."""
    sent = presented_token(headers)
    return sent is not None and hmac.compare_digest(sent, token.encode("utf-8"))


def checked_token(token: str | None, source: str = "token") -> str | None:
    """``token`` without surrounding whitespace (headers are compared stripped, so a
    token with it could never match); ``None`` means no auth. An empty token is
    refused: it would silently turn auth off."""
    if token is None:
        return None
    stripped = token.strip()
    if not stripped:
        raise ConfigError(
            f"{source} is empty, which would turn auth off; give a token, or set none "
            "to serve without auth."
        )
    return stripped
