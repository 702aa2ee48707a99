"""Running the app under uvicorn: in the foreground (the CLI) or in a background thread.

uvicorn already shuts down gracefully on SIGINT/SIGTERM: it stops accepting
connections, lets requests in flight finish (up to ``shutdown_grace_s``), and
only then runs the app's lifespan exit, which drains the batcher.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from rewardhedge.config import ServeConfig


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port=0`` picks a free one; read it back with ``getsockname``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on accepted sockets
    # whose proto says TCP, and the accepted ones copy it from this one. Without
    # it, Nagle's algorithm holds back each response body until the client's
    # delayed ACK (~40 ms on Linux), which was most of a one-item request's time.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(app: FastAPI, config: ServeConfig, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        timeout_graceful_shutdown=int(config.shutdown_grace_s) or None,
        access_log=log_level == "debug",
    )


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    app: FastAPI,
    config: ServeConfig,
    *,
    log_level: str = "info",
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` on ``config.host:config.port`` until SIGINT or SIGTERM.

    ``announce`` is called with the base URL once the port is bound (useful with ``port=0``).
    """
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
