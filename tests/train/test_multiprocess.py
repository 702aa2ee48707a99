"""Two training processes on the CPU (torchrun + Accelerate's gloo backend): the data is
split between them, and a run stopped after a checkpoint resumes to the weights of a run
that was never stopped, each process with its own dropout draws restored.

The backbone is the tiny BERT, whose dropout draws as many numbers as its batch has
tokens: the two processes get batches of different widths, so their RNG states part
after the first step and the main process's state alone would not resume the other."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rewardhedge.types import PreferencePair

SCRIPT = """
import json
import os
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

from rewardhedge.config_finetune import FinetuneConfig
from rewardhedge.estimators.finetuned import FinetunedRewardModel
from rewardhedge.types import PreferencePair

backbone, pairs_file, checkpoints, out, stop_at = sys.argv[1:6]
pairs = [PreferencePair(**row) for row in json.loads(Path(pairs_file).read_text())]
config = FinetuneConfig(
    backbone=backbone,
    ensemble="multihead",
    n_members=2,
    head_dropout=0.3,
    batch_size=4,
    lr=5e-3,
    max_length=48,
    max_steps=8,
    checkpoint_every=2,
    log_every=1,
    warmup_ratio=0.1,
    seed=5,
)


def on_step(step, total, info):
    if step == int(stop_at):  # every process stops here, after the step's checkpoint
        os._exit(0)


model = FinetunedRewardModel(config).fit(pairs, checkpoint_dir=checkpoints, on_step=on_step)
if int(os.environ["RANK"]) == 0:
    model.save(out)
    Path(out + ".report.json").write_text(json.dumps(model.report_.to_dict()))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun(env: dict[str, str], script: Path, *args: object, timeout: float = 240) -> str:
    env = {**env, "ACCELERATE_USE_CPU": "true"}  # Accelerate's multi-CPU (gloo) mode
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    cmd += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    proc = subprocess.run(
        [*cmd, str(script), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"torchrun failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_two_processes_split_the_data_and_resume_to_the_same_weights(
    tiny_bert: Path,
    synthetic_pairs: Callable[..., list[PreferencePair]],
    subprocess_env: dict[str, str],
    tmp_path: Path,
) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    pairs_file = tmp_path / "pairs.json"
    rows = [
        {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
        for p in synthetic_pairs(24, seed=12, max_filler=12)  # 6 batches: 3 per process
    ]
    pairs_file.write_text(json.dumps(rows))

    fresh = tmp_path / "fresh"
    torchrun(subprocess_env, script, tiny_bert, pairs_file, tmp_path / "ckpt-fresh", fresh, 0)
    report = json.loads(Path(str(fresh) + ".report.json").read_text())
    assert report["steps"] == 8
    assert report["pairs_seen"] == 8 * 4 * 2  # two processes, four pairs each per step

    stopped = tmp_path / "ckpt-stopped"
    torchrun(subprocess_env, script, tiny_bert, pairs_file, stopped, tmp_path / "never", 4)
    assert not (tmp_path / "never").exists()
    progress = json.loads((stopped / "step-00000004" / "progress.json").read_text())
    assert len(progress["rng_ranks"]) == 2
    resumed = tmp_path / "resumed"
    torchrun(subprocess_env, script, tiny_bert, pairs_file, stopped, resumed, 0)
    assert json.loads(Path(str(resumed) + ".report.json").read_text())["resumed_from_step"] == 4

    want = load_file(fresh / "weights.safetensors")
    got = load_file(resumed / "weights.safetensors")
    assert want.keys() == got.keys()
    for name, tensor in want.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=1e-6, msg=name)
