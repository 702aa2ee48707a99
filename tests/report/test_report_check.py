"""bench/report_check.py: the rendered report loads in real headless Chromium without errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHECK = Path(__file__).resolve().parents[2] / "bench" / "report_check.py"

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"{CHROMIUM} is not installed (apt-get install chromium) - the browser check "
    "needs a real Chromium",
)


def run_check(report: Path, shot: Path) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, str(CHECK), str(report), "--screenshot", str(shot)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, json.loads(proc.stdout)


def test_rendered_report_loads_cleanly(lab_report, tmp_path):
    report = lab_report[0]
    rc, summary = run_check(report, tmp_path / "shot.png")
    assert rc == 0, summary
    assert summary["ok"] is True
    assert summary["console_errors"] == summary["page_errors"] == 0
    assert summary["external_requests"] == 0
    assert summary["svg_count"] == 4
    assert summary["file_bytes"] == report.stat().st_size
    assert summary["page_width_px"] == 1280 and summary["page_height_px"] > 2000
    shot = Path(summary["screenshot"])
    assert shot == tmp_path / "shot.png"
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # IHDR: the screenshot covers the whole page, not just the first viewport.
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1280, summary["page_height_px"])


def test_errors_are_detected_and_fail_the_check(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><title>bad</title></head><body><p>hi</p>"
        '<img src="http://127.0.0.1:9/x.png" alt="">'
        "<script>console.error('boom'); undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    rc, summary = run_check(bad, tmp_path / "bad.png")
    assert rc == 1
    assert summary["ok"] is False
    assert summary["page_errors"] == 1
    assert summary["external_requests"] == 1
    # console.error('boom') plus the failed image load.
    assert summary["console_errors"] >= 1
    assert any("boom" in m for m in summary["messages"])
    assert any("undefinedFunction" in m for m in summary["messages"])
    assert (tmp_path / "bad.png").is_file()


def test_missing_file_is_a_usage_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(CHECK), str(tmp_path / "nope.html")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"].endswith("nope.html: no such file")


def test_a_browser_that_does_not_start_is_a_usage_error(tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<!DOCTYPE html><title>t</title>", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(CHECK), str(page), "--chromium", "/bin/false"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Browser.getVersion: Chromium" in json.loads(proc.stdout)["error"]
