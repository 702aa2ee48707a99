"""Progress for logs: the line format, the timing rule, and `rewardhedge train` writing to a file."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rewardhedge.progress_log import (
    LOG_EVERY_ENV,
    LogProgress,
    eta_seconds,
    format_duration,
    format_line,
    format_rate,
    log_every_s,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_eta_and_line_known_answer() -> None:
    # 120 of 460 steps in 291 s: 291 / 120 × 340 = 824.5 s left.
    assert eta_seconds(291.0, 120, 460) == pytest.approx(824.5)
    assert eta_seconds(5.0, 0, 460) is None
    assert eta_seconds(10.0, 5, 5) == 0.0
    assert format_duration(291) == "4:51"
    assert format_duration(3723) == "1:02:03"
    line = format_line(
        "finetune",
        120,
        460,
        291.0,
        noun="step",
        fields=[format_rate(3.4, "pairs"), "loss 0.612"],
        eta=eta_seconds(291.0, 120, 460),
    )
    assert (
        line == "finetune: step 120/460 (26%) | 3.4 pairs/s | loss 0.612 | elapsed 4:51 | ETA 13:44"
    )
    assert format_rate(0.08, "epochs") == "12.5 s/epoch"
    assert format_line("x", 3, 5, 1.0, finished=True).endswith("| elapsed 0:01 | done")
    assert format_line("x", 3, None, 1.0) == "x: 3 | elapsed 0:01"


def test_lines_come_first_every_interval_and_at_the_end() -> None:
    clock, out = FakeClock(), io.StringIO()
    log = LogProgress("encode", total=100, unit="texts", every_s=30, stream=out, clock=clock)
    for _ in range(100):
        clock.now += 1.0
        log.advance(1)
    log.close()
    lines = out.getvalue().splitlines()
    # first (t=1), then as soon as the next update (1 s away) would come 30 s after the
    # last line: t=30, 59, 88; then the end (t=100); close adds nothing more
    assert [line.split(":")[1].split("|")[0].strip() for line in lines] == [
        "1/100 (1%)",
        "30/100 (30%)",
        "59/100 (59%)",
        "88/100 (88%)",
        "100/100 (100%)",
    ]
    assert lines[1] == "encode: 30/100 (30%) | 1.0 texts/s | elapsed 0:30 | ETA 1:10"
    assert lines[-1] == "encode: 100/100 (100%) | 1.0 texts/s | elapsed 1:40 | done"


def test_slow_steps_still_get_a_line_at_least_every_interval() -> None:
    """Steps of 7 s: a line waits for no step that would end past the 30 s mark."""
    clock, out = FakeClock(), io.StringIO()
    stamps = []
    log = LogProgress("ft", total=60, noun="step", every_s=30, stream=out, clock=clock)
    for _ in range(60):
        clock.now += 7.0
        before = out.getvalue().count("\n")
        log.advance(1)
        if out.getvalue().count("\n") > before:
            stamps.append(clock.now)
    gaps = np.diff(stamps)
    assert gaps.max() <= 30.0
    assert gaps[:-1].min() >= 21.0  # not every step either (the last line is the end's)
    assert stamps[0] == 7.0 and stamps[-1] == 420.0


def test_restart_measures_the_pace_after_a_resume_and_close_ends_early_stops() -> None:
    clock, out = FakeClock(), io.StringIO()
    log = LogProgress("ft", noun="step", every_s=0, stream=out, clock=clock)
    clock.now = 50.0  # loading, then resuming at step 40 of 100
    log.restart(41)
    log.update(41, 100, "loss 0.7")
    clock.now = 60.0
    log.update(51, 100, "loss 0.6")  # 10 steps in 10 s: 49 s left
    log.close()  # stopped before the end
    lines = out.getvalue().splitlines()
    assert lines[0] == "ft: step 41/100 (41%) | loss 0.7 | elapsed 0:50 | ETA ?"
    assert lines[1] == "ft: step 51/100 (51%) | loss 0.6 | elapsed 1:00 | ETA 0:49"
    assert lines[2] == "ft: step 51/100 (51%) | loss 0.6 | elapsed 1:00 | done"


def test_disabled_prints_nothing_and_bad_env_values_fall_back(monkeypatch) -> None:
    out = io.StringIO()
    log = LogProgress("x", total=2, enabled=False, every_s=0, stream=out)
    log.advance(1)
    log.advance(1)
    log.close()
    assert out.getvalue() == ""
    for value, expected in (("0", 0.0), ("2.5", 2.5), ("-1", 30.0), ("soon", 30.0), ("nan", 30.0)):
        monkeypatch.setenv(LOG_EVERY_ENV, value)
        assert log_every_s() == expected
    monkeypatch.delenv(LOG_EVERY_ENV)
    assert log_every_s() == 30.0


LINE = re.compile(r"^train K=2 linear ensemble: epoch (\d+)/(\d+) \(\d+%\) \| (.*)$")


def _train_to_file(tmp_path: Path, pair_factory, every: str | None) -> list[str]:
    """``rewardhedge train`` (hashing encoder) in a subprocess, stdout and stderr to a file."""
    data = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pair_factory(60)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {k: v for k, v in os.environ.items() if k != LOG_EVERY_ENV}
    if every is not None:
        env[LOG_EVERY_ENV] = every
    log = tmp_path / "train.log"
    args = ["train", "--data", str(data), "--out", str(tmp_path / "rm"), "--members", "2"]
    args += ["--encoder", "hashing", "--epochs", "6", "--patience", "100"]
    with log.open("w") as f:
        cmd = [sys.executable, "-m", "rewardhedge", *args]
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=300)
    text = log.read_text()
    assert r.returncode == 0, text
    return text.splitlines()


def test_train_to_a_file_logs_epochs_with_loss_rate_and_eta(tmp_path, pair_factory) -> None:
    lines = _train_to_file(tmp_path, pair_factory, every="0")
    epochs = [(m.group(1), m.group(3)) for m in map(LINE.match, lines) if m]
    assert [e for e, _ in epochs] == ["1", "2", "3", "4", "5", "6"]
    for _, rest in epochs[1:-1]:  # every line before the end: rate, loss, elapsed, ETA
        assert re.search(r"(epochs/s|s/epoch) \| loss \d\.\d+ \| val \d", rest), rest
        assert re.search(r"\| elapsed \d+:\d\d \| ETA \d+:\d\d$", rest), rest
    assert epochs[-1][1].endswith("| done")
    end = lines.index(next(line for line in lines if line.startswith("Fitted in")))
    assert lines.index(next(line for line in lines if LINE.match(line))) < end
    assert any(line.startswith("calibrate (cross-fit): fold 5/5 (100%)") for line in lines)
    assert not any("━" in line for line in lines)  # no rich bar in a file


def test_a_fast_run_with_the_default_interval_logs_first_and_last_only(
    tmp_path, pair_factory
) -> None:
    lines = _train_to_file(tmp_path, pair_factory, every=None)
    epochs = [m.group(1) for m in map(LINE.match, lines) if m]
    assert epochs == ["1", "6"]
    folds = [line.split("|")[0] for line in lines if line.startswith("calibrate")]
    assert folds == [
        "calibrate (cross-fit): fold 1/5 (20%) ",
        "calibrate (cross-fit): fold 5/5 (100%) ",
    ]
