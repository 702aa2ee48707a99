"""The reward server, over real TCP: same numbers as in-process scoring, clear errors,
auth, limits, overload and graceful shutdown."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from rewardhedge.config import ServeConfig
from rewardhedge.errors import ConfigError
from rewardhedge.serve import BackgroundServer, create_app
from rewardhedge.types import PreferencePair
from rewardhedge.uncertainty.reward_rule import RewardRule


@pytest.fixture
def server(tiny_model):
    with BackgroundServer(create_app(tiny_model)) as url:
        yield url


def _wait_until(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


# -- results equal in-process scoring ------------------------------------------------------
def test_score_equals_in_process(server, tiny_model, items):
    r = httpx.post(f"{server}/v1/score", json={"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    est = tiny_model.score([i["prompt"] for i in items], [i["response"] for i in items])
    got = body["results"]
    np.testing.assert_allclose([g["mean"] for g in got], est.mean, rtol=1e-12)
    np.testing.assert_allclose([g["epistemic"] for g in got], est.epistemic, rtol=1e-12)
    np.testing.assert_allclose([g["aleatoric"] for g in got], est.aleatoric, rtol=1e-12)
    np.testing.assert_allclose([g["std"] for g in got], est.std, rtol=1e-12)
    np.testing.assert_allclose(np.array([g["members"] for g in got]).T, est.members, rtol=1e-12)
    np.testing.assert_allclose([g["reward"] for g in got], est.mean, rtol=1e-12)
    assert body["n_members"] == 3 and body["rule"] == "mean"


def test_bare_list_body_is_accepted(server, items):
    a = httpx.post(f"{server}/v1/score", json=items).json()
    b = httpx.post(f"{server}/v1/score", json={"items": items}).json()
    assert a == b


def test_compare_equals_in_process(server, tiny_model, items):
    pairs = [{"prompt": "q", "a": "the answer is correct", "b": "the answer is wrong"}] * 2
    body = httpx.post(f"{server}/v1/compare", json={"pairs": pairs}).json()
    pw = tiny_model.compare([PreferencePair("q", p["a"], p["b"]) for p in pairs])
    np.testing.assert_allclose([r["prob"] for r in body["results"]], pw.prob, rtol=1e-12)
    np.testing.assert_allclose([r["prob_std"] for r in body["results"]], pw.prob_std, rtol=1e-12)
    np.testing.assert_allclose([r["margin"] for r in body["results"]], pw.margin, rtol=1e-12)
    assert body["temperature"] == pytest.approx(tiny_model.temperature)
    assert body["results"][0]["prob"] > 0.5


def test_rule_override_applies_lcb(tiny_model, items):
    rule = RewardRule.parse("lcb", beta=2.0)
    with BackgroundServer(create_app(tiny_model, rule=rule)) as url:
        body = httpx.post(f"{url}/v1/score", json=items).json()
    est = tiny_model.score([i["prompt"] for i in items], [i["response"] for i in items])
    # LCB of the (standardised) members: their mean, not the raw ``est.mean``
    lcb = est.members.mean(axis=0) - 2.0 * est.members.std(axis=0)
    np.testing.assert_allclose([g["reward"] for g in body["results"]], lcb, rtol=1e-12)
    assert body["rule"] == rule.label()


def test_group_transform_uses_the_request_prompts(tiny_model, items):
    """PAR/centered transforms centre per prompt within the request, whatever else is batched."""
    rule = RewardRule.parse("mean", transform="centered_logsigmoid")
    with BackgroundServer(create_app(tiny_model, rule=rule)) as url:
        body = httpx.post(f"{url}/v1/score", json=items).json()
    prompts = [i["prompt"] for i in items]
    est = tiny_model.score(prompts, [i["response"] for i in items])
    want = rule.apply(est, groups=prompts)
    np.testing.assert_allclose([g["reward"] for g in body["results"]], want, rtol=1e-12)


def test_model_info(server, tiny_model):
    info = httpx.get(f"{server}/v1/model").json()
    assert info["rule"] == tiny_model.rule.to_dict()
    assert info["calibration"]["temperature"] == pytest.approx(tiny_model.temperature)
    assert info["config"]["n_members"] == 3
    assert info["limits"]["max_items_per_request"] == 1024
    assert info["version"]


def test_openapi_schema_is_typed(server):
    spec = httpx.get(f"{server}/openapi.json").json()
    for path in ("/v1/score", "/v1/compare", "/get_reward"):
        post = spec["paths"][path]["post"]
        assert "$ref" in json.dumps(post["requestBody"]), path
        assert "$ref" in json.dumps(post["responses"]["200"]), path
        assert {"401", "413", "422", "503"} <= set(post["responses"]), path
    assert {"ScoreRequest", "ScoreResult", "OpenRLHFRequest"} <= set(spec["components"]["schemas"])


# -- OpenRLHF -----------------------------------------------------------------------------
def test_openrlhf_route_as_its_client_sends(server, tiny_model):
    requests = pytest.importorskip("requests")
    prompts = ["question 1 about item 7", "question 2"]
    responses = [" the answer is correct", " vague"]
    queries = [p + r for p, r in zip(prompts, responses, strict=True)]
    # Exactly what openrlhf.utils.remote_rm_utils.request_api_wrapper does.
    resp = requests.post(
        url=f"{server}/get_reward",
        json={"query": queries, "prompts": prompts, "labels": ["", ""]},
        headers={"Content-Type": "application/json"},
        timeout=180,
    )
    resp.raise_for_status()
    body = resp.json()
    assert set(body) == {"rewards", "scores", "extra_logs"}
    est = tiny_model.score(prompts, responses)
    np.testing.assert_allclose(body["rewards"], est.mean, rtol=1e-12)
    assert body["scores"] == body["rewards"]
    logs = body["extra_logs"]
    np.testing.assert_allclose(logs["rm_epistemic_std"], est.std, rtol=1e-12)
    assert logs["rm_prompt_split"] == [1.0, 1.0]
    assert all(len(v) == 2 for v in logs.values())


def test_openrlhf_query_without_prompts_scores_whole_query(server, tiny_model):
    body = httpx.post(f"{server}/get_reward", json={"query": ["q: the answer is correct"]}).json()
    est = tiny_model.score([""], ["q: the answer is correct"])
    np.testing.assert_allclose(body["rewards"], est.mean, rtol=1e-12)
    assert body["extra_logs"]["rm_prompt_split"] == [0.0]


def test_openrlhf_prompt_count_mismatch(server):
    r = httpx.post(f"{server}/get_reward", json={"query": ["a", "b"], "prompts": ["a"]})
    assert r.status_code == 422
    assert "prompts has 1 entries but query has 2" in r.json()["detail"]


# -- malformed input ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{bad", "malformed JSON at character 1"),
        (b'{"items": "x"}', "items: Input should be a valid list"),
        (
            b'{"items": [{"prompt": 1, "response": "x"}]}',
            "items[0].prompt: Input should be a valid string",
        ),
        (b'{"items": [{"prompt": "p"}]}', "items[0].response: Field required"),
        (b'{"items": [{"prompt": "p", "response": "r", "x": 1}]}', "items[0].x: Extra inputs"),
        (b"[]", "items is empty"),
        (b'"text"', "send a JSON object or list"),
    ],
)
def test_malformed_requests_get_422_with_the_field(server, body, message):
    r = httpx.post(f"{server}/v1/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert message in r.json()["detail"]


def test_empty_pairs_and_queries(server):
    assert "pairs is empty" in httpx.post(f"{server}/v1/compare", json=[]).json()["detail"]
    r = httpx.post(f"{server}/get_reward", json={"query": []})
    assert r.status_code == 422 and "query is empty" in r.json()["detail"]


# -- limits -------------------------------------------------------------------------------
@pytest.fixture
def small_limits(tiny_model):
    cfg = ServeConfig(max_items_per_request=3, max_text_chars=50, max_body_bytes=2000)
    with BackgroundServer(create_app(tiny_model, config=cfg), config=cfg) as url:
        yield url


def test_too_many_items_is_413_naming_the_limit(small_limits):
    r = httpx.post(f"{small_limits}/v1/score", json=[{"prompt": "p", "response": "r"}] * 4)
    assert r.status_code == 413
    assert "max_items_per_request=3" in r.json()["detail"]


def test_long_text_is_422_naming_field_and_limit(small_limits):
    items = [{"prompt": "p", "response": "r"}, {"prompt": "p", "response": "x" * 51}]
    r = httpx.post(f"{small_limits}/v1/score", json=items)
    assert r.status_code == 422
    assert r.json()["detail"].startswith("items[1].response has 51 characters")
    assert "max_text_chars=50" in r.json()["detail"]
    r = httpx.post(f"{small_limits}/get_reward", json={"query": ["y" * 60]})
    assert r.status_code == 422 and "query[0] has 60 characters" in r.json()["detail"]


def test_large_body_is_413_by_content_length_and_by_stream(small_limits):
    big = json.dumps([{"prompt": "p", "response": "z" * 3000}]).encode()
    r = httpx.post(
        f"{small_limits}/v1/score", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "max_body_bytes=2000" in r.json()["detail"]

    def chunks():  # no Content-Length: chunked transfer encoding
        for i in range(0, len(big), 500):
            yield big[i : i + 500]

    r = httpx.post(
        f"{small_limits}/v1/score", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "max_body_bytes=2000" in r.json()["detail"]


def test_config_rejects_impossible_limits():
    with pytest.raises(ConfigError, match=r"max_items_per_request == 10 exceeds"):
        ServeConfig(max_items_per_request=10, max_queue_items=5)
    with pytest.raises(ConfigError, match=r"serve\.max_batch_items == 0"):
        ServeConfig(max_batch_items=0)


# -- auth ---------------------------------------------------------------------------------
def test_auth_on(tiny_model, items):
    with BackgroundServer(create_app(tiny_model, token="s3cret")) as url:
        r = httpx.post(f"{url}/v1/score", json=items)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert "token" in r.json()["detail"]
        bad = {"Authorization": "Bearer s3cre"}
        assert httpx.post(f"{url}/v1/score", json=items, headers=bad).status_code == 401
        assert httpx.get(f"{url}/v1/model").status_code == 401
        assert httpx.post(f"{url}/get_reward", json={"query": ["a"]}).status_code == 401
        good = {"Authorization": "Bearer s3cret"}
        assert httpx.post(f"{url}/v1/score", json=items, headers=good).status_code == 200
        key = {"X-Api-Key": "s3cret"}
        assert (
            httpx.post(f"{url}/get_reward", json={"query": ["a"]}, headers=key).status_code == 200
        )
        assert httpx.get(f"{url}/health").status_code == 200  # probes need no token


def test_auth_off_needs_no_header(server, items):
    assert httpx.post(f"{server}/v1/score", json=items).status_code == 200


def test_token_never_appears_in_model_info(tiny_model):
    with BackgroundServer(create_app(tiny_model, token="s3cret")) as url:
        info = httpx.get(f"{url}/v1/model", headers={"Authorization": "Bearer s3cret"}).text
    assert "s3cret" not in info


# -- batching, overload, timeouts, shutdown ------------------------------------------------
def _post_score(url, items, timeout=30.0):
    return httpx.post(f"{url}/v1/score", json=items, timeout=timeout)


def test_concurrent_requests_are_coalesced_and_answered_correctly(gated, tiny_model):
    cfg = ServeConfig(max_batch_items=64)
    singles = [[{"prompt": f"q{i}", "response": f"the answer is correct {i}"}] for i in range(6)]
    with (
        BackgroundServer(create_app(gated, config=cfg), config=cfg) as url,
        ThreadPoolExecutor(8) as pool,
    ):
        first = pool.submit(_post_score, url, singles[0])
        assert gated.entered.wait(10)  # batch 1 is being scored (held at the gate)
        rest = [pool.submit(_post_score, url, s) for s in singles[1:]]
        _wait_until(lambda: httpx.get(f"{url}/health").json()["queue_items"] == 6)
        gated.open()
        responses = [first.result(), *(f.result() for f in rest)]
        health = httpx.get(f"{url}/health").json()
    assert [r.status_code for r in responses] == [200] * 6
    assert gated.calls == [1, 5]  # the five waiting requests went through in one pass
    assert health["largest_batch"] == 5 and health["batches"] == 2
    est = tiny_model.score([s[0]["prompt"] for s in singles], [s[0]["response"] for s in singles])
    got = [r.json()["results"][0]["mean"] for r in responses]
    np.testing.assert_allclose(got, est.mean, rtol=1e-12)


def test_overload_gets_503_then_recovers(gated, tiny_model, items):
    cfg = ServeConfig(max_queue_items=8, max_items_per_request=4, retry_after_s=2)
    with (
        BackgroundServer(create_app(gated, config=cfg), config=cfg) as url,
        ThreadPoolExecutor(4) as pool,
    ):
        held = [pool.submit(_post_score, url, items) for _ in range(2)]  # 8 items: queue full
        _wait_until(lambda: httpx.get(f"{url}/health").json()["queue_items"] == 8)
        r = _post_score(url, items[:1])
        assert r.status_code == 503
        assert r.headers["retry-after"] == "2"
        assert "max_queue_items=8" in r.json()["detail"]
        health = httpx.get(f"{url}/health")  # still answers while full
        assert health.status_code == 200 and health.json()["requests_rejected"] == 1
        gated.open()
        assert [f.result().status_code for f in held] == [200, 200]
        after = _post_score(url, items)
        assert after.status_code == 200
        assert httpx.get(f"{url}/health").json()["queue_items"] == 0
    est = tiny_model.score([i["prompt"] for i in items], [i["response"] for i in items])
    np.testing.assert_allclose([g["mean"] for g in after.json()["results"]], est.mean, rtol=1e-12)


def test_timeout_is_504_and_frees_the_queue(gated, items):
    cfg = ServeConfig(request_timeout_s=0.3)
    with (
        BackgroundServer(create_app(gated, config=cfg), config=cfg) as url,
        ThreadPoolExecutor(2) as pool,
    ):
        first = pool.submit(_post_score, url, items[:1])
        assert gated.entered.wait(10)
        second = _post_score(url, items[1:2])  # waits behind the held batch, times out
        assert second.status_code == 504
        assert "request_timeout_s=0.3" in second.json()["detail"]
        gated.open()
        assert first.result().status_code == 504  # it was held past its timeout too
        _wait_until(lambda: httpx.get(f"{url}/health").json()["queue_items"] == 0)
        assert _post_score(url, items).status_code == 200
    assert gated.calls[-1] == len(items)  # the timed-out job was dropped, not scored later


def test_graceful_shutdown_finishes_requests_in_flight(gated, tiny_model, items):
    server = BackgroundServer(create_app(gated))
    url = server.start()
    with ThreadPoolExecutor(3) as pool:
        inflight = [pool.submit(_post_score, url, items) for _ in range(3)]
        n = 3 * len(items)  # all three requests accepted (one held at the gate, two queued)
        _wait_until(lambda: httpx.get(f"{url}/health").json()["queue_items"] == n)
        server.server.should_exit = True  # what uvicorn's SIGTERM handler does
        time.sleep(0.3)
        assert server._thread.is_alive()  # waiting for the requests in flight
        threading.Timer(0.2, gated.open).start()
        results = [f.result() for f in inflight]
    server._thread.join(15)
    assert not server._thread.is_alive()
    assert [r.status_code for r in results] == [200, 200, 200]
    est = tiny_model.score([i["prompt"] for i in items], [i["response"] for i in items])
    for r in results:
        np.testing.assert_allclose([g["mean"] for g in r.json()["results"]], est.mean, rtol=1e-12)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)
