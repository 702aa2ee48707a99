"""The RL side against the real server: the remote client and the TRL adapter, called
the way TRL calls reward functions, give what the local model gives."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rewardhedge.config import ServeConfig
from rewardhedge.optimize import async_reward_function, reward_function
from rewardhedge.optimize.remote import RemoteRewardError, RemoteRewardModel
from rewardhedge.serve import BackgroundServer, create_app
from rewardhedge.uncertainty.reward_rule import RewardRule

PROMPTS = ["question 1 about item 7"] * 2 + ["question 2"] * 2
COMPLETIONS = ["the answer is correct", "the answer is wrong", "clear and precise", "sloppy"]


def _trl_call(fn):
    """Exactly the keyword arguments GRPOTrainer passes (plus a dataset column)."""
    return fn(
        prompts=PROMPTS,
        completions=COMPLETIONS,
        completion_ids=[[1, 2]] * 4,
        trainer_state=None,
        answer=["a"] * 4,
    )


@pytest.fixture(scope="module")
def lcb_server(tiny_model):
    rule = RewardRule.parse("lcb", beta=1.5, transform="centered_logsigmoid")
    with BackgroundServer(create_app(tiny_model, rule=rule, token="tok")) as url:
        yield url, rule


def test_adapter_uses_the_servers_rule(lcb_server, tiny_model, monkeypatch):
    url, rule = lcb_server
    monkeypatch.setenv("REWARDHEDGE_TOKEN", "tok")
    fn = reward_function(url)
    assert fn.rule == rule
    want = rule.apply(tiny_model.score(PROMPTS, COMPLETIONS), groups=PROMPTS)
    np.testing.assert_allclose(_trl_call(fn), want, rtol=1e-9)
    afn = async_reward_function(url)
    assert asyncio.iscoroutinefunction(afn)
    np.testing.assert_allclose(asyncio.run(_trl_call(afn)), want, rtol=1e-9)


def test_remote_score_and_server_reward_match_local(lcb_server, tiny_model):
    url, rule = lcb_server
    with RemoteRewardModel(url, token="tok", max_items_per_request=3) as remote:
        est = remote.score(PROMPTS, COMPLETIONS)
        local = tiny_model.score(PROMPTS, COMPLETIONS)
        np.testing.assert_allclose(est.members, local.members, rtol=1e-12)
        remote.max_items_per_request = 16  # one request: the server centres per prompt
        np.testing.assert_allclose(
            remote.reward(PROMPTS, COMPLETIONS), rule.apply(local, groups=PROMPTS), rtol=1e-9
        )
        assert remote.fetch_rule() == rule


def test_wrong_token_is_reported(lcb_server):
    url, _ = lcb_server
    with (
        RemoteRewardModel(url, token="nope") as remote,
        pytest.raises(RemoteRewardError, match="401"),
    ):
        remote.score(PROMPTS, COMPLETIONS)


def test_client_retries_a_503_until_the_queue_drains(gated, tiny_model):
    cfg = ServeConfig(max_queue_items=4, max_items_per_request=4, retry_after_s=1)
    with (
        BackgroundServer(create_app(gated, config=cfg), config=cfg) as url,
        ThreadPoolExecutor(1) as pool,
    ):
        held = pool.submit(RemoteRewardModel(url).score, PROMPTS, COMPLETIONS)  # fills the queue
        assert gated.entered.wait(10)
        threading.Timer(0.5, gated.open).start()  # frees it before the client's retry
        with RemoteRewardModel(url, retries=3) as remote:
            est = remote.score(PROMPTS[:1], COMPLETIONS[:1])
        assert held.result().members.shape == (3, 4)
    want = tiny_model.score(PROMPTS[:1], COMPLETIONS[:1])
    np.testing.assert_allclose(est.mean, want.mean, rtol=1e-12)
