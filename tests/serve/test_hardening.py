"""The reward server against hostile or broken input, over real TCP: one bad item fails
only its own request, the token is checked before the body is read, the body is
bounded while it streams, slow clients are timed out, and /docs serves no scripts."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from rewardhedge.config import ServeConfig
from rewardhedge.errors import ConfigError
from rewardhedge.serve import BackgroundServer, create_app

JSON = {"content-type": "application/json"}


def _wait_until(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def _post(url, path, body, headers=None, timeout=30.0):
    """``body`` as JSON with ASCII escapes (httpx's ``json=`` cannot encode a lone
    surrogate; a client that writes ``"\\ud800"`` sends exactly these bytes)."""
    content = json.dumps(body).encode()
    return httpx.post(f"{url}{path}", content=content, headers={**JSON, **(headers or {})},
                      timeout=timeout)  # fmt: skip


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _raw(url: str, timeout: float = 3.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", _port(url)), timeout=timeout)


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP response (head and Content-Length body), leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")).split(
            b":"
        )[1]
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def _trickle(sock: socket.socket, data: bytes, every_s: float, for_s: float) -> float | None:
    """Send ``data`` a byte every ``every_s`` until the server answers or closes;
    the seconds that took, or ``None`` if it had not after ``for_s``."""
    t0 = time.monotonic()
    for byte in data:
        if time.monotonic() - t0 > for_s:
            return None
        readable, _, _ = select.select([sock], [], [], every_s)
        if readable:
            return time.monotonic() - t0
        try:
            sock.sendall(bytes([byte]))
        except OSError:  # closed (broken pipe, reset)
            return time.monotonic() - t0
    return None


class TokenizerLikeModel:
    """The real model behind a gate (so a test can make requests share a batch), whose
    ``score`` fails as MiniLM's fast tokenizer does on a text with no UTF-8 encoding,
    and raises ``poison`` on any text that holds the word poison."""

    def __init__(self, model, poison: BaseException | None = None) -> None:
        self.model = model
        self.rule = model.rule
        self.temperature = model.temperature
        self.poison = poison
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls: list[int] = []

    def open(self) -> None:
        self.gate.set()

    def score(self, prompts, responses):
        self.entered.set()
        assert self.gate.wait(30), "test never opened the gate"
        self.calls.append(len(prompts))
        for text in [*prompts, *responses]:
            text.encode("utf-8")  # UnicodeEncodeError on a lone surrogate
            if self.poison is not None and "poison" in text:
                raise self.poison
        return self.model.score(prompts, responses)


def _one_batch(model: TokenizerLikeModel, url: str, requests, queued: int):
    """Hold the scorer on a first request, send ``requests`` at once behind it so they
    share the next micro-batch (``queued``: the items that get into the queue), then
    let it go."""
    first_item = [{"prompt": "q0", "response": "the answer is correct 0"}]
    with ThreadPoolExecutor(len(requests) + 1) as pool:
        first = pool.submit(_post, url, "/v1/score", first_item)
        assert model.entered.wait(10)
        try:
            futures = [pool.submit(_post, url, path, body) for path, body in requests]
            _wait_until(lambda: httpx.get(f"{url}/health").json()["queue_items"] >= 1 + queued)
        finally:
            model.open()
        return first.result(), [f.result() for f in futures]


GOOD = [[{"prompt": f"q{i}", "response": f"the answer is correct {i}"}] for i in range(1, 7)]


# -- 1. one bad item fails only its own request ----------------------------------------------
def test_lone_surrogate_is_refused_at_the_door_and_its_batch_is_scored(tiny_model):
    """Six innocent concurrent clients and one whose text holds a lone surrogate: the
    six get their scores, the one a 422 naming the item, field and character."""
    model = TokenizerLikeModel(tiny_model)
    bad = [
        {"prompt": "q", "response": "fine"},
        {"prompt": "q", "response": "abc\ud800def"},
    ]
    with BackgroundServer(create_app(model)) as url:
        first, answers = _one_batch(model, url, [("/v1/score", b) for b in [*GOOD, bad]], 6)
    assert first.status_code == 200
    assert [r.status_code for r in answers] == [200] * 6 + [422]
    assert (
        answers[-1]
        .json()["detail"]
        .startswith("items[1].response: contains a lone surrogate (\\ud800) at character 3")
    )
    got = [r.json()["results"][0]["mean"] for r in answers[:6]]
    est = tiny_model.score([g[0]["prompt"] for g in GOOD], [g[0]["response"] for g in GOOD])
    np.testing.assert_allclose(got, est.mean, rtol=1e-12)


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("/v1/compare", [{"prompt": "q", "a": "x", "b": "y\udcff"}], "pairs[0].b"),
        ("/v1/compare", [{"prompt": "q\ud800", "a": "x", "b": "y"}], "pairs[0].prompt"),
        ("/get_reward", {"query": ["ok", "q \udcff"]}, "query[1]"),
        ("/get_reward", {"query": ["q a"], "prompts": ["q\ud800"]}, "prompts[0]"),
    ],
)
def test_lone_surrogate_is_422_on_every_route(server_with_docs, path, body, where):
    r = _post(server_with_docs, path, body)
    assert r.status_code == 422
    assert r.json()["detail"].startswith(f"{where}: contains a lone surrogate")


@pytest.mark.parametrize(
    ("error", "status", "detail"),
    [
        (RuntimeError("tokenizer panicked"), 500, "scoring failed: RuntimeError: tokenizer"),
        (UnicodeEncodeError("utf-8", "x", 0, 1, "bad"), 422, "the model cannot score"),
    ],
)
def test_a_request_that_fails_the_model_fails_alone(tiny_model, error, status, detail):
    """A request whose text makes the model raise (past every check at the door)
    shares a micro-batch with six others: only it gets an error, as JSON."""
    model = TokenizerLikeModel(tiny_model, poison=error)
    poisoned = [{"prompt": "q", "response": "fine"}, {"prompt": "q", "response": "poison"}]
    requests = [("/v1/score", g) for g in GOOD[:3]] + [("/v1/score", poisoned)]
    requests += [("/v1/score", g) for g in GOOD[3:]]
    with BackgroundServer(create_app(model)) as url:
        first, answers = _one_batch(model, url, requests, 8)
        health = httpx.get(f"{url}/health").json()
    assert first.status_code == 200
    assert [r.status_code for r in answers] == [200] * 3 + [status] + [200] * 3
    assert answers[3].headers["content-type"] == "application/json"
    assert answers[3].json()["detail"].startswith(detail)
    innocent = answers[:3] + answers[4:]
    est = tiny_model.score([g[0]["prompt"] for g in GOOD], [g[0]["response"] for g in GOOD])
    got = [r.json()["results"][0]["mean"] for r in innocent]
    np.testing.assert_allclose(got, est.mean, rtol=1e-12)
    assert model.calls[1] == 8  # the six innocent and the poisoned request shared a batch
    assert health["queue_items"] == 0


def test_openrlhf_request_that_fails_the_model_fails_alone(tiny_model):
    model = TokenizerLikeModel(tiny_model, poison=RuntimeError("boom"))
    queries = [{"query": [f"q{i} the answer is correct"]} for i in range(4)]
    requests = [("/get_reward", q) for q in queries] + [("/get_reward", {"query": ["poison"]})]
    with BackgroundServer(create_app(model)) as url:
        _, answers = _one_batch(model, url, requests, 5)
    assert [r.status_code for r in answers] == [200] * 4 + [500]
    est = tiny_model.score([""] * 4, [q["query"][0] for q in queries])
    np.testing.assert_allclose([r.json()["rewards"][0] for r in answers[:4]], est.mean, rtol=1e-12)


# -- 2. auth before work; the body bounded while it streams -----------------------------------
@pytest.fixture
def token_server(tiny_model):
    cfg = ServeConfig(max_body_bytes=2000)
    with BackgroundServer(create_app(tiny_model, config=cfg, token="tok"), config=cfg) as url:
        yield url


def test_unauthenticated_malformed_json_is_401(token_server):
    r = httpx.post(f"{token_server}/v1/score", content=b"{bad", headers=JSON)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = httpx.post(f"{token_server}/v1/score", content=b"x" * 5000, headers=JSON)
    assert r.status_code == 401  # before the size limit too: nothing of the body is looked at


def test_unauthenticated_request_is_answered_before_its_body_arrives(token_server):
    """The client announces a body (under the size limit) and sends none of it: the
    401 comes at once, without waiting for the body."""
    with _raw(token_server, timeout=5) as sock:
        sock.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1500\r\n\r\n"
        )
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 401")


def test_oversize_body_without_content_length_is_413_before_it_ends(token_server):
    """A chunked body (no Content-Length) passes the limit: the 413 comes while the
    client is still sending, so the server never holds the body whole."""
    with _raw(token_server, timeout=5) as sock:
        sock.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer tok\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(3):  # 3000 bytes of a body that never ends
            sock.sendall(b"3e8\r\n" + b" " * 1000 + b"\r\n")
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"max_body_bytes=2000" in answer


def test_non_utf8_body_is_422_naming_the_byte(token_server):
    body = '[{"prompt": "café", "response": "r'.encode() + b"\xff" + b'"}]'
    at = body.index(b"\xff")
    auth = {**JSON, "Authorization": "Bearer tok"}

    def chunks():  # split inside "é" too: the offset counts across chunks
        yield body[:17]
        yield body[17:]

    for content in (body, chunks()):
        r = httpx.post(f"{token_server}/v1/score", content=content, headers=auth)
        assert r.status_code == 422
        assert r.json()["detail"].startswith(f"body: not valid UTF-8 at byte {at}")
    ok = [{"prompt": "café", "response": "r"}]
    r = httpx.post(f"{token_server}/v1/score", content=json.dumps(ok).encode(), headers=auth)
    assert r.status_code == 200


def test_empty_token_is_refused(tiny_model):
    with pytest.raises(ConfigError, match="empty"):
        create_app(tiny_model, token=" ")


# -- 3. docs -------------------------------------------------------------------------------
@pytest.fixture
def server_with_docs(tiny_model):
    cfg = ServeConfig(api_docs=True)
    with BackgroundServer(create_app(tiny_model, config=cfg), config=cfg) as url:
        yield url


def test_docs_are_off_by_default_and_openapi_needs_the_token(tiny_model):
    with BackgroundServer(create_app(tiny_model)) as url:
        assert httpx.get(f"{url}/docs").status_code == 404
        assert httpx.get(f"{url}/redoc").status_code == 404
        assert httpx.get(f"{url}/openapi.json").status_code == 200
    cfg = ServeConfig(api_docs=True)
    with BackgroundServer(create_app(tiny_model, config=cfg, token="tok"), config=cfg) as url:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert httpx.get(f"{url}{path}").status_code == 401, path
        auth = {"Authorization": "Bearer tok"}
        assert httpx.get(f"{url}/openapi.json", headers=auth).status_code == 200
        assert httpx.get(f"{url}/docs", headers=auth).status_code == 200
        assert httpx.get(f"{url}/redoc", headers=auth).status_code == 404


def test_api_docs_page_loads_nothing_from_elsewhere(server_with_docs):
    r = httpx.get(f"{server_with_docs}/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text.lower()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    for route in ("/v1/score", "/v1/compare", "/get_reward", "ScoreResult", "epistemic"):
        assert route.lower() in page


# -- 4. slow clients -------------------------------------------------------------------------
@pytest.fixture
def impatient(tiny_model):
    cfg = ServeConfig(header_timeout_s=0.5, body_timeout_s=0.5, keep_alive_s=0.5)
    with BackgroundServer(create_app(tiny_model, config=cfg), config=cfg) as url:
        yield url


def test_slow_headers_are_disconnected(impatient):
    """Headers sent a byte every 0.1 s never finish: the server closes the connection
    about half a second in (header_timeout_s), and one that sends nothing too."""
    request = b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    with _raw(impatient) as sock:
        took = _trickle(sock, request * 4, every_s=0.1, for_s=4.0)
        assert took is not None and 0.3 < took < 2.5
        assert _read_until_closed(sock) == b""  # closed without an answer
    with _raw(impatient) as sock:
        t0 = time.monotonic()
        assert _read_until_closed(sock) == b""
        assert 0.3 < time.monotonic() - t0 < 2.5


def test_trickling_body_gets_408_and_the_connection_closed(impatient):
    with _raw(impatient) as sock:
        sock.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n["
        )
        took = _trickle(sock, b" " * 99, every_s=0.1, for_s=4.0)
        answer = _read_until_closed(sock)
    assert took is not None and 0.3 < took < 2.5
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"body_timeout_s=0.5" in answer


def test_a_body_left_unread_after_the_answer_is_cut_off(impatient):
    """/health answers without reading a body; a client that goes on trickling one
    is disconnected body_timeout_s after the answer, not held forever."""
    with _raw(impatient) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        took = _trickle(sock, b" " * 99, every_s=0.1, for_s=4.0)
        assert _read_until_closed(sock) == b""
    assert took is not None and 0.3 < took < 2.5


def test_good_requests_keep_working_on_a_kept_alive_connection(impatient, items):
    with httpx.Client() as client:
        for _ in range(3):
            assert client.post(f"{impatient}/v1/score", json=items).status_code == 200
            time.sleep(0.3)  # under keep_alive_s: the same connection is reused


def test_connection_cap_answers_503(tiny_model, items):
    cfg = ServeConfig(max_connections=3)
    with BackgroundServer(create_app(tiny_model, config=cfg), config=cfg) as url:
        idle = [_raw(url) for _ in range(3)]
        try:
            _wait_until(lambda: httpx.get(f"{url}/health").status_code == 503)
        finally:
            for sock in idle:
                sock.close()
        _wait_until(lambda: httpx.post(f"{url}/v1/score", json=items).status_code == 200)


def test_oversize_headers_are_refused(tiny_model):
    cfg = ServeConfig(max_header_bytes=1024)
    with BackgroundServer(create_app(tiny_model, config=cfg), config=cfg) as url:
        r = httpx.get(f"{url}/health", headers={"X-Pad": "p" * 2000})  # arrive whole
        assert r.status_code == 431 and "max_header_bytes=1024" in r.json()["detail"]
        with _raw(url) as sock:  # arrive in pieces: the parser stops buffering them
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ")
            for _ in range(4):
                if select.select([sock], [], [], 0.05)[0]:
                    break  # answered
                sock.sendall(b"p" * 500)
            assert _read_until_closed(sock).startswith(b"HTTP/1.1 400")
        assert httpx.get(f"{url}/health").status_code == 200
