"""Load a report.html in real headless Chromium; count console and page errors; screenshot it.

Usage::

    python bench/report_check.py path/to/report.html [--screenshot out.png]

Talks to Chromium over the DevTools protocol on ``--remote-debugging-pipe``
(file descriptors 3 and 4, NUL-separated JSON), so it needs no Python
package beyond the standard library. It opens the file, waits for the load
event and for the page to settle, then collects:

- console errors: ``console.error``/``console.assert`` calls and browser log
  entries of level ``error`` (failed resource loads, CSP violations, ...);
- page errors: uncaught exceptions;
- external requests: any request for a URL that is not ``file:``, ``data:``,
  ``blob:`` or ``about:`` (a self-contained report makes none);

and saves a full-page PNG screenshot (default: next to the report, same name
with ``.png``). It prints one JSON summary and exits 0 if there were no
console errors, page errors or external requests, 1 if there were, and 2 if
the check itself could not run (no Chromium, no such file, timeout).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")
MAX_HEIGHT = 30000  # px; Chromium's screenshot surface has limits


class CheckError(Exception):
    """The check could not run (as opposed to: it ran and found errors)."""


class Pipe:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, proc: subprocess.Popen[bytes], write_fd: int, read_fd: int) -> None:
        self.proc = proc
        self.write_fd = write_fd
        self.read_fd = read_fd
        self.next_id = 0
        self.replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.closed = False
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self.read_fd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self.cond:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self.replies[msg["id"]] = msg
                    else:
                        msg["_t"] = time.monotonic()
                        self.events.append(msg)
                self.cond.notify_all()

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Send one command and wait for its reply; raise CheckError on a protocol error."""
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            os.write(self.write_fd, json.dumps(msg).encode() + b"\0")
        except OSError as exc:
            raise CheckError(f"{method}: Chromium is not running ({exc})") from exc
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.next_id not in self.replies:
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    why = "Chromium closed the pipe" if self.closed else f"no reply in {timeout}s"
                    raise CheckError(f"{method}: {why}")
                self.cond.wait(left)
            reply = self.replies.pop(self.next_id)
        if "error" in reply:
            raise CheckError(f"{method}: {reply['error'].get('message', reply['error'])}")
        return reply.get("result", {})

    def wait_for(self, method: str, session: str, timeout: float) -> bool:
        """Wait until an event ``method`` of ``session`` has arrived."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if any(
                    e.get("method") == method and e.get("sessionId") == session for e in self.events
                ):
                    return True
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    return False
                self.cond.wait(left)

    def settle(self, quiet: float = 0.25, timeout: float = 3.0) -> None:
        """Wait until no event has arrived for ``quiet`` seconds (at most ``timeout``)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.cond:
                last = self.events[-1]["_t"] if self.events else 0.0
            if time.monotonic() - last >= quiet:
                return
            time.sleep(0.05)


def _launch(chromium: str, profile: str, width: int, stderr_path: Path) -> tuple[Any, Pipe]:
    # Chromium reads commands on fd 3 and writes replies on fd 4. Put our pipe
    # ends on high fds first so the dup2 calls in the child cannot clobber them.
    cmd_r, cmd_w = os.pipe()
    res_r, res_w = os.pipe()
    child_in = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
    child_out = fcntl.fcntl(res_w, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(cmd_r)
    os.close(res_w)

    def _fds() -> None:  # runs in the child, before exec
        os.dup2(child_in, 3)
        os.dup2(child_out, 4)

    args = [chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900"]
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(  # close_fds=False keeps the inheritable fds 3 and 4
            [*args, "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            preexec_fn=_fds,
            close_fds=False,
        )
    os.close(child_in)
    os.close(child_out)
    return proc, Pipe(proc, cmd_w, res_r)


def _text_of(args: list[dict[str, Any]]) -> str:
    parts = []
    for a in args:
        if "value" in a:
            parts.append(str(a["value"]))
        else:
            parts.append(str(a.get("description", a.get("type", "?"))))
    return " ".join(parts)


def _classify(events: list[dict[str, Any]], session: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"console": [], "page": [], "warnings": [], "external": []}
    for e in events:
        if e.get("sessionId") != session:
            continue
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = _text_of(p.get("args", []))
            if p.get("type") in ("error", "assert"):
                out["console"].append(f"console.{p['type']}: {text}")
            elif p.get("type") == "warning":
                out["warnings"].append(f"console.warn: {text}")
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            desc = d.get("exception", {}).get("description") or d.get("text", "?")
            out["page"].append(f"uncaught: {desc} (line {d.get('lineNumber', '?')})")
        elif method == "Log.entryAdded":
            entry = p.get("entry", {})
            text = f"{entry.get('source', '?')}: {entry.get('text', '')} {entry.get('url', '')}"
            if entry.get("level") == "error":
                out["console"].append(text.strip())
            elif entry.get("level") == "warning":
                out["warnings"].append(text.strip())
        elif method == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not url.startswith(LOCAL_SCHEMES):
                out["external"].append(url)
    return out


def check(
    report: Path,
    screenshot: Path,
    *,
    chromium: str = CHROMIUM,
    width: int = 1280,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Load ``report`` in headless Chromium and return the summary dict."""
    if not report.is_file():
        raise CheckError(f"{report}: no such file")
    if not (shutil.which(chromium) or os.access(chromium, os.X_OK)):
        raise CheckError(f"{chromium}: Chromium not found or not executable")
    profile = tempfile.mkdtemp(prefix="rh-chromium-")
    stderr_path = Path(profile) / "chromium-stderr.log"
    proc, pipe = None, None
    try:
        proc, pipe = _launch(chromium, profile, width, stderr_path)
        version = pipe.send("Browser.getVersion", timeout=timeout).get("product", "?")
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.send(f"{domain}.enable", session=session)
        metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
        pipe.send("Emulation.setDeviceMetricsOverride", metrics, session=session)
        nav = pipe.send("Page.navigate", {"url": report.resolve().as_uri()}, session=session)
        if nav.get("errorText"):
            raise CheckError(f"navigation failed: {nav['errorText']}")
        if not pipe.wait_for("Page.loadEventFired", session, timeout):
            raise CheckError(f"the page did not finish loading in {timeout}s")
        pipe.send(
            "Runtime.evaluate",
            {"expression": "document.fonts.ready.then(() => true)", "awaitPromise": True},
            session=session,
        )
        pipe.settle()
        layout = pipe.send("Page.getLayoutMetrics", session=session)
        size = layout.get("cssContentSize") or layout.get("contentSize", {})
        page_w, page_h = int(size.get("width", width)), int(size.get("height", 900))
        shot_h = min(max(page_h, 1), MAX_HEIGHT)
        metrics = {"width": width, "height": shot_h, "deviceScaleFactor": 1, "mobile": False}
        pipe.send("Emulation.setDeviceMetricsOverride", metrics, session=session)
        pipe.settle(quiet=0.1, timeout=1.0)
        svgs = pipe.send(
            "Runtime.evaluate",
            {"expression": "document.querySelectorAll('svg').length", "returnByValue": True},
            session=session,
        )["result"].get("value")
        png = pipe.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "fromSurface": True},
            session=session,
            timeout=timeout,
        )["data"]
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(png))
        found = _classify(pipe.events, session)
        with contextlib.suppress(CheckError):
            pipe.send("Browser.close", timeout=5)
    except CheckError as exc:
        tail = ""
        if stderr_path.exists():
            tail = stderr_path.read_text(errors="replace")[-1500:]
        raise CheckError(f"{exc}\n--- chromium stderr (tail) ---\n{tail}" if tail else exc) from exc
    finally:
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if pipe is not None:
            with contextlib.suppress(OSError):
                os.close(pipe.write_fd)
            pipe.reader.join(timeout=2)
            with contextlib.suppress(OSError):
                os.close(pipe.read_fd)
        shutil.rmtree(profile, ignore_errors=True)
    ok = not (found["console"] or found["page"] or found["external"])
    return {
        "ok": ok,
        "report": str(report),
        "console_errors": len(found["console"]),
        "page_errors": len(found["page"]),
        "external_requests": len(found["external"]),
        "console_warnings": len(found["warnings"]),
        "messages": (found["console"] + found["page"] + found["external"])[:20],
        "file_bytes": report.stat().st_size,
        "page_width_px": page_w,
        "page_height_px": page_h,
        "svg_count": svgs,
        "screenshot": str(screenshot),
        "screenshot_bytes": screenshot.stat().st_size,
        "screenshot_truncated": page_h > MAX_HEIGHT,
        "browser": version,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the report.html to load")
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        help="PNG to write (default: the report's path with .png)",
    )
    parser.add_argument("--chromium", default=CHROMIUM, help=f"browser binary ({CHROMIUM})")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in CSS px")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per step")
    args = parser.parse_args(argv)
    shot = args.screenshot or args.report.with_suffix(".png")
    try:
        summary = check(
            args.report, shot, chromium=args.chromium, width=args.width, timeout=args.timeout
        )
    except CheckError as exc:
        print(json.dumps({"ok": False, "report": str(args.report), "error": str(exc)}, indent=2))
        return 2
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
