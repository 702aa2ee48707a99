"""``rewardhedge serve`` as a user runs it: a subprocess on a saved model, stopped by SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from rewardhedge.uncertainty import Aggregation


def _start(args, env_extra=None):
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", **(env_extra or {})}
    if env_extra is None:
        env.pop("REWARDHEDGE_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardhedge", "serve", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        m = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if m:
            url = m.group(1)
            while time.monotonic() < deadline:  # the port is bound; wait for the app
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        return proc, url
                except httpx.TransportError:
                    time.sleep(0.05)
    proc.kill()
    pytest.fail("server did not start:\n" + "".join(lines) + (proc.stderr.read() or ""))


@pytest.mark.slow
def test_serve_command_scores_and_stops_on_sigterm(saved_model, tiny_model):
    proc, url = _start(["--model", str(saved_model), "--port", "0", "--aggregate", "lcb"])
    try:
        items = [{"prompt": "q", "response": "the answer is correct"}]
        body = httpx.post(f"{url}/v1/score", json=items, timeout=30).json()
        est = tiny_model.score(["q"], ["the answer is correct"])
        # LCB on the standardised members (their mean is not the raw mean).
        expected = Aggregation("lcb", beta=1.0).apply(est)[0]
        np.testing.assert_allclose(body["results"][0]["reward"], expected, rtol=1e-9)
        assert httpx.get(f"{url}/v1/model").json()["rule"]["aggregation"]["name"] == "lcb"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        log = proc.stderr.read()
    # uvicorn drains, runs the app's shutdown, then re-raises the signal it caught.
    assert "Application shutdown complete" in log
    assert code in (0, -signal.SIGTERM)


@pytest.mark.slow
def test_serve_command_reads_token_from_environment(saved_model):
    proc, url = _start(
        ["--model", str(saved_model), "--port", "0"], env_extra={"REWARDHEDGE_TOKEN": "tok"}
    )
    try:
        item = [{"prompt": "q", "response": "r"}]
        assert httpx.post(f"{url}/v1/score", json=item).status_code == 401
        ok = httpx.post(f"{url}/v1/score", json=item, headers={"Authorization": "Bearer tok"})
        assert ok.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_serve_a_diverse_standardised_ensemble(pair_factory, tmp_path):
    """A views ensemble with standardised members, served: the worst case the server
    returns is the one the saved model computes in process."""
    from rewardhedge.config import DiversityConfig, EncoderConfig, EnsembleConfig
    from rewardhedge.estimators.ensemble import EnsembleRewardModel

    cfg = EnsembleConfig(
        n_members=3,
        encoder=EncoderConfig(kind="hashing", dim=32, views=("hash", "hash_bigram", "hash_char")),
        diversity=DiversityConfig(kind="views"),
    )
    model = EnsembleRewardModel(cfg, use_cache=False).fit(pair_factory(40))
    folder = model.save(tmp_path / "rm")
    proc, url = _start(["--model", str(folder), "--port", "0", "--aggregate", "wco"])
    try:
        items = [{"prompt": "q", "response": r} for r in ("the answer is correct", "wrong")]
        body = httpx.post(f"{url}/v1/score", json=items, timeout=30).json()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    est = EnsembleRewardModel.load(folder).score(["q", "q"], [i["response"] for i in items])
    expected = Aggregation("wco").apply(est)
    np.testing.assert_allclose([r["reward"] for r in body["results"]], expected, rtol=1e-9)
    assert not np.allclose(expected, est.mean)  # the members differ: wco is not the mean
