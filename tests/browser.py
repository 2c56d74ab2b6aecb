"""Headless Chromium for the tests of pages: the documentation site, the atlas.

One browser process is driven through the DevTools protocol over a pipe (``--remote-debugging-
pipe``: JSON messages ending in a NUL byte on file descriptors 3 and 4). Tests wait, in real
time, until a page shows what it should, and read what its console said.
"""

from __future__ import annotations

import base64
import io
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: seconds a page may take to show what a test waits for (the machine may be busy)
PATIENCE = 30


class Browser:
    """Headless Chromium spoken to through the DevTools protocol on a pipe; it keeps every
    event it is sent, so a test can read the console afterwards."""

    def __init__(self, profile: Path) -> None:
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()

        def on_fds_3_and_4() -> None:  # in the child: Chromium reads fd 3, writes fd 4
            os.dup2(commands_read, 3)
            os.dup2(replies_write, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
        flags += ["--disable-background-networking", "--disable-component-update"]
        flags += ["--hide-scrollbars", "--force-color-profile=srgb"]
        self.process = subprocess.Popen(
            [CHROMIUM, *flags, f"--user-data-dir={profile}", "--remote-debugging-pipe"],
            preexec_fn=on_fds_3_and_4,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + PATIENCE
        while True:  # replies and events arrive in one stream: keep events, return our reply
            while b"\0" not in self._buffer:
                if not select.select([self._replies], [], [], deadline - time.monotonic())[0]:
                    raise TimeoutError(f"Chromium did not answer {method}")
                chunk = os.read(self._replies, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe during {method}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if "method" in reply:
                self.events.append(reply)
            elif reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def open(
        self, where: str | Path, fragment: str = "", width: int = 1280, height: int = 900
    ) -> str:
        """A new tab, ``width`` x ``height`` CSS pixels, showing ``where`` (an address, or a file's
        path) once it and its images have loaded; returns its session. Console and log are
        recorded from the start."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable", session=session)
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self.send("Emulation.setDeviceMetricsOverride", metrics, session)
        url = where.as_uri() if isinstance(where, Path) else where
        self.send("Page.navigate", {"url": url + fragment}, session)
        self.wait_for(
            session,
            "document.readyState === 'complete' && [...document.images].every(i => i.complete)",
        )
        return session

    def evaluate(self, session: str, expression: str) -> Any:
        reply = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session
        )
        assert "exceptionDetails" not in reply, reply["exceptionDetails"]
        return reply["result"].get("value")

    def wait_for(self, session: str, expression: str) -> Any:
        """The value of the JavaScript ``expression`` once it is truthy (polled)."""
        deadline = time.monotonic() + PATIENCE
        while not (value := self.evaluate(session, expression)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page never showed {expression}")
            time.sleep(0.05)
        return value

    def complaints(self, session: str) -> list[dict]:
        """Every uncaught exception, console error or warning and logged error of a tab."""
        return [
            event
            for event in self.events
            if event.get("sessionId") == session
            and (
                event["method"] == "Runtime.exceptionThrown"
                or (
                    event["method"] == "Runtime.consoleAPICalled"
                    and event["params"]["type"] in ("error", "warning", "assert")
                )
                or (
                    event["method"] == "Log.entryAdded"
                    and event["params"]["entry"]["level"] in ("error", "warning")
                )
            )
        ]

    def screenshot(self, session: str) -> np.ndarray:
        """What the tab shows, as an ``(H, W, 3)`` uint8 array."""
        from PIL import Image

        data = self.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))

    def close(self) -> None:
        try:
            self.send("Browser.close")
        finally:
            self.process.wait(timeout=PATIENCE)
            os.close(self._commands)
            os.close(self._replies)
