"""RemoteRewardModel against a real HTTP server speaking the reward-server contract.

The server here is a minimal FastAPI app in this module (not rewardhedge.serve),
run by uvicorn in a background thread, scoring with a real tiny model.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("httpx")
fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from fastapi.responses import JSONResponse  # noqa: E402

from rewardhedge.config import EncoderConfig, EnsembleConfig, TrainConfig  # noqa: E402
from rewardhedge.errors import ConfigError  # noqa: E402
from rewardhedge.estimators.ensemble import EnsembleRewardModel  # noqa: E402
from rewardhedge.optimize import async_reward_function, reward_function  # noqa: E402
from rewardhedge.optimize.remote import RemoteRewardError, RemoteRewardModel  # noqa: E402
from rewardhedge.uncertainty import RewardRule  # noqa: E402

TOKEN = "s3cret"
PROMPTS = [f"question {i} about item {i * 7}" for i in range(5) for _ in range(2)]
RESPONSES = [f"the answer is {w} for question {i}" for i in range(5) for w in ("correct", "rude")]


@pytest.fixture(scope="module")
def model(pair_factory) -> EnsembleRewardModel:
    cfg = EnsembleConfig(
        n_members=3,
        encoder=EncoderConfig(kind="hashing", dim=64),
        train=TrainConfig(epochs=50),  # plenty for 40 pairs; keeps the fixture under a second
    )
    return EnsembleRewardModel(cfg, use_cache=False).fit(pair_factory(40))


def make_app(model: EnsembleRewardModel, calls: Counter) -> fastapi.FastAPI:
    """The server contract: POST /v1/score; /open/ needs no token, /busy/ answers 503 once."""
    app = fastapi.FastAPI()

    def score(body: dict, auth: str | None, *, token: bool, busy: bool):
        calls["requests"] += 1
        calls[f"items:{len(body['items'])}"] += 1
        if token and auth != f"Bearer {TOKEN}":
            return JSONResponse({"detail": "missing or bad token"}, 401)
        if busy and calls["busy"] == 0:
            calls["busy"] += 1
            return JSONResponse({"detail": "busy"}, 503, headers={"Retry-After": "0"})
        prompts = [it["prompt"] for it in body["items"]]
        est = model.score(prompts, [it["response"] for it in body["items"]])
        reward = model.rule.apply(est, groups=prompts)
        results = [
            {
                "reward": float(reward[i]),
                "mean": float(est.mean[i]),
                "epistemic": float(est.epistemic[i]),
                "aleatoric": float(est.aleatoric[i]),
                "std": float(np.sqrt(est.epistemic[i])),
                "members": est.members[:, i].tolist(),
            }
            for i in range(len(est))
        ]
        return {"results": results, "rule": model.rule.label(), "n_members": est.n_members}

    def route(token: bool, busy: bool):
        def handler(body: dict, authorization: str | None = fastapi.Header(None)):
            return score(body, authorization, token=token, busy=busy)

        return handler

    for prefix, token, busy in (("", True, False), ("/open", False, False), ("/busy", True, True)):
        app.post(f"{prefix}/v1/score")(route(token, busy))
    return app


@pytest.fixture(scope="module")
def server(model):
    """``(base_url, calls)`` of a real uvicorn server on a free local port."""
    calls: Counter = Counter()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # port 0: the OS picks a free port; uvicorn serves this socket
    port = sock.getsockname()[1]
    config = uvicorn.Config(make_app(model, calls), log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()  # not the main thread, so uvicorn installs no signal handlers
    deadline = time.monotonic() + 10
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}", calls
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def remote(server):
    with RemoteRewardModel(server[0] + "/", token=TOKEN) as rm:
        yield rm


def assert_same(a, b):
    for f in ("mean", "epistemic", "aleatoric", "members"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=1e-6, atol=1e-9)


def test_remote_score_equals_local(model, remote):
    assert not remote.url.endswith("/")  # the fixture passed a trailing slash
    est = remote.score(PROMPTS, RESPONSES)
    assert est.members.shape == (3, len(PROMPTS))
    assert_same(est, model.score(PROMPTS, RESPONSES))
    np.testing.assert_allclose(remote.reward(PROMPTS, RESPONSES), model.reward(PROMPTS, RESPONSES))
    assert remote.server_rule_label == model.rule.label()


def test_chunking_keeps_order(model, server):
    url, calls = server
    before = calls.copy()
    with RemoteRewardModel(url, token=TOKEN, max_items_per_request=3) as rm:
        est = rm.score(PROMPTS, RESPONSES)
    assert_same(est, model.score(PROMPTS, RESPONSES))
    sent = calls - before
    assert sent["requests"] == 4 and sent["items:3"] == 3 and sent["items:1"] == 1


def test_empty_input_sends_nothing(remote, server):
    before = server[1]["requests"]
    est = remote.score([], [])
    assert len(est) == 0 and est.members.shape == (0, 0)
    assert server[1]["requests"] == before


def test_missing_token_raises_401_with_detail(server):
    with RemoteRewardModel(server[0]) as rm, pytest.raises(RemoteRewardError) as info:
        rm.score(PROMPTS, RESPONSES)
    assert info.value.status == 401
    assert "401" in str(info.value) and "missing or bad token" in str(info.value)
    assert "/v1/score" in str(info.value)


def test_open_route_needs_no_token(model, server):
    with RemoteRewardModel(server[0] + "/open") as rm:
        assert_same(rm.score(PROMPTS, RESPONSES), model.score(PROMPTS, RESPONSES))


def test_retry_after_503_succeeds(model, server):
    url, calls = server
    calls["busy"] = 0
    with RemoteRewardModel(url + "/busy", token=TOKEN, retries=1) as rm:
        assert_same(rm.score(PROMPTS, RESPONSES), model.score(PROMPTS, RESPONSES))
    assert calls["busy"] == 1
    calls["busy"] = 0
    with (
        RemoteRewardModel(url + "/busy", token=TOKEN, retries=0) as rm,
        pytest.raises(RemoteRewardError, match=r"503.*busy"),
    ):
        rm.score(PROMPTS, RESPONSES)


def test_unreachable_server_raises_after_retries():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens once closed
    with (
        RemoteRewardModel(f"http://127.0.0.1:{port}", retries=1) as rm,
        pytest.raises(RemoteRewardError, match=r"no response.*2 attempt"),
    ):
        rm.score(["a"], ["b"])


def test_async_equals_sync(model, server):
    url = server[0]

    async def go():
        async with RemoteRewardModel(url, token=TOKEN, max_items_per_request=3) as rm:
            return await rm.ascore(PROMPTS, RESPONSES)

    assert_same(asyncio.run(go()), model.score(PROMPTS, RESPONSES))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_async_client_survives_a_new_event_loop(model, remote):
    # Each asyncio.run is a new loop; the first loop's client cannot be closed
    # once its loop is gone, so it is dropped (and its socket closed by gc here).
    assert_same(asyncio.run(remote.ascore(PROMPTS, RESPONSES)), model.score(PROMPTS, RESPONSES))

    async def again():
        try:
            return await remote.ascore(PROMPTS, RESPONSES)
        finally:
            await remote.aclose()

    assert_same(asyncio.run(again()), model.score(PROMPTS, RESPONSES))
    gc.collect()


def test_adapter_with_url_and_remote_sources(model, server, remote, monkeypatch):
    monkeypatch.setenv("REWARDHEDGE_TOKEN", TOKEN)
    rule = RewardRule.parse("uwo", transform="par")
    want = rule.apply(model.score(PROMPTS, RESPONSES), groups=PROMPTS)
    kwargs = {"completion_ids": [[0]] * len(PROMPTS), "trainer_state": None}
    for source in (server[0], remote):
        fn = reward_function(source, rule=rule, name="remote_rm")
        assert isinstance(fn.source, RemoteRewardModel) and fn.rule == rule
        got = fn(prompts=PROMPTS, completions=RESPONSES, **kwargs)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        fn.source.close()

        afn = async_reward_function(source, rule=rule)
        assert asyncio.iscoroutinefunction(afn)

        async def call(afn=afn):
            try:
                return await afn(prompts=PROMPTS, completions=RESPONSES, **kwargs)
            finally:
                await afn.source.aclose()

        np.testing.assert_allclose(asyncio.run(call()), want, rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"url": "127.0.0.1:8000"}, "url"),
        ({"token": ""}, "token"),
        ({"timeout": 0}, "timeout"),
        ({"max_items_per_request": 0}, "max_items_per_request"),
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
    ],
)
def test_bad_arguments(kwargs, named):
    args = {"url": "http://127.0.0.1:1", **kwargs}
    with pytest.raises(ConfigError, match=named):
        RemoteRewardModel(args.pop("url"), **args)


def test_bad_inputs_are_rejected_before_sending(remote):
    with pytest.raises(TypeError, match="single str"):
        remote.score("a prompt", "a response")
    with pytest.raises(ValueError, match="differ in length"):
        remote.score(["a", "b"], ["x"])
