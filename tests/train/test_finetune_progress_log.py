"""`rewardhedge finetune` with its output in a file: plain step lines, not a silent bar."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("accelerate")

STEP = re.compile(r"^finetune single K=1: step (\d+)/12 \(\d+%\) \| (.*)$")


@pytest.mark.slow
def test_finetune_to_a_file_logs_steps_with_rate_loss_and_eta(
    tiny_qwen2: Path, synthetic_pairs, subprocess_env, tmp_path: Path
) -> None:
    data = tmp_path / "train.jsonl"
    rows = [
        {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
        for p in synthetic_pairs(48)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "cfg.json").write_text(json.dumps({"log_every": 1}))  # a loss on every step
    args = ["finetune", "--backbone", str(tiny_qwen2), "--data", str(data)]
    args += ["--out", str(tmp_path / "rm"), "--config", str(tmp_path / "cfg.json")]
    args += ["--batch-size", "8", "--epochs", "2", "--max-length", "64"]
    log = tmp_path / "finetune.log"
    with log.open("w") as f:
        cmd = [sys.executable, "-m", "rewardhedge", *args]
        env = subprocess_env | {"REWARDHEDGE_LOG_EVERY_S": "0"}
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=300)
    lines = log.read_text().splitlines()
    assert r.returncode == 0, "\n".join(lines)
    steps = [(int(m.group(1)), m.group(2), i) for i, m in enumerate(map(STEP.match, lines)) if m]
    assert [s for s, _, _ in steps] == list(range(1, 13))
    for _, rest, _ in steps[1:-1]:  # before the end: rate, loss, elapsed, ETA
        assert re.search(r"^[\d,.]+ pairs/s \| [\d,]+ tok/s \| loss \d\.\d{4} \|", rest), rest
        assert re.search(r"\| elapsed \d+:\d\d \| ETA \d+:\d\d$", rest), rest
    assert steps[0][1].endswith("ETA ?") and steps[-1][1].endswith("| done")
    trained = next(i for i, line in enumerate(lines) if line.startswith("Trained 12 steps"))
    assert steps[-1][2] < trained
