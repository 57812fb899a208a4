"""Open a local HTML file in headless Chromium and report what the browser saw: the images and how each one
decoded, the console messages at error level, uncaught exceptions and failed loads.

The browser is driven over the Chrome DevTools Protocol through ``--remote-debugging-pipe`` (JSON messages,
each ended by a NUL byte, on file descriptors 3 (to the browser) and 4 (from it)), so no websocket client and
no network port are needed. Used by ``test_report_browser.py``.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["BrowserError", "PageReport", "chromium_executable", "open_page", "CHROMIUM_FLAGS"]

#: Headless, no sandbox (the tests run as root in CI, and Chromium refuses its sandbox as root), no GPU, and
#: a fresh profile (``--user-data-dir``, added by :func:`open_page`). Then what stops background networking:
#: the flags of chrome-launcher's "flags for tools" list (background networking, component and extension
#: updates, sync, metrics upload, crash reports, domain reliability, phishing checks, default apps, first-run
#: tasks), and features switched off by name (``NetworkTimeServiceQuerying``: the clients2.google.com time
#: query). Those do not stop everything: Chromium 156 still asks update.googleapis.com for the on-device-model
#: manifest component despite ``--disable-component-update``, and accounts.google.com for the signed-in
#: accounts (Debian's wrapper sets Google API keys), as seen with ``--log-net-log``. So, as a guard, every
#: request goes to a proxy on port 9 of the loopback (discard, nothing listens) and every host name resolves
#: to nothing: whatever Chromium still tries fails at once, on the machine. file: and data: URLs are unaffected.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
    "--disable-component-extensions-with-background-pages", "--metrics-recording-only",
    "--disable-domain-reliability", "--disable-breakpad", "--disable-client-side-phishing-detection",
    "--safebrowsing-disable-auto-update",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
    "NetworkTimeServiceQuerying",
    "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
    "--password-store=basic", "--mute-audio", "--hide-scrollbars", "--window-size=1280,1024",
]

#: Evaluated in the loaded page: every <img>, decoded for real (``img.decode()`` rejects with an EncodingError
#: when the data does not decode at all), then drawn onto a canvas and summed per channel (RGBA, straight
#: alpha), so that the pixels the browser produced can be compared with the image file: Chromium renders a
#: truncated or corrupted PNG partially and still reports it decoded.
_INSPECT = """(async () => {
  const images = [];
  for (const img of Array.from(document.images)) {
    let decoded = true, error = null, sums = null;
    try { await img.decode(); } catch (e) { decoded = false; error = String(e); }
    if (decoded && img.naturalWidth > 0 && img.naturalHeight > 0) {
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
      const context = canvas.getContext("2d", {willReadFrequently: true});
      context.drawImage(img, 0, 0);
      const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
      sums = [0, 0, 0, 0];
      for (let i = 0; i < pixels.length; i += 4) {
        sums[0] += pixels[i]; sums[1] += pixels[i + 1]; sums[2] += pixels[i + 2]; sums[3] += pixels[i + 3];
      }
    }
    images.push({alt: img.alt, src: img.currentSrc.slice(0, 40), complete: img.complete,
                 width: img.naturalWidth, height: img.naturalHeight, decoded, error, sums});
  }
  return {readyState: document.readyState, title: document.title, url: location.href,
          bodyText: document.body ? document.body.innerText.length : 0, images};
})()"""


_TRAMPOLINE = """
import fcntl, os, sys
commands, answers = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])  # clear of 3 and 4
os.dup2(commands, 3)
os.dup2(answers, 4)
for fd in {int(sys.argv[1]), int(sys.argv[2]), commands, answers} - {3, 4}:
    os.close(fd)
