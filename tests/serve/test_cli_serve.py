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


@pytest.mark.slow
def test_serve_command_reads_token_from_a_file(saved_model, tmp_path):
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    proc, url = _start(["--model", str(saved_model), "--port", "0", "--token-file", str(secret)])
    try:
        item = [{"prompt": "q", "response": "r"}]
        assert httpx.post(f"{url}/v1/score", json=item).status_code == 401
        assert httpx.get(f"{url}/openapi.json").status_code == 401
        ok = httpx.post(f"{url}/v1/score", json=item, headers={"X-Api-Key": "from-file"})
        assert ok.status_code == 200
        assert httpx.get(f"{url}/docs").status_code == 401  # off, and behind the token
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


# -- mistakes get one line and exit 2, before the model is loaded -------------------------------
def _serve_error(capsys, monkeypatch, *args, env=None):
    """``rewardhedge serve`` on a model folder that does not exist (so an error about
    anything else was found before loading it): the exit code and stderr."""
    from rewardhedge.cli import main

    monkeypatch.delenv("REWARDHEDGE_TOKEN", raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = main(["serve", "--model", "/nonexistent/rm", "--port", "0", *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--token", ""], None, "error: --token is empty, which would turn auth off"),
        (["--token", "  "], None, "error: --token is empty"),
        ([], {"REWARDHEDGE_TOKEN": ""}, "error: REWARDHEDGE_TOKEN is set but empty"),
        (["--token-file", "/nonexistent/token"], None, "error: --token-file /nonexistent/token: "
         "cannot read it (No such file or directory)"),
        (["--token", "a", "--token-file", "/x"], None, "error: give the token once"),
        (["--log-level", "bogus"], None, "error: --log-level 'bogus' is not a log level"),
        (["--host", "999.1.1.1"], None, "error: host '999.1.1.1' is not an IP address"),
        (["--header-timeout", "0"], None, "error: --header-timeout: serve.header_timeout_s == 0"),
        (["--body-timeout", "-1"], None, "error: --body-timeout: serve.body_timeout_s == -1"),
        (["--keep-alive", "0"], None, "error: --keep-alive: serve.keep_alive_s == 0"),
        (["--max-connections", "0"], None, "error: --max-connections: serve.max_connections == 0"),
        (["--max-header-bytes", "0"], None, "error: --max-header-bytes: serve.max_header_bytes"),
    ],
)  # fmt: skip
def test_serve_mistakes_are_one_line(capsys, monkeypatch, args, env, message):
    code, err = _serve_error(capsys, monkeypatch, *args, env=env)
    assert code == 2
    assert err.startswith(message), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_serve_refuses_an_empty_or_unreadable_token_file(capsys, monkeypatch, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    code, err = _serve_error(capsys, monkeypatch, "--token-file", str(empty))
    assert (
        code == 2
        and err == f"error: --token-file {empty} is empty; write the token in it, on one line.\n"
    )
    code, err = _serve_error(capsys, monkeypatch, "--token-file", str(tmp_path))  # a folder
    assert code == 2 and err.startswith(f"error: --token-file {tmp_path}: cannot read it")


def test_serve_on_a_port_in_use_is_one_line(capsys, monkeypatch):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = _serve_error(capsys, monkeypatch, "--port", str(port))
    assert code == 2
    assert err.startswith(f"error: port {port} on 127.0.0.1 is already in use"), err
    assert err.count("\n") == 1


def test_serve_api_docs_flag_takes_no_value(capsys, monkeypatch):
    code, err = _serve_error(capsys, monkeypatch, "--api-docs=yes")
    assert code == 2 and "does not take a value" in err
