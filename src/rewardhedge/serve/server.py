"""Running the app under uvicorn: in the foreground (the CLI) or in a background thread.

uvicorn already shuts down gracefully on SIGINT/SIGTERM: it stops accepting
connections, lets requests in flight finish (up to ``shutdown_grace_s``), and
only then runs the app's lifespan exit, which drains the batcher.

Slow clients are bounded here and in the request guard: a connection that
does not finish a request's headers within ``header_timeout_s`` is closed (the
protocol below), an idle kept-alive one after ``keep_alive_s``, a body that
trickles gets 408 after ``body_timeout_s`` (the guard), and at most
``max_connections`` are served at once.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from rewardhedge.config import ServeConfig
from rewardhedge.errors import ConfigError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
"""The log levels uvicorn takes."""


def check_log_level(level: str) -> str:
    """``level`` in lower case, or a :class:`ConfigError` listing the ones uvicorn takes."""
    if level.lower() not in LOG_LEVELS:
        raise ConfigError(
            f"--log-level {level!r} is not a log level; use one of {', '.join(LOG_LEVELS)}."
        )
    return level.lower()


def _bind_error(host: str, port: int, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if isinstance(exc, socket.gaierror):
        return (
            f"host {host!r} is not an IP address or a name this machine can resolve "
            f"({reason}); use e.g. 127.0.0.1 or 0.0.0.0 (server flag --host)."
        )
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use (another server?); stop it or pick "
            "another port (server flag --port; 0 picks a free one)."
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"host {host!r} is not an address of this machine ({reason}) (server flag --host)."
    if exc.errno == errno.EACCES:
        return (
            f"not allowed to listen on port {port} ({reason}); ports below 1024 need "
            "privileges (server flag --port)."
        )
    return f"cannot listen on {host}:{port} ({reason})."


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port=0`` picks a free one; read it back with ``getsockname``).

    Raises:
        ConfigError: the host does not resolve or is not this machine's, or the port
            is taken or not allowed; the message says which.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on accepted sockets
    # whose proto says TCP, and the accepted ones copy it from this one. Without
    # it, Nagle's algorithm holds back each response body until the client's
    # delayed ACK (~40 ms on Linux), which was most of a one-item request's time.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(_bind_error(host, port, exc)) from exc
    sock.set_inheritable(True)
    return sock


class TimedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with the two deadlines it lacks.

    uvicorn times out only an idle connection between requests; a client that
    connects and sends its headers a byte at a time (or never) is held forever,
    and so is one that keeps sending a body after the server has answered (a
    401 or 413 sent before the body was read). Here a request's line and
    headers must arrive within ``header_timeout_s`` of the connection opening
    or of the next request's first byte, and the rest of an answered body
    within ``drain_timeout_s`` of the answer; otherwise the connection is
    closed. :func:`protocol_class` sets both.
    """

    header_timeout_s: float = 10.0
    drain_timeout_s: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase: str | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._set_phase("idle")  # uvicorn's keep-alive timer bounds the wait
        else:
            self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_phase(None)
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Arm the deadline of what the client must do next (kept, not restarted, while
        it stays the same)."""
        state = self.conn.their_state
        want: str | None = None
        if self.transport.is_closing():
            want = None
        elif state is h11.IDLE:
            want = "headers"
        elif state is h11.SEND_BODY and self.cycle is not None and self.cycle.response_complete:
            want = "drain"
        if want != self._phase:
            self._set_phase(want)

    def _set_phase(self, phase: str | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._phase = phase
        timeout = {"headers": self.header_timeout_s, "drain": self.drain_timeout_s}.get(phase or "")
        if timeout is not None:
            self._timer = self.loop.call_later(timeout, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol_class(config: ServeConfig) -> type[TimedH11Protocol]:
    """:class:`TimedH11Protocol` with ``config``'s header and body timeouts."""
    return type(
        "TimedH11Protocol",
        (TimedH11Protocol,),
        {"header_timeout_s": config.header_timeout_s, "drain_timeout_s": config.body_timeout_s},
    )


def _uvicorn_config(app: FastAPI, config: ServeConfig, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        timeout_graceful_shutdown=int(config.shutdown_grace_s) or None,
        access_log=log_level == "debug",
        http=protocol_class(config),
        timeout_keep_alive=config.keep_alive_s,  # type: ignore[arg-type]  # a float works
        limit_concurrency=config.max_connections,
        h11_max_incomplete_event_size=config.max_header_bytes,
    )


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    app: FastAPI,
    config: ServeConfig,
    *,
    log_level: str = "info",
    announce: Callable[[str], None] | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve ``app`` on ``config.host:config.port`` until SIGINT or SIGTERM.

    ``announce`` is called with the base URL once the port is bound (useful with
    ``port=0``). ``sock``: a socket already bound with :func:`bind_socket` (the CLI
    binds before loading the model, so a taken port is reported at once).
    """
    log_level = check_log_level(log_level)
    if sock is None:
        sock = bind_socket(config.host, config.port)
    if announce is not None:
        announce(_url(config.host, sock.getsockname()[1]))
    uvicorn.Server(_uvicorn_config(app, config, log_level)).run(sockets=[sock])


class BackgroundServer:
    """``with BackgroundServer(app) as url:`` serves on a free loopback port in a thread.

    The server is real (uvicorn, TCP); leaving the block shuts it down the
    same graceful way SIGTERM does.
    """

    def __init__(
        self,
        app: FastAPI,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        config: ServeConfig | None = None,
        log_level: str = "warning",
        start_timeout_s: float = 30.0,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.config = config if config is not None else ServeConfig()
        self.log_level = log_level
        self.start_timeout_s = start_timeout_s
        self.server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> str:
        sock = bind_socket(self.host, self.port)
        port = sock.getsockname()[1]
        self.server = uvicorn.Server(_uvicorn_config(self.app, self.config, self.log_level))
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the reward server did not start on {self.host}:{port}")
            time.sleep(0.01)
        self.url = _url(self.host, port)
        return self.url

    def stop(self) -> None:
        if self.server is not None and self._thread is not None:
            self.server.should_exit = True
            self._thread.join(timeout=self.config.shutdown_grace_s + 10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