os.execv(sys.argv[3], sys.argv[3:])
"""


class BrowserError(RuntimeError):
    """Chromium did not start, did not answer, or failed to load the page."""


class PageReport(dict):
    """What :func:`open_page` saw: ``readyState``, ``title``, ``url``, ``images`` (one dict per ``<img>``:
    ``alt``, ``complete``, ``width``, ``height``, ``decoded``, ``error``, ``sums``: the RGBA channel
    sums of the pixels drawn on a canvas), ``problems`` (console errors,
    uncaught exceptions, failed loads, as readable strings) and ``requests`` (every URL the page asked for)."""

    @property
    def images(self) -> list[dict]:
        return self["images"]

    @property
    def problems(self) -> list[str]:
        return self["problems"]

    @property
    def requests(self) -> list[str]:
        return self["requests"]

    def undecoded(self) -> list[dict]:
        return [img for img in self.images
                if not (img["decoded"] and img["complete"] and img["width"] > 0 and img["height"] > 0)]


def chromium_executable() -> str | None:
    """The Chromium on PATH (Debian: ``chromium``; elsewhere often ``chromium-browser``), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Pipe:
    """The DevTools protocol over the two pipes: send commands, collect events, wait for answers."""

    def __init__(self, to_browser: int, from_browser: int, deadline: float):
        self._out, self._in, self._deadline = to_browser, from_browser, deadline
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self) -> dict:
        while b"\0" not in self._buffer:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._in], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed the DevTools pipe (it exited)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result (events that arrive meanwhile are kept in ``events``)."""
        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            request["sessionId"] = session
        data = json.dumps(request).encode() + b"\0"
        while data:
            data = data[os.write(self._out, data):]
        while True:
            message = self._read_message()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise BrowserError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, method: str, session: str | None = None) -> dict:
        """Wait for the next event ``method`` (one already received counts)."""
        for i, event in enumerate(self.events):
            if event["method"] == method and event.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            message = self._read_message()
            if "method" in message:
                if message["method"] == method and message.get("sessionId") == session:
                    return message
                self.events.append(message)


def _problems(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and failed loads among the protocol events, as readable lines."""
    found = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exception = details.get("exception", {})
            text = exception.get("description") or details.get("text", "")
            found.append(f"uncaught exception: {text} ({details.get('url', '')}:{details.get('lineNumber')})")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            found.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"console ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".rstrip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            found.append(f"load failed: {params.get('errorText')} ({params.get('type')})")
    return found


def open_page(path, *, user_data_dir, timeout: float = 60.0) -> PageReport:
    """Load the HTML file ``path`` in a fresh headless Chromium and return a :class:`PageReport`.

    ``user_data_dir`` is an empty folder for the throw-away profile. Raises :class:`BrowserError` when Chromium
    cannot be started, does not answer within ``timeout`` seconds, or the navigation itself fails. The browser
    (and every process it started) is gone when this returns.
    """
    executable = chromium_executable()
    if executable is None:
        raise BrowserError("Chromium is not installed")
    url = Path(path).resolve().as_uri()
    deadline = time.monotonic() + timeout
    # Chromium reads commands from its fd 3 and writes answers to its fd 4.
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    stderr_path = Path(user_data_dir) / "chromium-stderr.txt"
    Path(user_data_dir).mkdir(parents=True, exist_ok=True)

    command = [executable, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe",
               "about:blank"]
    # A small Python trampoline puts the pipe ends on fds 3 and 4 and execs Chromium (Popen's preexec_fn is
    # not safe with threads; dash cannot name fds above 9).
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-S", "-c", _TRAMPOLINE, str(to_browser_r), str(from_browser_w), *command],
            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, pass_fds=(to_browser_r, from_browser_w),
            start_new_session=True)
    os.close(to_browser_r)
    os.close(from_browser_w)
    pipe = _Pipe(to_browser_w, from_browser_r, deadline)
    try:
        try:
            pages = [t for t in pipe.send("Target.getTargets")["targetInfos"] if t["type"] == "page"]
            target = pages[0]["targetId"] if pages else pipe.send("Target.createTarget", {"url": "about:blank"})[
                "targetId"]
            session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.events.clear()                                  # only what the page under test causes counts
            navigation = pipe.send("Page.navigate", {"url": url}, session=session)
            if navigation.get("errorText"):
                raise BrowserError(f"navigation to {url} failed: {navigation['errorText']}")
            while True:              # a late load event of the first about:blank does not count
                pipe.wait_for("Page.loadEventFired", session=session)
                result = pipe.send("Runtime.evaluate", {"expression": _INSPECT, "awaitPromise": True,
                                                        "returnByValue": True}, session=session)
                if "exceptionDetails" in result:
                    raise BrowserError(f"inspecting the page failed: {result['exceptionDetails']}")
                if result["result"]["value"]["url"] != "about:blank":
                    break
            # A last round trip, so that messages the page logged while being inspected have arrived.
            pipe.send("Runtime.evaluate", {"expression": "0"}, session=session)
            report = PageReport(result["result"]["value"])
            report["problems"] = _problems(pipe.events)
            report["requests"] = [e["params"]["request"]["url"] for e in pipe.events
                                  if e["method"] == "Network.requestWillBeSent"]
            try:
                pipe.send("Browser.close")
            except BrowserError:
                pass                                             # it may exit before it answers
        except BrowserError as error:
            log = stderr_path.read_text(errors="replace")[-3000:] if stderr_path.exists() else ""
            raise BrowserError(f"{error}\n--- chromium stderr (tail) ---\n{log}") from None
    finally:
        os.close(to_browser_w)
        os.close(from_browser_r)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)               # the browser's own process group: helpers too
        except ProcessLookupError:
            pass
        process.wait()
    return report
