"""Optional shared-secret authentication, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

TOKEN_ENV = "REWARDHEDGE_TOKEN"
"""Environment variable ``rewardhedge serve`` reads the token from when ``--token`` is absent."""


def presented_token(request: Request) -> str | None:
    """The token a client sent: ``Authorization: Bearer <t>`` or ``X-Api-Key: <t>``
    (the second is what OpenRLHF's own reward server accepts)."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


def require_token(request: Request, token: str) -> None:
    """401 unless the request carries ``token``. ``hmac.compare_digest`` takes the
    same time wherever the strings differ, so timing leaks nothing about it."""
    sent = presented_token(request)
    if sent is None or not hmac.compare_digest(sent.encode(), token.encode()):
        raise HTTPException(
            401,
            "missing or wrong token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
