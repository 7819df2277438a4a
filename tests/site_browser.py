#!/usr/bin/env python3
"""Opens pages of a site built by `dane-survey site` in headless Chromium, as a person would.

Usage: site_browser.py SITE_DIR SCREENSHOT.png PAGE...

Serves SITE_DIR over HTTP on 127.0.0.1 (an ephemeral port, loopback only), starts Debian's
`chromium --headless --no-sandbox` with the DevTools protocol on a loopback port, and drives it
over that protocol (websocket-client, pinned in scripts/test). For every PAGE (a path relative to
the site root) it records:

* console errors and warnings, uncaught exceptions and browser log entries of level error or
  warning (CSP violations and failed resource loads land there);
* failed requests (Network.loadingFailed) and HTTP responses with status >= 400;
* every URL requested (so the caller can check that nothing left the site's origin);
* the DOM: the title, the text of every element with an id, every table by id as rows of cell
  texts, the images with whether they decoded, and whether `nav` is hidden under print media.

A full-page screenshot of the first PAGE is written to SCREENSHOT.png. The result is printed as
one JSON object on stdout; the Rust test asserts on it. Exit status 0 unless the browser could not
be driven at all (a missing chromium is an error, not a skip).
"""

import functools
import http.server
import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import websocket  # websocket-client

TIMEOUT = 60.0

DOM_PROBE = r"""
(() => {
  const text = (e) => (e.innerText || e.textContent || '').trim().replace(/\s+/g, ' ');
  const ids = {};
  for (const e of document.querySelectorAll('[id]')) {
    if (e.tagName !== 'TABLE' && e.tagName !== 'MAIN') ids[e.id] = text(e);
  }
  const tables = {};
  for (const t of document.querySelectorAll('table[id]')) {
    tables[t.id] = {
      caption: t.caption ? text(t.caption) : null,
      head: [...t.querySelectorAll('thead th')].map((c) => [text(c), c.getAttribute('scope')]),
      rows: [...t.tBodies].flatMap((b) => [...b.rows]).map((r) => [...r.cells].map(text)),
      row_headers: [...t.querySelectorAll('tbody th')].map((c) => c.getAttribute('scope')),
    };
  }
  return JSON.stringify({
    title: document.title,
    h1: text(document.querySelector('h1') || document.body),
    ids,
    tables,
    links: [...document.querySelectorAll('a[href]')].map((a) => a.getAttribute('href')),
    images: [...document.images].map((i) => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),
    scripts: document.querySelectorAll('script').length,
    lang: document.documentElement.lang,
  });
})()
"""

PRINT_PROBE = r"""
(() => JSON.stringify({
  nav_display: getComputedStyle(document.querySelector('nav')).display,
}))()
"""


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Browser:
    """One Chromium page driven over the DevTools protocol."""

    def __init__(self):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if not exe:
            sys.exit("site_browser.py: chromium not found (scripts/test installs Debian's chromium)")
        self.profile = tempfile.mkdtemp(prefix="dane-survey-chromium-")
        self.proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-features=Translate,MediaRouter,OptimizationHints",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        port = None
        deadline = time.time() + TIMEOUT
        stderr_lines = []
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                if self.proc.poll() is not None:
                    break
                continue
            stderr_lines.append(line)
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            self.close()
            sys.exit("site_browser.py: chromium did not start:\n" + "".join(stderr_lines))
        # Keep draining stderr so chromium never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
        pages = []
        while time.time() < deadline and not pages:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if not pages:
                time.sleep(0.1)
        self.ws = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=TIMEOUT, suppress_origin=True
        )
        self.next_id = 0
        self.events = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(method)

    def pump(self, until, quiet=0.5):
        """Collect events until `until(event)` was seen and then `quiet` seconds passed with none."""
        seen = False
        deadline = time.time() + TIMEOUT
        last = time.time()
        while time.time() < deadline:
            self.ws.settimeout(0.1)
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                if seen and time.time() - last >= quiet:
                    break
                continue
            finally:
                self.ws.settimeout(TIMEOUT)
            if "method" in msg:
                self.events.append(msg)
                last = time.time()
                if until(msg):
                    seen = True
        else:
            raise TimeoutError("page did not load")

    def evaluate(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluate: {r['exceptionDetails']}")
        return json.loads(r["result"]["value"])

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def visit(b, url):
    b.events = []
    b.call("Emulation.setEmulatedMedia", media="screen")
    b.call("Page.navigate", url=url)
    b.pump(lambda e: e["method"] == "Page.loadEventFired")
    errors, failed, requests = [], [], []
    for e in b.events:
        m, p = e["method"], e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
            errors.append(
                f"console.{p['type']}: "
                + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            )
        elif m == "Runtime.exceptionThrown":
            errors.append(f"exception: {p['exceptionDetails'].get('text')}")
        elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            errors.append(f"log {p['entry']['level']}: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif m == "Network.loadingFailed":
            failed.append(f"{p.get('errorText')} {p.get('blockedReason', '')} (request {p['requestId']})")
        elif m == "Network.responseReceived" and p["response"]["status"] >= 400:
            failed.append(f"HTTP {p['response']['status']} {p['response']['url']}")
        elif m == "Network.requestWillBeSent":
            requests.append(p["request"]["url"])
    dom = b.evaluate(DOM_PROBE)
    b.call("Emulation.setEmulatedMedia", media="print")
    dom["print"] = b.evaluate(PRINT_PROBE)
    b.call("Emulation.setEmulatedMedia", media="screen")
    return {"errors": errors, "failed": failed, "requests": requests, "dom": dom}


def screenshot(b, path):
    metrics = b.call("Page.getLayoutMetrics")
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    height = min(int(size["height"]) + 1, 6000)
    b.call(
        "Emulation.setDeviceMetricsOverride",
        width=1280,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    shot = b.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    import base64

    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    b.call(
        "Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False
    )


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    site, shot, pages = sys.argv[1], sys.argv[2], sys.argv[3:]
    handler = functools.partial(Quiet, directory=os.path.abspath(site))
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}/"
    b = Browser()
    try:
        out = {"origin": origin, "pages": {}, "screenshot": os.path.abspath(shot)}
        for i, page in enumerate(pages):
            out["pages"][page] = visit(b, origin + page)
            if i == 0:
                os.makedirs(os.path.dirname(os.path.abspath(shot)), exist_ok=True)
                screenshot(b, shot)
        print(json.dumps(out, indent=1))
    finally:
        b.close()
        server.shutdown()


if __name__ == "__main__":
    main()
