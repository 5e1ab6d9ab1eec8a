"""Opens pages in headless Chromium to check them the way a reader would see them.

Talks the DevTools protocol over --remote-debugging-pipe (JSON messages ending in NUL on file
descriptors 3 and 4), so it needs no open port and no Python package beyond the standard library.

    python scripts/browser.py PAGE.html [SCREENSHOT.png]   # prints what it found, exit 1 on a broken image
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--remote-debugging-pipe",
]
# Every image must have decoded to a real picture; report each one's size and source prefix.
IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => ({
  src: i.currentSrc.slice(0, 40), loaded: i.complete && i.naturalWidth > 0,
  width: i.naturalWidth, height: i.naturalHeight})))"""


@dataclass
class PageReport:
    url: str
    images: list[dict] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)

    @property
    def broken_images(self) -> list[dict]:
        return [i for i in self.images if not i["loaded"]]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


class Chromium:
    def __init__(self, executable: str | None = None, timeout_s: float = 60):
        exe = executable or find_chromium()
        if not exe:
            raise RuntimeError("Chromium not found. Fix: apt-get install chromium (scripts/test does this).")
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="virtlab-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes():  # runs in the child: fd 3 = commands in, fd 4 = replies out
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=wire_pipes,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict] = []

    def close(self) -> None:
        # Asked to close, Chromium removes the /tmp/org.chromium.Chromium.* folder it makes for
        # its singleton socket; killed outright, it leaves one behind per run.
        try:
            self.timeout_s = 5
            self.call("Browser.close")
            self.proc.wait(timeout=5)
        except (OSError, RuntimeError, TimeoutError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe (it crashed or failed to start)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        os.write(self._to_browser, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for_event(self, method: str, session: str) -> dict:
        deadline = time.monotonic() + self.timeout_s
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    def open(self, page: Path, screenshot: Path | None = None, width: int = 1200) -> PageReport:
        """Loads `page`, reports its images and any request leaving the machine, optionally screenshots it."""
        url = page.resolve().as_uri()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session)
        self.call("Network.enable", session)
        self.call("Emulation.setDeviceMetricsOverride", session, width=width, height=900, deviceScaleFactor=1, mobile=False)
        self.events.clear()
        self.call("Page.navigate", session, url=url)
        self.wait_for_event("Page.loadEventFired", session)
        result = self.call("Runtime.evaluate", session, expression=IMAGES_JS, returnByValue=True)
        report = PageReport(url, images=json.loads(result["result"]["value"]))
        report.external_requests = [
            e["params"]["request"]["url"] for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
            and not e["params"]["request"]["url"].startswith(("file:", "data:", "about:"))
        ]
        if screenshot:
            height = self.call("Page.getLayoutMetrics", session)["cssContentSize"]["height"]
            self.call("Emulation.setDeviceMetricsOverride", session, width=width, height=min(int(height), 16000), deviceScaleFactor=1, mobile=False)
            shot = self.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=True)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        self.call("Target.closeTarget", targetId=target)
        return report


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    with Chromium() as browser:
        report = browser.open(Path(argv[0]), Path(argv[1]) if len(argv) > 1 else None)
    print(json.dumps({"images": report.images, "external_requests": report.external_requests}, indent=1))
    return 1 if report.broken_images or report.external_requests else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
