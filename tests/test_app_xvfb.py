"""The real window on a real X server (Xvfb) with a tiny real model: screenshot, and the output pane is not blank.

Run as a script (python tests/test_app_xvfb.py OUT.png MODEL ADAPTER TMP) it is the child process the test starts
with DISPLAY pointing at its own Xvfb (ADAPTER may be A,B for several); it also makes the README screenshot, and with SHOT_SCENE=colour and
ADAPTER demo the colour canvas one (docs/images/colour-canvas.png)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_display() -> int:
    for n in range(90, 190):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number between :90 and :189")


@pytest.fixture()
def xvfb():
    if not shutil.which("Xvfb"):
        pytest.skip("Xvfb is not installed (bash tests/system_deps.sh installs it)")
    n = _free_display()
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 10
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        if proc.poll() is not None or time.time() > end:
            proc.kill()
            pytest.skip(f"Xvfb :{n} did not start")
        time.sleep(0.05)
    yield f":{n}"
    proc.terminate()
    proc.wait(5)


def test_real_window_under_xvfb(xvfb, tmp_path, tiny_base, tiny_controlnet):
    import cv2

    shot = tmp_path / "window.png"
    env = dict(os.environ, DISPLAY=xvfb, QT_QPA_PLATFORM="xcb", HF_HUB_OFFLINE="1")
    env.pop("WAYLAND_DISPLAY", None)
    r = subprocess.run([sys.executable, __file__, str(shot), tiny_base, tiny_controlnet, str(tmp_path)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    if r.returncode != 0 and "could not load the Qt platform plugin" in r.stderr.lower():
        pytest.skip("Qt's xcb plugin cannot load its system libraries here: run `bash tests/system_deps.sh` as root")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    x, y, w, h = (int(v) for v in r.stdout.strip().splitlines()[-1].split())
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (800, 1280)  # the X server's whole screen
    pane = img[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4]
    assert pane.std() > 8, f"output pane looks blank (std {pane.std():.1f})"  # random weights: a busy picture
    assert img[:, : x - 10].std() > 8  # the source pane and controls were drawn too


def main(out: str, model: str, adapter: str, tmp: str) -> int:
    """The child: open the window, draw, wait for output, grab the X screen, print the output pane's rectangle."""
    sys.path.insert(0, str(ROOT))
    import torch
    from PySide6.QtWidgets import QApplication

    from app.ui.panel.modelpick import Choice
    from app.ui.pipeline import wait_idle
    from app.ui.session.settings import open_settings
    from app.ui.window import MainWindow, StartOptions

    torch.set_num_threads(2)
    app = QApplication([])
    w = MainWindow(open_settings(str(Path(tmp) / "settings.ini")))
    w.setGeometry(0, 0, 1280, 800)
    w.show()
    size = int(os.environ.get("SHOT_SIZE", "128"))
    source = os.environ.get("SHOT_SOURCE", "sketch")
    adapters = tuple(adapter.split(",")) if "," in adapter else adapter  # A,B: several adapters
    w.start(StartOptions(Choice(model, adapters), source, os.environ.get("SHOT_PROMPT", "a cottage by a lake"), size))
    end = time.time() + 120
    while w.pipeline.worker.loop is None and time.time() < end:
        app.processEvents()
        time.sleep(0.01)
    if source == "sketch":
        _draw_scene(w.canvas)
    while w.pipeline.frames < 2 and time.time() < end:
        app.processEvents()
        time.sleep(0.01)
    wait_idle(w.pipeline, 60)
    t = time.time() + 1.0
    while time.time() < t:
        app.processEvents()
        time.sleep(0.01)
    w._update_overlay()
    app.processEvents()
    pix = w.screen().grabWindow(0)  # the X server's screen, as a user would see it
    pix.save(out)
    r = w.output.target_rect().toRect()
    top_left = w.output.mapTo(w, r.topLeft())
    pos = w.mapToGlobal(top_left) if w.isVisible() else top_left
    print(pos.x(), pos.y(), r.width(), r.height())
    w.close()
    from app.ui.pipeline import finish_all

    finish_all()
    return 0


def _draw_scene(c) -> None:
    """Hills, a sun and a house, as a user would draw them (SHOT_SCENE=house: one big house)."""
    import math

    from PySide6.QtCore import QPointF

    scene = os.environ.get("SHOT_SCENE")
    if scene in ("house", "colour"):
        for stroke in (((120, 440), (120, 250), (256, 110), (392, 250), (392, 440), (120, 440)),
                       ((220, 440), (220, 340), (292, 340), (292, 440)), ((150, 280), (200, 280), (200, 320), (150, 320), (150, 280))):
            c.stroke_to(QPointF(*stroke[0]), start=True)
            for p in stroke[1:]:
                c.stroke_to(QPointF(*p))
            c.end_stroke()
        if scene == "colour":  # colour blobs on the colour layer (needs a colour-hint adapter to matter)
            _paint_colour(c)
        return

    c.stroke_to(QPointF(60, 380), start=True)  # hills
    for i in range(60):
        c.stroke_to(QPointF(60 + 7 * i, 380 - 60 * math.sin(i / 12)))
    c.end_stroke()
    c.stroke_to(QPointF(385, 150), start=True)  # a sun
    for i in range(64):
        c.stroke_to(QPointF(330 + 55 * math.cos(i / 10), 150 + 55 * math.sin(i / 10)))
    c.end_stroke()
    c.stroke_to(QPointF(150, 300), start=True)  # a house
    for p in ((150, 220), (200, 170), (250, 220), (250, 300), (150, 300)):
        c.stroke_to(QPointF(*p))
    c.end_stroke()


def _paint_colour(c) -> None:
    """A blue sky, red walls, a brown door and a green ground, scribbled back and forth with the colour brush."""
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QColor

    c.set_layer("colour")
    c.set_brush(26, "colour")
    areas = (((120, 185, 240), (30, 30, 480, 70)), ((120, 185, 240), (30, 100, 110, 150)),
             ((120, 185, 240), (410, 100, 480, 150)), ((220, 40, 40), (140, 265, 375, 330)),
             ((220, 40, 40), (140, 350, 205, 425)), ((220, 40, 40), (305, 350, 375, 425)),
             ((125, 80, 40), (235, 360, 275, 425)), ((30, 130, 60), (20, 465, 490, 495)))
    for rgb, (x0, y0, x1, y1) in areas:
        c.set_colour(QColor(*rgb))
        c.stroke_to(QPointF(x0, y0), start=True)
        y, left = y0, True
        while y <= y1:
            c.stroke_to(QPointF(x1 if left else x0, y))
            y, left = y + 18, not left
            c.stroke_to(QPointF(x1 if not left else x0, min(y, y1)))
        c.end_stroke()
    c.set_layer("lines")


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
