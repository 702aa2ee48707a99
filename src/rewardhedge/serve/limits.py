"""Request limits checked before any scoring: body size, items per request, text length."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rewardhedge.config import ServeConfig


class BodySizeLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, judged by Content-Length
    when sent and by counting the bytes as they arrive otherwise (chunked uploads),
    so an oversized body is never held in memory whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _reject_message(self) -> bytes:
        return (
            b'{"detail":"request body exceeds max_body_bytes=%d (server flag --max-body-bytes)"}'
            % self.max_bytes
        )

    async def _reject(self, send: Send) -> None:
        body = self._reject_message()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
        seen = 0
        started = rejected = False

        async def counting_receive() -> Message:
            nonlocal seen, rejected
            message = await receive()
            if message["type"] == "http.request" and not rejected:
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer now and tell the app the client left, so it stops reading.
                    rejected = True
                    if not started:
                        await self._reject(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return  # the 413 has been sent; drop whatever the app still says
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


def check_count(n: int, what: str, config: ServeConfig) -> None:
    """413 for more than ``max_items_per_request`` entries, 422 for none."""
    if n == 0:
        raise HTTPException(422, f"{what} is empty; send at least one.")
    if n > config.max_items_per_request:
        raise HTTPException(
            413,
            f"{what} has {n} entries; the limit is max_items_per_request="
            f"{config.max_items_per_request} (server flag --max-items). Split the request.",
        )


def check_text_lengths(fields: Sequence[tuple[str, Sequence[Any]]], config: ServeConfig) -> None:
    """422 naming the first text longer than ``max_text_chars``, e.g. ``items[3].response``."""
    limit = config.max_text_chars
    for name, values in fields:
        for i, text in enumerate(values):
            if len(text) > limit:
                where = name.replace("[]", f"[{i}]")
                raise HTTPException(
                    422,
                    f"{where} has {len(text)} characters; the limit is max_text_chars={limit} "
                    "(server flag --max-chars).",
                )
