"""A real ``rewardhedge train`` killed with SIGKILL while it encodes, then while it fits:
no partial model is left behind, and the rerun keeps what the docs promise (the encode
chunks written before the kill are read back, not encoded again).

The other stages have their own kill tests: a fine-tuning run killed mid-way resumes from
its checkpoint to the same weights (tests/train/test_resume_after_kill.py), and a save
crashed at every one of its steps leaves the old or the new model loadable
(tests/models/test_folder_safety.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _pairs(path: Path, n: int) -> Path:
    rows = [
        {"prompt": f"question {i} about topic {i % 17}", "chosen": f"a good helpful answer {i}",
         "rejected": f"a bad answer {i}"}
        for i in range(n)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _train(data: Path, out: Path, cache: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "REWARDHEDGE_LOG_EVERY_S": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "rewardhedge", "train", "--data", str(data), "--out", str(out),
         "--cache-dir", str(cache), "--members", "2", "--calibration-folds", "0"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"), env=env,
    )  # fmt: skip


def _wait_for(cond, proc: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"train ended (code {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _encoded(log: Path) -> list[tuple[int, int]]:
    """``(done, total)`` of every encoding progress line: ``total`` is what was not cached."""
    return [
        (int(a), int(b)) for a, b in re.findall(r"encoding \(.*?\): (\d+)/(\d+)", log.read_text())
    ]


def test_a_kill_while_encoding_keeps_the_finished_chunks_and_leaves_no_model(tmp_path: Path):
    # 1,400 items: encoded in chunks, the first of 256; the rerun's misses are still more than
    # 512, so both runs count progress in items (a short encode counts passes instead)
    data = _pairs(tmp_path / "pairs.jsonl", 700)
    out, cache = tmp_path / "rm", tmp_path / "cache"
    first = _train(data, out, cache, tmp_path / "first.log")
    shards = lambda: list(cache.rglob("*.safetensors")) + list(cache.rglob("*.npy"))  # noqa: E731
    _wait_for(lambda: bool(shards()), first, "the first encode chunk")
    _kill(first)
    kept = len(shards())
    assert kept >= 1 and not out.exists(), "a killed encode left a model folder"

    rerun = _train(data, out, cache, tmp_path / "rerun.log")
    assert rerun.wait(timeout=600) == 0, (tmp_path / "rerun.log").read_text()[-2000:]
    before = max(total for _, total in _encoded(tmp_path / "first.log"))
    totals = [total for _, total in _encoded(tmp_path / "rerun.log")]
    assert totals and max(totals) <= before - 256, (before, totals)  # the first chunk was kept
    assert (out / "manifest.json").is_file()


def test_a_kill_while_fitting_leaves_no_model_and_the_rerun_encodes_nothing(tmp_path: Path):
    data = _pairs(tmp_path / "pairs.jsonl", 120)
    out, cache = tmp_path / "rm", tmp_path / "cache"
    first = _train(data, out, cache, tmp_path / "first.log")
    fitting = lambda: "epoch" in (tmp_path / "first.log").read_text()  # noqa: E731
    _wait_for(fitting, first, "the first training epoch")
    _kill(first)
    assert not out.exists() and not list(tmp_path.glob(".rm.*")), "a killed fit left files"

    rerun = _train(data, out, cache, tmp_path / "rerun.log")
    assert rerun.wait(timeout=600) == 0, (tmp_path / "rerun.log").read_text()[-2000:]
    assert not _encoded(tmp_path / "rerun.log"), "the rerun encoded texts the cache holds"
    assert (out / "manifest.json").is_file()
