"""The screen source on a real X server (Xvfb): a known picture drawn by a real X client (a Qt window in a
child process) is captured through mss in its own thread; regions, the own-window warning, and one-line errors.

Run as a script (python tests/test_screen.py X Y W H) it is that child: a frameless window at X,Y of size
W x H showing four coloured quadrants, until its standard input closes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.live.capture import open_capture
from app.live.screen import ScreenCapture, check_display, overlap
from app.live.source_spec import format_spec, parse_screen, parse_source
from models.errors import UserError
from tests.test_app_xvfb import xvfb  # noqa: F401  (the fixture: a fresh Xvfb display)

ROOT = Path(__file__).resolve().parent.parent
WINDOW = (100, 80, 200, 120)  # where the child draws its picture
COLOURS = ((220, 30, 30), (30, 200, 60), (40, 60, 220), (230, 210, 40))  # top-left, top-right, bottom-left, bottom-right


@pytest.fixture()
def picture(xvfb, monkeypatch):  # noqa: F811
    """A known picture on the Xvfb display; yields the display name."""
    env = dict(os.environ, DISPLAY=xvfb, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(ROOT))
    env.pop("WAYLAND_DISPLAY", None)
    child = subprocess.Popen([sys.executable, __file__, *map(str, WINDOW)], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    if line.strip() != "shown":
        child.kill()
        err = child.stderr.read()
        if "could not load the qt platform plugin" in err.lower():
            pytest.skip("Qt's xcb plugin cannot load its system libraries here: run `bash tests/system_deps.sh` as root")
        raise AssertionError(f"the drawing window did not start: {err[-2000:]}")
    monkeypatch.setenv("DISPLAY", xvfb)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    yield xvfb
    child.stdin.close()
    child.wait(10)


def grab(spec: str, timeout: float = 10.0, frames: int = 2):
    cap = open_capture(parse_source(spec))
    end = time.time() + timeout
    while time.time() < end and cap.state != "failed":
        f = cap.latest()
        if f is not None and f.seq >= frames:
            break
        time.sleep(0.02)
    return cap


def quadrant_colours(img: np.ndarray) -> list[tuple[int, ...]]:
    h, w = img.shape[:2]
    return [tuple(int(v) for v in img[y, x]) for y in (h // 4, 3 * h // 4) for x in (w // 4, 3 * w // 4)]


def test_captures_a_known_picture_in_its_own_thread(picture):
    x, y, w, h = WINDOW
    cap = grab(f"screen:1@{x},{y},{w},{h}")
    try:
        assert cap.state == "running", cap.error
        assert cap.alive and cap.rect == WINDOW
        f = cap.latest()
        assert f.image.shape == (h, w, 3) and f.image.dtype == np.uint8
        assert quadrant_colours(f.image) == list(COLOURS)  # exact: a 24-bit X server keeps the colours
        seq = f.seq
        time.sleep(0.3)
        assert cap.latest().seq > seq  # it keeps grabbing, newest frame wins
    finally:
        assert cap.stop()
    assert not cap.alive and cap.state == "stopped"

    whole = grab("screen")  # the whole first monitor: the picture sits at its place on the screen
    try:
        img = whole.latest().image
        assert img.shape == (800, 1280, 3)
        assert quadrant_colours(img[y : y + h, x : x + w]) == list(COLOURS)
        assert tuple(int(v) for v in img[5, 5]) != COLOURS[0]  # and nothing of it outside
    finally:
        whole.stop()


def test_own_window_overlap_warns_and_is_masked(picture):
    x, y, w, h = WINDOW
    cap = grab(f"screen:1@{x},{y},{w},{h}")
    try:
        assert cap.warning == ""
        cap.set_own_window((x + w // 2, y + h // 2, 400, 300))  # our output window over the bottom-right quadrant
        assert "feedback loop" in cap.warning and "\n" not in cap.warning
        seq = cap.latest().seq
        end = time.time() + 5
        while cap.latest().seq <= seq + 1 and time.time() < end:
            time.sleep(0.02)
        img = cap.latest().image
        assert quadrant_colours(img)[:3] == list(COLOURS[:3]) and quadrant_colours(img)[3] == (128, 128, 128)
        cap.set_own_window((0, 0, 50, 50))  # moved away: no warning, no mask
        assert cap.warning == ""
    finally:
        cap.stop()


def test_missing_monitor_and_region_off_screen_fail_in_one_line(picture):
    for spec, words in (("screen:5", "no monitor 5"), ("screen:1@1200,700,200,200", "runs off monitor 1")):
        cap = grab(spec, timeout=5)
        assert cap.state == "failed" and words in cap.error and "\n" not in cap.error
        cap.stop()


def test_wayland_without_x_gives_one_line(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    if not sys.platform.startswith("linux"):
        pytest.skip("the Wayland check is for Linux")
    with pytest.raises(UserError) as err:
        check_display()
    assert "Wayland" in str(err.value) and "\n" not in str(err.value)
    cap = ScreenCapture(parse_source("screen")).start()
    cap.stop()
    assert cap.state == "failed" and "Wayland" in cap.error


def test_screen_specs():
    assert str(parse_source("screen")) == "screen:1"
    assert str(parse_source("screen:2@10,20,300,200")) == "screen:2@10,20,300,200"
    assert parse_screen("screen@0,0,64,48").region == (0, 0, 64, 48)
    assert format_spec(1, (5, 6, 70, 80)) == "screen:1@5,6,70,80"
    assert overlap((0, 0, 10, 10), (5, 5, 10, 10)) == (5, 5, 5, 5) and overlap((0, 0, 10, 10), (10, 0, 5, 5)) is None
    for bad, words in (("screen:a", "must be a number"), ("screen:1@1,2,3", "X,Y,W,H"), ("screen@0,0,4,4", "too small")):
        with pytest.raises(UserError, match=words):
            parse_source(bad)


def main(x: str, y: str, w: str, h: str) -> int:
    """The child: four coloured quadrants in a frameless window at x, y, until stdin closes."""
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtGui import QColor, QPainter
    from PySide6.QtWidgets import QApplication, QWidget

    class Picture(QWidget):
        def paintEvent(self, event) -> None:
            p = QPainter(self)
            hw, hh = self.width() // 2, self.height() // 2
            for (cx, cy), c in zip(((0, 0), (hw, 0), (0, hh), (hw, hh)), COLOURS):
                p.fillRect(QRect(cx, cy, hw, hh), QColor(*c))
            p.end()

    app = QApplication([])
    win = Picture()
    win.setWindowFlags(Qt.FramelessWindowHint | Qt.X11BypassWindowManagerHint)
    win.setGeometry(int(x), int(y), int(w), int(h))
    win.show()
    end = time.time() + 1.0
    while time.time() < end:
        app.processEvents()
        time.sleep(0.01)
    print("shown", flush=True)
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ)
    while not sel.select(timeout=0.05):
        app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
