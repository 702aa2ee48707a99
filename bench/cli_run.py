"""Run the real `rewardhedge` command line in a subprocess, output to a log, timed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def run_cli(args: list[str], log: Path) -> float:
    """Wall seconds of ``rewardhedge ARGS`` (stdout and stderr to ``log``); exits with the
    log's tail when the command fails."""
    t0 = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run([sys.executable, "-m", "rewardhedge", *args], stdout=f, stderr=f)
    if proc.returncode:
        sys.exit(f"rewardhedge {' '.join(args[:2])} failed:\n{log.read_text()[-3000:]}")
    return time.perf_counter() - t0
