"""The engine server's page in a real headless Chromium, driven over the DevTools protocol (tests/cdp.py): a mouse
stroke and a finger stroke (Chromium's own input pipeline, so the page gets real pointer events) come back as a
picture that follows them; the fake camera (--use-fake-device-for-media-stream) goes to the engine as a video
track and its pictures come back on the server's video track, shown in the page's <video>; a page without the token says so. The engine is app.live.testing.stand_in (the real Engine on tiny parts) behind the real LiveLoop, as
its picture is a tinted copy of the drawing, so "follows the strokes" is a pixel check. Skipped, with the
reason, where Chromium is missing (tests/system_deps.sh installs it)."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.live.loop import LiveLoop
from app.live.settings import LiveSettings
from app.live.testing import stand_in
from app.remote.server import EngineServer
from tests.cdp import CHROMIUM, Browser

TOKEN = "browser-token-0123456789abcdef"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium; "
                                "tests/system_deps.sh does it)")


@pytest.fixture()
def server():
    srv = EngineServer(LiveLoop(stand_in(size=256), LiveSettings(size=256)), "127.0.0.1:0", token=TOKEN)
    srv.start()
    yield srv
    srv.stop()


async def _rect(b: Browser, element: str) -> list[float]:
    return await b.js(f"(() => {{ const r = document.getElementById('{element}').getBoundingClientRect(); "
                      "return [r.left, r.top, r.width, r.height]; })()")


async def _grey(b: Browser, fx: float, fy: float) -> float:
    """The picture's mean grey level in a 9x9 patch at (fx, fy) of its width and height."""
    return await b.js("(() => { const c = document.getElementById('picture'), d = c.getContext('2d').getImageData("
                      f"Math.round({fx} * c.width) - 4, Math.round({fy} * c.height) - 4, 9, 9).data; let s = 0; "
                      "for (let i = 0; i < d.length; i += 4) s += (d[i] + d[i + 1] + d[i + 2]) / 3; return s / (d.length / 4); })()")


def test_strokes_drawn_with_a_mouse_and_a_finger_come_back_as_the_picture(server, tmp_path):
    async def run() -> None:
        async with Browser(f"{server.url}/#token={TOKEN}", tmp_path / "profile") as b:
            await b.wait_for("window.sdxs && window.sdxs.pictures > 0")  # the blank page's first picture
            blank = await _grey(b, 0.5, 0.3)
            x, y, w, h = await _rect(b, "drawing")
            await b.mouse_stroke([(x + w * (0.1 + 0.04 * i), y + h * 0.3) for i in range(20)])  # across, at 30 %
            await b.touch_stroke([(x + w * 0.5, y + h * (0.1 + 0.04 * i)) for i in range(20)])  # down, in the middle
            await b.wait_for("window.sdxs.sent >= 3")
            n = await b.js("window.sdxs.sent")
            await b.wait_for(f"window.sdxs.lastSeq >= {n}", 20)  # the picture of the last drawing sent
            await asyncio.sleep(0.3)
            on = [await _grey(b, fx, fy) for fx, fy in ((0.3, 0.3), (0.7, 0.3), (0.5, 0.2), (0.5, 0.7))]
            off = [await _grey(b, fx, fy) for fx, fy in ((0.3, 0.7), (0.7, 0.7), (0.2, 0.15))]
            await b.screenshot(tmp_path / "page.png")
            assert max(on) < min(off) - 40, f"stroke patches {on} are not darker than the rest {off} (blank {blank})"
            assert await b.js("window.sdxs.link") == "live"
            assert server.session is not None and server.session.frames_in >= 2

    asyncio.run(run())


def test_the_fake_camera_goes_to_the_engine_as_a_video_track(server, tmp_path):
    async def run() -> None:
        async with Browser(f"{server.url}/#token={TOKEN}", tmp_path / "profile") as b:
            await b.wait_for("window.sdxs && window.sdxs.link === 'live'")
            x, y, w, h = await _rect(b, "cam")
            await b.mouse_stroke([(x + w / 2, y + h / 2)])  # a click: no hover needed
            await b.wait_for("document.getElementById('cam').classList.contains('on')")
            t0 = time.monotonic()
            while time.monotonic() - t0 < 30:  # the new connection carries the camera's track
                s = server.session
                if s is not None and s.frames_in >= 5 and s.pictures_out >= 5:
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("no camera frames reached the engine in 30 s")
            n = await b.js("window.sdxs.pictures")
            await b.wait_for(f"window.sdxs.pictures > {n + 2}", 20)  # pictures keep coming back
            # ... on the server's video track, shown in the <video>: the engine's pictures (its size, not the camera's)
            await b.wait_for("window.sdxs.videoFrames > 5 && !document.getElementById('returned').hidden", 20)
            size = await b.js("[document.getElementById('returned').videoWidth, document.getElementById('returned').videoHeight]")
            assert size == [256, 256], size
            assert await b.js("document.getElementById('picture').hidden")
            grab = ("(() => { const v = document.getElementById('returned'), c = document.createElement('canvas'); "
                    "c.width = c.height = 64; const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 64); "
                    "return Array.from(g.getImageData(0, 0, 64, 64).data.filter((_, i) => i % 4 !== 3)); })()")
            first = await b.js(grab)
            shown = await b.js("window.sdxs.videoFrames")
            await b.wait_for(f"window.sdxs.videoFrames > {shown + 10}", 20)
            second = await b.js(grab)
            assert max(first) > 40, "the returned video is black"
            assert sum(abs(a - c) for a, c in zip(first, second, strict=True)) > 64 * 64, "the returned video stands still"
            await b.screenshot(tmp_path / "camera.png")

    asyncio.run(run())


def test_a_page_without_the_token_says_so(server, tmp_path):
    async def run() -> None:
        async with Browser(f"{server.url}/", tmp_path / "profile") as b:
            await b.wait_for("window.sdxs && window.sdxs.link === 'refused'")
            assert "token" in await b.js("document.getElementById('status').textContent")
        assert server.refused >= 1 and server.session is None

    asyncio.run(run())


def test_a_second_client_is_told_the_engine_is_busy_and_takes_over_when_it_is_free(server, tmp_path):
    from app.remote.client import RemoteEngine

    first = RemoteEngine(server.url, TOKEN).connect()

    async def run() -> None:
        async with Browser(f"{server.url}/#token={TOKEN}", tmp_path / "profile") as b:
            await b.wait_for("window.sdxs && window.sdxs.link === 'busy'")
            assert "engine busy" in await b.js("document.getElementById('status').textContent")
            first.close()  # the first client leaves: the page, retrying every 3 s, gets the engine
            await b.wait_for("window.sdxs.link === 'live' && window.sdxs.pictures > 0", 30)

    try:
        asyncio.run(run())
    finally:
        first.close()
