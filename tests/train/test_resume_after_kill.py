"""A fine-tuning process killed with SIGKILL resumes from its checkpoint to the exact weights
of a run that was never stopped (real subprocesses, a tiny Qwen2, dropout on)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rewardhedge.types import PreferencePair

SCRIPT = """
import json
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)

from rewardhedge.config_finetune import FinetuneConfig
from rewardhedge.estimators.finetuned import FinetunedRewardModel
from rewardhedge.types import PreferencePair

backbone, pairs_file, checkpoints, out, pause = sys.argv[1:6]
pairs = [PreferencePair(**row) for row in json.loads(Path(pairs_file).read_text())]
config = FinetuneConfig(
    backbone=backbone,
    ensemble="multihead",
    n_members=2,
    head_dropout=0.2,
    batch_size=4,
    lr=5e-3,
    max_length=48,
    max_steps=30,
    checkpoint_every=2,
    keep_checkpoints=2,
    log_every=1,
    warmup_ratio=0.1,
    seed=3,
)


def on_step(step, total, info):
    print(f"step {step}/{total}", flush=True)
    time.sleep(float(pause))


model = FinetunedRewardModel(config).fit(pairs, checkpoint_dir=checkpoints, on_step=on_step)
model.save(out)
Path(out + ".report.json").write_text(json.dumps(model.report_.to_dict()))
"""

MAX_STEPS = 30
KILL_AFTER = 6
"""Kill once a complete checkpoint past this step exists."""


def done_steps(root: Path) -> list[int]:
    """Steps of the complete (DONE) checkpoints under ``root``."""
    if not root.is_dir():
        return []
    return sorted(
        int(p.name.removeprefix("step-"))
        for p in root.glob("step-*")
        if p.is_dir() and (p / "DONE").is_file()
    )


def launch(
    env: dict[str, str],
    script: Path,
    backbone: Path,
    pairs: Path,
    ckpt: Path,
    out: Path,
    pause: float,
):
    args = [sys.executable, str(script), str(backbone), str(pairs), str(ckpt), str(out), str(pause)]
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(proc: subprocess.Popen, what: str, timeout: float = 90) -> str:
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"{what} did not finish in {timeout} s:\n{output[-3000:]}")
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{output[-3000:]}"
    return output


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(
    tiny_qwen2: Path,
    synthetic_pairs: Callable[..., list[PreferencePair]],
    subprocess_env: dict[str, str],
    tmp_path: Path,
) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    pairs_file = tmp_path / "pairs.json"
    rows = [
        {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
        for p in synthetic_pairs(22, seed=11, max_filler=4)  # 6 batches of 4 (the last of 2)
    ]
    pairs_file.write_text(json.dumps(rows))
    killed_ckpt, fresh_ckpt = tmp_path / "ckpt-killed", tmp_path / "ckpt-fresh"
    resumed_out, fresh_out = tmp_path / "resumed", tmp_path / "fresh"

    # The uninterrupted reference runs beside the run that will be killed.
    fresh = launch(subprocess_env, script, tiny_qwen2, pairs_file, fresh_ckpt, fresh_out, pause=0.0)
    victim = launch(
        subprocess_env, script, tiny_qwen2, pairs_file, killed_ckpt, tmp_path / "never", pause=0.2
    )
    try:
        deadline = time.monotonic() + 60
        while not any(s > KILL_AFTER for s in done_steps(killed_ckpt)):
            if victim.poll() is not None:
                pytest.fail(f"the run ended before it was killed:\n{victim.stdout.read()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint past step 6 within 60 s")
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    victim.stdout.close()
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "never").exists()
    at_kill = done_steps(killed_ckpt)
    assert at_kill and max(at_kill) < MAX_STEPS, at_kill

    resumed = launch(
        subprocess_env, script, tiny_qwen2, pairs_file, killed_ckpt, resumed_out, pause=0.0
    )
    finish(resumed, "the resumed run")
    finish(fresh, "the uninterrupted run")

    report = json.loads(Path(f"{resumed_out}.report.json").read_text())
    reference = json.loads(Path(f"{fresh_out}.report.json").read_text())
    assert report["resumed_from_step"] == max(at_kill) > KILL_AFTER
    assert reference["resumed_from_step"] == 0
    assert report["steps"] == reference["steps"] == MAX_STEPS
    # The loss history runs on unbroken across the kill, value for value.
    assert [h["step"] for h in report["history"]] == list(range(1, MAX_STEPS + 1))
    assert report["history"] == reference["history"]

    a = load_file(str(resumed_out / "weights.safetensors"))
    b = load_file(str(fresh_out / "weights.safetensors"))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == []
