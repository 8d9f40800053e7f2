"""The bench's Chrome DevTools Protocol client (app/cli/bench/browser.py), for tests that drive a real headless
Chromium: start it with a page, send input (mouse and touch go through Chromium's own input pipeline, so the page sees
real pointer events), evaluate JavaScript, take a screenshot."""

from __future__ import annotations

import base64
from pathlib import Path

from app.cli.bench.browser import Page, chromium

CHROMIUM = chromium()
FAKE_MEDIA = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")  # a test pattern as the camera


class Browser(Page):
    """The bench's DevTools client (app/cli/bench/browser.py) with a fake camera, strokes and screenshots."""

    def __init__(self, url: str, profile: Path, size: tuple[int, int] = (1000, 700)):
        super().__init__(url, profile, size, FAKE_MEDIA)

    async def mouse_stroke(self, points: list[tuple[float, float]]) -> None:
        x, y = points[0]
        await self.call("Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, button="left", buttons=1, clickCount=1)
        for x, y in points[1:]:
            await self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y, button="left", buttons=1)
        await self.call("Input.dispatchMouseEvent", type="mouseReleased", x=x, y=y, button="left", buttons=0, clickCount=1)

    async def touch_stroke(self, points: list[tuple[float, float]], force: float = 0.8) -> None:
        kinds = ["touchStart"] + ["touchMove"] * (len(points) - 1)
        for kind, (x, y) in zip(kinds, points):
            await self.call("Input.dispatchTouchEvent", type=kind, touchPoints=[{"x": x, "y": y, "force": force}])
        await self.call("Input.dispatchTouchEvent", type="touchEnd", touchPoints=[])

    async def screenshot(self, path: Path) -> Path:
        r = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(r["data"]))
        return path
