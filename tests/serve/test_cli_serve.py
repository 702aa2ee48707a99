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
        np.testing.assert_allclose(body["results"][0]["reward"], est.lower(1.0)[0], rtol=1e-9)
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
