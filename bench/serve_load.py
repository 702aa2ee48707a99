"""Load test of the reward server: served throughput against in-process scoring.

A trained model (MiniLM, K=5 linear heads on the HH-RLHF harmless train split)
is served by ``rewardhedge serve`` in its own process; this process is the
client, on loopback. For concurrency 1, 8 and 32 and 1 or 16 items per
request it sends a fixed number of requests (with a time cap, so it always
ends) of real HH test (prompt, response) items and records items/s and p50 /
p99 latency. In the same run, in this process, ``model.score`` on the same
kind of items gives the in-process throughput: on all items before and after,
and on each cell's own items right after that cell, the baseline of its ratio.
Neither side uses the embedding cache, so every item is really encoded.
The target cells (one item per request, concurrency 8 and 32) run
``--repeats`` times, each with httpx and with a hand-written HTTP/1.1 client
(:class:`RawHTTP`) whose own CPU use is negligible, and the median ratio is
reported: on this 2-core box a run's ratio moves by +-0.1, and every
millisecond the client spends is taken from the model being measured.
It also records the HTTP overhead alone (/health round trip) and, in
alternating pairs of fresh servers, one-item requests at concurrency 8 with
the rejoin wait on and off.

Then an overload test: 128 clients firing 16-item requests at a server whose
queue holds 256 items; it counts 503s, checks that /health keeps answering and
that scores afterwards are right, and reads the server's peak memory (VmHWM).

Usage: python bench/serve_load.py [--requests 240] [--time-cap 60] [--repeats 3]
Writes bench/results/serve_load.json and prints README rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import torch

from rewardhedge import __version__
from rewardhedge.config import EnsembleConfig, TrainConfig
from rewardhedge.estimators.ensemble import EnsembleRewardModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hh_data import load_hh, split

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / "bench" / "cache"


# -- the server process ----------------------------------------------------------------------
class ServerProcess:
    """``rewardhedge serve`` in a subprocess; the URL is read from its start-up line."""

    def __init__(self, model_dir: Path, *extra: str) -> None:
        env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
        env.pop("REWARDHEDGE_TOKEN", None)
        cmd = [sys.executable, "-m", "rewardhedge", "serve", "--model", str(model_dir)]
        self.proc = subprocess.Popen(
            [*cmd, "--port", "0", "--log-level", "warning", *extra],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.url = ""
        for line in self.proc.stderr:
            m = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
            if m:
                self.url = m.group(1)
                break
        if not self.url:
            raise RuntimeError("server did not start")
        for _ in range(600):
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("server did not answer /health")

    def memory_mib(self) -> dict[str, float]:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        out = {}
        for key in ("VmRSS", "VmHWM"):
            m = re.search(rf"{key}:\s+(\d+) kB", status)
            out[key] = int(m.group(1)) / 1024 if m else float("nan")
        return out

    def health(self) -> dict:
        return httpx.get(f"{self.url}/health", timeout=30).json()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


# -- the client ----------------------------------------------------------------------------
class RawHTTP:
    """One kept-alive HTTP/1.1 connection, written by hand: a few µs of client CPU per
    request, where httpx spends milliseconds. On this 2-core box the load generator
    shares the CPU with the server's model, so a heavy client slows the very
    forward passes it measures (an RL worker sending these requests runs elsewhere)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length")
        )
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def load(
    url: str,
    items: list[dict],
    *,
    concurrency: int,
    per_request: int,
    n_requests: int,
    time_cap: float,
    retry_503: bool = True,
    client: str = "httpx",
) -> dict:
    """``concurrency`` workers send ``n_requests`` requests in total (or stop at the cap),
    through httpx or, with ``client="raw"``, :class:`RawHTTP`."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = 0
    scored = 0
    start = time.perf_counter()
    host, port = url.removeprefix("http://").split(":")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:

        async def post(conn: RawHTTP, body: list[dict]) -> tuple[int, bytes]:
            if client == "raw":
                return await conn.post("/v1/score", json.dumps(body).encode())
            r = await http.post(f"{url}/v1/score", json=body)
            return r.status_code, r.content

        async def worker() -> None:
            nonlocal sent, scored
            conn = RawHTTP(host, int(port))
            try:
                while sent < n_requests and time.perf_counter() - start < time_cap:
                    i = sent
                    sent += 1
                    body = [items[(i * per_request + j) % len(items)] for j in range(per_request)]
                    while True:
                        t0 = time.perf_counter()
                        status, content = await post(conn, body)
                        statuses[status] = statuses.get(status, 0) + 1
                        if status == 503 and retry_503:
                            await asyncio.sleep(0.05)
                            continue
                        break
                    if status == 200:
                        latencies.append(time.perf_counter() - t0)
                        scored += per_request
                        if len(json.loads(content)["results"]) != per_request:
                            raise RuntimeError("the server answered the wrong number of items")
            finally:
                await conn.close()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "items_per_request": per_request,
        "client": client,
        "requests_ok": len(latencies),
        "items": scored,
        "wall_s": wall,
        "items_per_s": scored / wall,
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
        "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "hit_time_cap": wall >= time_cap,
    }


def in_process(model: EnsembleRewardModel, items: list[dict]) -> dict:
    prompts = [it["prompt"] for it in items]
    responses = [it["response"] for it in items]
    t0 = time.perf_counter()
    model.score(prompts, responses)
    wall = time.perf_counter() - t0
    return {"items": len(items), "wall_s": wall, "items_per_s": len(items) / wall}


async def overload(server: ServerProcess, items: list[dict], clients: int, requests: int) -> dict:
    before = server.memory_mib()
    health_lat: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        async with httpx.AsyncClient(timeout=30) as c:
            while not done.is_set():
                t0 = time.perf_counter()
                r = await c.get(f"{server.url}/health")
                assert r.status_code == 200
                health_lat.append(time.perf_counter() - t0)
                await asyncio.sleep(0.1)

    prober = asyncio.create_task(probe())
    burst = await load(
        server.url,
        items,
        concurrency=clients,
        per_request=16,
        n_requests=requests,
        time_cap=120,
        retry_503=False,
    )
    done.set()
    await prober
    after = server.memory_mib()
    return {
        "burst": burst,
        "rss_before_mib": before["VmRSS"],
        "peak_rss_mib": after["VmHWM"],
        "health_probes": len(health_lat),
        "health_p99_ms": float(np.percentile(np.array(health_lat) * 1000, 99)),
        "server_health": server.health(),
    }


def measure_cell(
    server: ServerProcess,
    items: list[dict],
    concurrency: int,
    per_request: int,
    n: int,
    cap: float,
    client: str = "httpx",
) -> dict:
    """One load cell, with the mean micro-batch and rejoin waits read from /health."""
    h0 = server.health()
    cell = asyncio.run(
        load(
            server.url,
            items,
            concurrency=concurrency,
            per_request=per_request,
            n_requests=n,
            time_cap=cap,
            client=client,
        )
    )
    h1 = server.health()
    cell["mean_batch"] = (h1["items_scored"] - h0["items_scored"]) / max(
        h1["batches"] - h0["batches"], 1
    )
    cell["rejoin_waits"] = h1["rejoin_waits"] - h0["rejoin_waits"]
    # Where the served rate goes: the share of the wall time the scorer was busy,
    # and its items/s while busy (a batch of concurrency-many items at a time).
    busy = h1["scoring_seconds"] - h0["scoring_seconds"]
    cell["scorer_utilisation"] = busy / cell["wall_s"]
    cell["items_per_busy_s"] = cell["items"] / busy if busy else None
    return cell


def describe(cell: dict) -> str:
    return (
        f"c={cell['concurrency']:>2} k={cell['items_per_request']:>2}: "
        f"{cell['items_per_s']:.1f} items/s, p50 {cell['p50_ms']:.0f} ms, "
        f"p99 {cell['p99_ms']:.0f} ms, mean batch {cell['mean_batch']:.1f}, "
        f"scorer busy {cell['scorer_utilisation']:.0%} at {cell['items_per_busy_s'] or 0:.1f} items/s"
    )


def ratio_summary(cells: list[dict]) -> dict[str, dict]:
    """Median and range of served / in-process over the repeats of each one-item cell."""
    out = {}
    one = [c for c in cells if c["items_per_request"] == 1]
    for key in sorted({(c["client"], c["concurrency"]) for c in one}):
        r = [x["ratio_to_in_process"] for x in one if (x["client"], x["concurrency"]) == key]
        out[f"{key[0]}_c{key[1]}"] = {
            "median": float(np.median(r)),
            "min": min(r),
            "max": max(r),
            "runs": r,
        }
    return out


def round_trip_ms(url: str, n: int = 50) -> float:
    """Median /health latency on one kept-alive connection: the HTTP overhead alone."""
    times = []
    with httpx.Client(timeout=30) as client:
        client.get(f"{url}/health")
        for _ in range(n):
            t0 = time.perf_counter()
            client.get(f"{url}/health")
            times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def check_after(server: ServerProcess, model: EnsembleRewardModel, items: list[dict]) -> float:
    r = httpx.post(f"{server.url}/v1/score", json=items[:16], timeout=60)
    r.raise_for_status()
    got = np.array([x["mean"] for x in r.json()["results"]])
    want = model.score([i["prompt"] for i in items[:16]], [i["response"] for i in items[:16]]).mean
    return float(np.max(np.abs(got - want)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=240, help="requests per cell of 1 item")
    ap.add_argument("--time-cap", type=float, default=60.0)
    ap.add_argument("--ab-pairs", type=int, default=3, help="rejoin on/off pairs at c=8")
    ap.add_argument(
        "--repeats", type=int, default=3, help="runs of each one-item cell at concurrency >= 8"
    )
    args = ap.parse_args()

    pairs, _ = load_hh()
    train, test = split(pairs)
    items = [{"prompt": p.prompt, "response": p.chosen} for p in test]
    items += [{"prompt": p.prompt, "response": p.rejected} for p in test]
    rng = np.random.default_rng(0)
    items = [items[i] for i in rng.permutation(len(items))]
    print(f"{len(items)} HH test items; training the served model on {len(train)} pairs")

    cfg = replace(EnsembleConfig(), train=TrainConfig(seed=0))
    trained = EnsembleRewardModel(cfg, cache_dir=CACHE).fit(train)
    tmp = Path(tempfile.mkdtemp())
    trained.save(tmp / "rm")
    model = EnsembleRewardModel.load(tmp / "rm", use_cache=False)
    model.score(["warm"], ["up"])

    baseline = [in_process(model, items)]
    print(f"in-process: {baseline[0]['items_per_s']:.1f} items/s")

    cells = []
    server = ServerProcess(tmp / "rm")
    try:
        health_ms = round_trip_ms(server.url)
        print(f"/health round trip on a kept-alive connection: {health_ms:.2f} ms (median of 50)")
        for per_request in (1, 16):
            for concurrency in (1, 8, 32):
                n = args.requests if per_request == 1 else 2 * concurrency
                # The target cells run several times: on this shared box one run's
                # ratio moves by +-0.1, so the median of a few is what we report.
                repeats = args.repeats if per_request == 1 and concurrency >= 8 else 1
                # ... each with httpx (a typical Python client) and with a hand-written
                # one whose CPU use is negligible (see RawHTTP: on this 2-core box the
                # client's CPU is taken from the model it is measuring).
                clients = ("httpx", "raw") if repeats > 1 else ("httpx",)
                for repeat in range(repeats):
                    for client in clients:
                        cell = measure_cell(
                            server, items, concurrency, per_request, n, args.time_cap, client
                        )
                        # The same items in-process right after, so slow drift in this
                        # shared machine's speed cancels out of the ratio.
                        served = [items[j % len(items)] for j in range(cell["items"])]
                        cell["in_process_items_per_s"] = in_process(model, served)["items_per_s"]
                        cell["ratio_to_in_process"] = (
                            cell["items_per_s"] / cell["in_process_items_per_s"]
                        )
                        cell["repeat"] = repeat
                        cells.append(cell)
                        print(
                            f"{client:5s} {describe(cell)}; "
                            f"in-process {cell['in_process_items_per_s']:.1f}"
                        )
        server_memory = server.memory_mib()
    finally:
        server.stop()
    # What the rejoin wait buys closed-loop clients: one-item cells at concurrency
    # 8 on fresh servers, alternating wait on / off, so each pair shares the
    # machine's load of the moment (this box is shared and drifts by +-20%).
    pairs = []
    for _ in range(args.ab_pairs):
        pair = {}
        for wait in ("50", "0"):
            server = ServerProcess(tmp / "rm", "--rejoin-wait-ms", wait)
            try:
                cell = measure_cell(server, items, 8, 1, args.requests, args.time_cap)
            finally:
                server.stop()
            pair["on" if wait != "0" else "off"] = cell
        pair["on_over_off"] = pair["on"]["items_per_s"] / pair["off"]["items_per_s"]
        pairs.append(pair)
        print(
            f"rejoin wait on / off at c=8: {pair['on']['items_per_s']:.1f} / "
            f"{pair['off']['items_per_s']:.1f} items/s (mean batch {pair['on']['mean_batch']:.1f}"
            f" / {pair['off']['mean_batch']:.1f}) = {pair['on_over_off']:.2f}"
        )
    baseline.append(in_process(model, items))
    base = float(np.mean([b["items_per_s"] for b in baseline]))
    print(f"in-process (after): {baseline[1]['items_per_s']:.1f} items/s; mean {base:.1f}")

    server = ServerProcess(tmp / "rm", "--max-queue", "256", "--max-items", "64")
    try:
        over = asyncio.run(overload(server, items, clients=128, requests=384))
        over["max_abs_diff_after"] = check_after(server, model, items)
    finally:
        server.stop()
    b = over["burst"]
    print(
        f"overload: statuses {b['statuses']}, accepted p99 {b['p99_ms']:.0f} ms, "
        f"peak RSS {over['peak_rss_mib']:.0f} MiB (before {over['rss_before_mib']:.0f}), "
        f"/health p99 {over['health_p99_ms']:.0f} ms, diff after {over['max_abs_diff_after']:.1e}"
    )

    result = {
        "benchmark": "serve_load",
        "version": __version__,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
        "model": "MiniLM dual pooling, K=5 linear heads, HH harmless train split (seed 0)",
        "items": len(items),
        "in_process": baseline,
        "in_process_items_per_s": base,
        "health_round_trip_ms": health_ms,
        "served": cells,
        "one_item_ratio": ratio_summary(cells),
        "rejoin_ab_c8": pairs,
        "rejoin_on_over_off_median": float(np.median([p["on_over_off"] for p in pairs]))
        if pairs
        else None,
        "server_memory_after_load_mib": server_memory,
        "overload": over,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve_load.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        "\n| client | concurrency | items/request | items/s | in-process items/s | p50 ms "
        "| p99 ms | mean batch | scorer busy | served / in-process |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in cells:
        print(
            f"| {c['client']} | {c['concurrency']} | {c['items_per_request']} | "
            f"{c['items_per_s']:.1f} | {c['in_process_items_per_s']:.1f} | "
            f"{c['p50_ms']:.0f} | {c['p99_ms']:.0f} | "
            f"{c['mean_batch']:.1f} | {c['scorer_utilisation']:.0%} | "
            f"{c['ratio_to_in_process']:.2f} |"
        )
    for key, r in result["one_item_ratio"].items():
        print(
            f"one item per request, {key}: median {r['median']:.3f} ({r['min']:.2f}-{r['max']:.2f})"
        )


if __name__ == "__main__":
    main()
