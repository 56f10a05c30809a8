"""Headless Chromium driven over the Chrome DevTools Protocol: just enough to use a web UI like a person.

Why not Selenium or Playwright: both need an extra Python package (and Playwright its own browser
download, which this project's machines cannot fetch). CDP over a websocket needs only Debian's
``chromium`` and the ``websockets`` package Prefect already depends on. Input is real: clicks are
mouse events at the element's centre, typing is ``Input.insertText`` into the focused field, so
the page's own event handlers (Vue's v-model) see exactly what a person's browser would send.

Every wait is bounded; the browser runs in its own process group with a fresh profile and is
stopped (SIGTERM, then SIGKILL) by :meth:`Chromium.close`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

BROWSER_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--no-default-browser-check",
    "--window-size=1400,1000",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


class CdpError(AssertionError):
    """The browser or the page did not do what the test needed (an assertion failure with context)."""


class Chromium:
    """One headless Chromium with a fresh profile in ``profile_dir``."""

    def __init__(self, binary: str, profile_dir: Path, *, start_timeout_s: float = 60.0) -> None:
        self.profile_dir = profile_dir
        profile_dir.mkdir(parents=True, exist_ok=True)
        (profile_dir / "DevToolsActivePort").unlink(missing_ok=True)  # a stale port from an earlier browser
        self.log_path = profile_dir.parent / "chromium.log"
        argv = [binary, *BROWSER_FLAGS, f"--user-data-dir={profile_dir}", "about:blank"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.port = self._wait_port(start_timeout_s)

    def _wait_port(self, timeout_s: float) -> int:
        marker = self.profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CdpError(f"chromium exited with {self.proc.returncode}; see {self.log_path}")
            with contextlib.suppress(OSError, ValueError, IndexError):
                return int(marker.read_text().splitlines()[0])
            time.sleep(0.2)
        raise CdpError(f"chromium did not open its DevTools port within {timeout_s:.0f} s; see {self.log_path}")

    def _json(self, path: str, method: str = "GET") -> Any:
        import urllib.request

        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def new_page(self) -> Page:
        target = self._json("/json/new?about:blank", method="PUT")
        return Page(target["webSocketDebuggerUrl"])

    def close(self) -> None:
        for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue


class Page:
    """One tab: navigate, evaluate JavaScript, click, type, wait, screenshot."""

    def __init__(self, ws_url: str) -> None:
        self._ws: ClientConnection = connect(ws_url, max_size=None, open_timeout=20)
        self._id = 0
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, params: dict[str, Any] | None = None, *, timeout_s: float = 30.0) -> dict[str, Any]:
        self._id += 1
        msg_id = self._id
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError(f"no answer to {method} within {timeout_s:.0f} s")
            msg = json.loads(self._ws.recv(timeout=left))
            if msg.get("id") != msg_id:
                continue  # an event
            if "error" in msg:
                raise CdpError(f"{method} failed: {msg['error']}")
            return msg.get("result", {})

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def js(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page (promises awaited) and return its JSON value."""
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in res:
            raise CdpError(f"page script failed: {res['exceptionDetails'].get('text')} in {expression[:200]}")
        return res.get("result", {}).get("value")

    def wait_js(self, expression: str, *, timeout_s: float, what: str, interval_s: float = 0.25) -> Any:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.js(expression)
            except CdpError as exc:
                last = str(exc)
            else:
                if last:
                    return last
            time.sleep(interval_s)
        raise CdpError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {str(last)[:300]})")

    def text(self) -> str:
        return str(self.js("document.body ? document.body.innerText : ''"))

    def center_of(self, finder_js: str) -> tuple[float, float] | None:
        """Centre of the element ``finder_js`` returns (scrolled into view), or None if not there."""
        box = self.js(
            f"(() => {{ const el = ({finder_js}); if (!el) return null; el.scrollIntoView({{block: 'center'}});"
            " const r = el.getBoundingClientRect(); if (!r.width || !r.height) return null;"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        return (float(box[0]), float(box[1])) if box else None

    def click(self, finder_js: str, *, what: str, timeout_s: float = 30.0) -> None:
        """A real mouse click (move, press, release) at the centre of the element, once it is there."""
        deadline = time.monotonic() + timeout_s
        point = None
        while point is None:
            point = self.center_of(finder_js)
            if point is None:
                if time.monotonic() > deadline:
                    raise CdpError(f"{what} not found on the page within {timeout_s:.0f} s")
                time.sleep(0.25)
        x, y = point
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def type_into(self, finder_js: str, text: str, *, what: str) -> None:
        """Click the field, select what it holds, and type ``text`` over it."""
        self.click(finder_js, what=what)
        self.js(f"(() => {{ const el = ({finder_js}); el.focus(); el.select && el.select(); }})()")
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ws.close()
