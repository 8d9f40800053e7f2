"""The MJPEG server as OBS, browsers and ffmpeg read it, on loopback: a real headless Chromium (OBS's Browser
Source is Chromium) screenshots the page over a still picture and over a moving one, and the picture is there
(not the broken-image icon on black, no scrollbars); ffmpeg reads a still picture as a live stream, at least one
frame a second. Skipped, with the reason, where Debian's chromium or ffmpeg is missing (tests/system_deps.sh
installs them)."""

from __future__ import annotations

import shutil
import subprocess
import threading

import cv2
import numpy as np
import pytest

from app.live.serve import MjpegServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FFMPEG = shutil.which("ffmpeg")
RED, GREEN = (230, 20, 20), (20, 200, 20)


def picture(shift: int = 0) -> np.ndarray:
    """Left half red, right half green; `shift` moves a thin dark bar along the top rows (a moving picture)."""
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, :32], img[:, 32:] = RED, GREEN
    img[:4, shift % 60:shift % 60 + 4] = 0
    return img


def screenshot(url: str, tmp_path) -> np.ndarray:
    """What headless Chromium shows at url in a 320x240 window after 3 s, as RGB."""
    png = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={png}", "--window-size=320,240", "--timeout=3000", url]
    subprocess.run(cmd, capture_output=True, timeout=120)
    shot = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert shot is not None, "Chromium wrote no screenshot"
    return cv2.cvtColor(shot, cv2.COLOR_BGR2RGB)


def assert_picture_fills_without_scrollbars(shot: np.ndarray) -> None:
    assert shot.shape[:2] == (240, 320)
    # the square picture letterboxed in the middle (240x240 from x=40): red on the left, green on the right
    for (y, x), colour in (((120, 90), RED), ((200, 70), RED), ((120, 230), GREEN), ((200, 250), GREEN)):
        assert np.abs(shot[y, x].astype(int) - colour).max() < 40, f"{shot[y, x]} at {(x, y)}, not the picture's {colour}"
    # black bars at the sides, and no scrollbar (grey) along the right or bottom edge
    assert shot[:, :30].max() < 30 and shot[:, -30:].max() < 30, "the sides are not black: scrollbars or a broken page"
    for x0, colour in ((50, RED), (170, GREEN)):  # the bottom rows are the picture's, not a scrollbar's grey
        assert np.abs(shot[-8:, x0:x0 + 100].astype(int) - colour).max() < 40, "the bottom rows are not the picture"


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium; "
                    "tests/system_deps.sh does it)")
def test_chromium_shows_a_still_picture(tmp_path):
    with MjpegServer("127.0.0.1:0") as server:
        server.publish(picture())  # once: a finished drawing, nothing changes after
        assert_picture_fills_without_scrollbars(screenshot(server.url("/"), tmp_path))


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium; "
                    "tests/system_deps.sh does it)")
def test_chromium_shows_a_moving_picture(tmp_path):
    with MjpegServer("127.0.0.1:0", token="auto") as server:  # with a token: the page carries it to the stream
        done = threading.Event()

        def engine() -> None:
            i = 0
            while not done.wait(0.04):
                server.publish(picture(i))
                i += 1

        t = threading.Thread(target=engine, daemon=True)
        t.start()
        try:
            assert_picture_fills_without_scrollbars(screenshot(server.url("/"), tmp_path))
        finally:
            done.set()
            t.join(5)


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed (Debian: apt-get install ffmpeg; tests/system_deps.sh does it)")
def test_ffmpeg_reads_a_still_picture_as_a_live_stream(tmp_path):
    seconds = 4
    with MjpegServer("127.0.0.1:0") as server:
        server.publish(picture())
        cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-use_wallclock_as_timestamps", "1",
               "-i", server.url(), "-t", str(seconds), "-c", "copy", "-f", "image2", str(tmp_path / "f%03d.jpg")]
        try:
            subprocess.run(cmd, capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ffmpeg did not finish {seconds} s of the stream within 30 s: the still picture stopped the stream")
    frames = sorted(tmp_path.glob("f*.jpg"))
    assert len(frames) >= seconds, f"{len(frames)} frames in {seconds} s of a still picture: less than one a second"
    img = cv2.cvtColor(cv2.imread(str(frames[-1])), cv2.COLOR_BGR2RGB)
    assert np.abs(img[32, 10].astype(int) - RED).max() < 40 and np.abs(img[32, 54].astype(int) - GREEN).max() < 40
