"""`bench remote`'s browser row: the engine server's page in a real headless Chromium, driven over the DevTools
protocol (mouse input goes through Chromium's own input pipeline, so the page sees real pointer events).

The driver draws without pause, as a hand would: a line sweeping across the drawing, a few pixels every
STEP_S, cleared each time it reaches the edge, so the page always has a new drawing to send; the page sends the
newest one whenever the last picture is back (one frame in flight). The page's own counters give the figures
(app/remote/page/app.js keeps `window.sdxs`): pictures, bytes each way, and per picture the time from the drawing
grabbed (capture) and from its first stroke not yet sent (stroke) to the picture drawn on the page, and the
server's engine time.

tests/cdp.py builds on this DevTools client (touch input, screenshots, the fake camera) for the tests.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--mute-audio",
         "--disable-features=WebRtcHideLocalIpsWithMdns", "--remote-debugging-port=0"]
STEP_S = 0.03  # the hand moves every 30 ms
WARM = 3  # pictures before measuring (the first ones pay for caches)


def chromium() -> str | None:
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


class Page:
    """One headless Chromium showing one page; an async context manager. flags: more Chromium switches."""

    def __init__(self, url: str, profile: Path, size: tuple[int, int] = (1000, 700), flags: tuple[str, ...] = ()):
        self.url, self.profile, self.size, self.flags = url, profile, size, flags
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Page:
        import aiohttp

        self.proc = subprocess.Popen([chromium(), *FLAGS, *self.flags, f"--user-data-dir={self.profile}",
                                      f"--window-size={self.size[0]},{self.size[1]}", self.url],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, deadline = self.profile / "DevToolsActivePort", time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("Chromium did not open its debugging port")
            await asyncio.sleep(0.1)
        self.http = aiohttp.ClientSession()
        while True:
            async with self.http.get(f"http://127.0.0.1:{int(port_file.read_text().split()[0])}/json/list") as r:
                pages = [t for t in await r.json() if t["type"] == "page"]
            if pages:
                break
            await asyncio.sleep(0.1)
        self.ws = await self.http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=64 * 2**20)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.ws.close()
        await self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    async def call(self, method: str, **params: Any) -> dict:
        n = next(self._ids)
        await self.ws.send_str(json.dumps({"id": n, "method": method, "params": params}))
        while True:
            msg = json.loads((await self.ws.receive(timeout=60)).data)
            if msg.get("id") == n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def js(self, expression: str) -> Any:
        r = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails'].get('text')}")
        return r["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := await self.js(expression):
                return value
            await asyncio.sleep(0.1)
        status = await self.js("document.getElementById('status').textContent")
        raise TimeoutError(f"{expression} stayed false for {timeout:g} s (page status: {status!r})")

    async def mouse(self, kind: str, x: float, y: float) -> None:
        pressed = kind != "mouseReleased"
        await self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", buttons=int(pressed), clickCount=1)


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 1) if values else 0.0


async def _measure(url: str, pictures: int, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="sdxs-bench-chromium-") as profile:
        async with Page(url, Path(profile)) as page:
            await page.wait_for("window.sdxs && window.sdxs.link === 'live'", timeout)
            x, y, w, h = await page.js("(() => { const r = document.getElementById('drawing').getBoundingClientRect(); "
                                       "return [r.left, r.top, r.width, r.height]; })()")
            cx, cy, cw, ch = await page.js("(() => { const r = document.getElementById('clear').getBoundingClientRect(); "
                                           "return [r.left, r.top, r.width, r.height]; })()")
            state = "p: sdxs.pictures, s: sdxs.sent, up: sdxs.bytesUp, down: sdxs.bytesDown, link: sdxs.link"
            start, t0, step, row = None, time.monotonic(), 0, 0
            await page.mouse("mousePressed", x + w * 0.1, y + h * 0.2)
            while True:
                step += 1
                fx = 0.1 + 0.02 * (step % 41)
                if step % 41 == 0:  # the edge: lift the pen, clear, start a new line lower down
                    await page.mouse("mouseReleased", x + w * 0.9, y + h * (0.2 + 0.1 * row))
                    await page.mouse("mousePressed", cx + cw / 2, cy + ch / 2)
                    await page.mouse("mouseReleased", cx + cw / 2, cy + ch / 2)
                    row = (row + 1) % 7
                    await page.mouse("mousePressed", x + w * 0.1, y + h * (0.2 + 0.1 * row))
                else:
                    await page.mouse("mouseMoved", x + w * fx, y + h * (0.2 + 0.1 * row) + 3 * (step % 2))
                await asyncio.sleep(STEP_S)
                now = await page.js(f"({{{state}}})")
                if now["link"] != "live":
                    raise RuntimeError(f"the page's link is {now['link']}")
                if start is None and now["p"] >= WARM:  # the log from here on, read with the counts in one go
                    start, t_start = await page.js(f"(sdxs.log.length = 0, {{{state}}})"), time.perf_counter()
                if start is not None and now["p"] - start["p"] >= pictures:
                    now, seconds = await page.js(f"({{{state}, log: sdxs.log}})"), time.perf_counter() - t_start
                    break
                if time.monotonic() - t0 > timeout:
                    raise TimeoutError(f"{now['p']} pictures in {timeout:g} s")
            await page.mouse("mouseReleased", x + w * 0.5, y + h * 0.5)
            entries = now["log"]
    got, sent = now["p"] - start["p"], max(1, now["s"] - start["s"])
    capture = [e["capture"] for e in entries]
    stroke = [e["stroke"] for e in entries if e["stroke"] is not None]
    engine = [e["engine"] for e in entries if e["engine"] is not None]
    over = [e["capture"] - e["engine"] for e in entries if e["engine"] is not None]
    return {"fps": round(got / seconds, 2), "latency_p50_ms": pct(capture, 50), "latency_p95_ms": pct(capture, 95),
            "stroke_latency_p50_ms": pct(stroke, 50), "stroke_latency_p95_ms": pct(stroke, 95),
            "overhead_p50_ms": pct(over, 50), "overhead_p95_ms": pct(over, 95),
            "engine_p50_ms": pct(engine, 50), "engine_p95_ms": pct(engine, 95),
            "latency_max_ms": round(max(capture), 1), "latency_first_third_p50_ms": pct(capture[:len(capture) // 3], 50),
            "latency_last_third_p50_ms": pct(capture[-(len(capture) // 3):], 50),
            "bytes_up_per_frame": int((now["up"] - start["up"]) / sent), "bytes_down_per_frame": int((now["down"] - start["down"]) / got),
            "frames": got}


def measure(url: str, pictures: int, timeout: float = 300.0) -> dict:
    """The page at url (with its #token) drawn on for `pictures` pictures after WARM; {"skipped": why} without Chromium."""
    if chromium() is None:
        return {"skipped": f"Chromium is not installed (looked for {', '.join(CHROMIUM_NAMES)}; Debian: apt-get install chromium)"}
    try:
        return asyncio.run(_measure(url, pictures, timeout))
    except (RuntimeError, TimeoutError, OSError) as e:
        log.warning("bench remote: the browser row failed: %s", e)
        return {"skipped": f"the browser run failed: {e}"}
