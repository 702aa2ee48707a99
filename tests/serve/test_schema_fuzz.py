"""The server fuzzed from its own OpenAPI schema (schemathesis): a real ``rewardhedge serve``
on 127.0.0.1, every route, requests generated to fit and to break the schema. No request
may make it answer 5xx. CI runs ``REWARDHEDGE_FUZZ_EXAMPLES`` (default 30) per route."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

EXAMPLES = int(os.environ.get("REWARDHEDGE_FUZZ_EXAMPLES", "30"))
TOKEN = "fuzz-token-0123456789"


@pytest.fixture(scope="module")
def server(saved_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``rewardhedge serve`` in a subprocess (token from a file), stopped by SIGTERM."""
    token_file = tmp_path_factory.mktemp("token") / "token"
    token_file.write_text(TOKEN + "\n")
    env = {k: v for k, v in os.environ.items() if k != "REWARDHEDGE_TOKEN"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardhedge", "serve", "--model", str(saved_model),
         "--port", "0", "--token-file", str(token_file), "--log-level", "warning"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    url, deadline = None, time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode}")
        m = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        url = m.group(1) if m else None
    assert url is not None, "serve did not announce its address"
    while httpx.get(f"{url}/health").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def api_schema(server: str):
    return schemathesis.openapi.from_url(
        f"{server}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_makes_the_server_fail(case, server: str) -> None:
    """Generated requests (valid and invalid), with the token: never a 5xx."""
    case.call_and_validate(
        base_url=server,
        headers={"Authorization": f"Bearer {TOKEN}"},
        checks=[not_a_server_error],
        timeout=30,
    )


def test_the_schema_covers_every_scoring_route(server: str) -> None:
    paths = httpx.get(
        f"{server}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()["paths"]
    assert {"/v1/score", "/v1/compare", "/get_reward", "/health", "/v1/model"} <= set(paths)
