"""What every request passes before FastAPI reads any of it: the token, then the body,
checked while it streams in.

Order matters. The token is checked on the headers alone, so a client without
it gets its 401 before a byte of its body is read or parsed. Then the body is
counted as it arrives: past ``max_body_bytes`` the answer is 413 at once,
whether the client sent a Content-Length, sent a false one, or sent chunks. It
must arrive within ``body_timeout_s`` of the headers, or the answer is 408 and
the connection is closed. And it must be UTF-8, which JSON between systems is
(RFC 8259); a body that is not gets a 422 naming the byte where it stops being
UTF-8. Only then does the app see the body.

When the guard answers, the app is told the client has gone, so it stops
reading; whatever the app still says is dropped.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rewardhedge.serve import auth

OPEN_PATHS = frozenset({"/health"})
"""Paths that need no token (load balancers and probes)."""

_DISCONNECT: Message = {"type": "http.disconnect"}
_log = logging.getLogger("uvicorn.error")


async def answer(
    send: Send,
    status: int,
    detail: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """A JSON ``{"detail": ...}`` response, sent straight through ASGI."""
    body = json.dumps({"detail": detail}, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestGuard:
    """ASGI middleware: token first (401), then the body as it streams in (413, 408, 422).

    Args:
        app: the app behind it.
        token: the shared secret every path but :data:`OPEN_PATHS` needs (``None``: no auth).
        max_body_bytes: bytes a body may have.
        body_timeout_s: seconds the whole body may take to arrive, from the headers.
        max_header_bytes: bytes the headers may have (431 beyond). The HTTP parser
            already refuses headers that grow past it while arriving in pieces; this
            catches those that arrive whole.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        max_body_bytes: int,
        body_timeout_s: float,
        max_header_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.max_header_bytes = max_header_bytes

    def _too_large(self) -> str:
        return (
            f"request body exceeds max_body_bytes={self.max_body_bytes} "
            "(server flag --max-body-bytes)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.max_header_bytes is not None:
            size = sum(len(k) + len(v) + 4 for k, v in scope.get("headers", []))
            if size > self.max_header_bytes:
                detail = (
                    f"request headers have {size} bytes; the limit is max_header_bytes="
                    f"{self.max_header_bytes} (server flag --max-header-bytes)"
                )
                await answer(send, 431, detail, ((b"connection", b"close"),))
                return
        if (
            self.token is not None
            and scope.get("path") not in OPEN_PATHS
            and not auth.token_matches(scope.get("headers", []), self.token)
        ):
            await answer(send, 401, auth.UNAUTHORISED, ((b"www-authenticate", b"Bearer"),))
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            await answer(send, 413, self._too_large())
            return
        body = _StreamedBody(self, receive, send)
        try:
            await self.app(scope, body.receive, body.send)
        except Exception:
            if not body.answered:
                raise
            # The guard has answered and told the app the client left; an error the
            # app raises over that (a half-read body) changes nothing for the client.
            _log.debug("error after the request guard answered", exc_info=True)


class _StreamedBody:
    """One request's ``receive`` and ``send``, as the guard wraps them."""

    def __init__(self, guard: RequestGuard, receive: Receive, send: Send) -> None:
        self.guard = guard
        self._receive = receive
        self._send = send
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + guard.body_timeout_s
        self.seen = 0
        self.complete = False  # the last body message has been read
        self.started = False  # a response has begun (the app's or the guard's)
        self.answered = False  # the guard has answered (or given up on) this request
        self.decoder = codecs.getincrementaldecoder("utf-8")()

    async def _reject(self, status: int, detail: str, close: bool = False) -> Message:
        self.answered = True
        if not self.started:
            self.started = True
            headers = ((b"connection", b"close"),) if close else ()
            await answer(self._send, status, detail, headers)
        return _DISCONNECT

    async def receive(self) -> Message:
        if self.answered:
            return _DISCONNECT
        if self.complete:  # the body is in; what follows is the client leaving
            return await self._receive()
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            timeout = self.guard.body_timeout_s
            return await self._reject(
                408,
                f"request body not received within body_timeout_s={timeout:g}s "
                "(server flag --body-timeout)",
                close=True,
            )
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        before = self.seen
        self.seen += len(chunk)
        if self.seen > self.guard.max_body_bytes:
            return await self._reject(413, self.guard._too_large())
        pending = len(self.decoder.getstate()[0])
        try:
            self.decoder.decode(chunk, final=not more)
        except UnicodeDecodeError as exc:
            at = before - pending + exc.start
            byte = exc.object[exc.start : exc.start + 1].hex()
            return await self._reject(
                422,
                f"body: not valid UTF-8 at byte {at} ({exc.reason}: 0x{byte}); "
                "send JSON encoded as UTF-8",
            )
        if not more:
            self.complete = True
        return message

    async def send(self, message: Message) -> None:
        if self.answered:
            return  # the guard has answered; drop whatever the app still says
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)
