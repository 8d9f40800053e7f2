"""The window at the edges (pytest-qt, offscreen): Ctrl+Z reaches the drawing once the canvas or the output was
clicked (the prompt keeps its own undo while it has focus), the overlay's latency counts only frames rendered
after an input change, and quitting takes at most 2 s with a training run, the stream serving (to idle,
half-sent and streaming clients) and a screen capture all running at once."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from app.live.testing import stand_in
from app.ui.pipeline import wait_idle
from tests.test_app_window import make_window
from tests.test_app_xvfb import xvfb  # noqa: F401  (fixture: an X server)
from tests.test_screen import WINDOW, picture  # noqa: F401  (fixture: a known picture on Xvfb)
from tests.test_serve import Client
from tests.test_train_dialog import dialog_for, window  # noqa: F401  (fixture: the window on the tiny model)


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def stroke(canvas, points) -> None:
    """A real mouse stroke on the canvas widget (press, moves, release)."""
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(*points[0]))
    for p in points[1:]:
        QTest.mouseMove(canvas, QPoint(*p))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(*points[-1]))


def keys(w, key, modifiers) -> None:
    """A key press where the user's focus is (shortcuts included)."""
    QTest.keyClick(w.focusWidget() or w, key, modifiers)


def test_ctrl_z_reaches_the_drawing_once_the_canvas_or_the_output_was_clicked(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    w.activateWindow()
    qtbot.waitUntil(lambda: w.isActiveWindow(), timeout=5000)
    c, prompt, ctrl = w.canvas, w.panel.prompt, Qt.KeyboardModifier.ControlModifier
    blank = c.frame()
    stroke(c, [(c.width() // 2 - 60, c.height() // 2), (c.width() // 2 + 60, c.height() // 2 + 40)])
    drawn = c.frame()
    assert drawn.min() == 0 and c.hasFocus()  # the stroke drew, and the click moved focus to the canvas
    QTest.mouseClick(prompt, Qt.MouseButton.LeftButton)
    prompt.selectAll()
    QTest.keyClicks(prompt, "a fox")
    assert prompt.hasFocus() and prompt.text() == "a fox"
    keys(w, Qt.Key.Key_Z, ctrl)  # the prompt has focus: its own undo
    assert prompt.text() != "a fox" and np.array_equal(c.frame(), drawn)
    keys(w, Qt.Key.Key_Z, ctrl | Qt.KeyboardModifier.ShiftModifier)  # and its own redo
    assert prompt.text() == "a fox"
    QTest.mouseClick(w.output, Qt.MouseButton.LeftButton)  # a click on the output: Ctrl+Z is the drawing's
    assert w.output.hasFocus()
    keys(w, Qt.Key.Key_Z, ctrl)
    assert np.array_equal(c.frame(), blank) and prompt.text() == "a fox"
    keys(w, Qt.Key.Key_Z, ctrl | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(c.frame(), drawn)
    QTest.mouseClick(prompt, Qt.MouseButton.LeftButton)
    QTest.mouseClick(c, Qt.MouseButton.LeftButton, pos=QPoint(c.width() // 2, c.height() // 4))  # a dot, and focus
    dotted = c.frame()
    assert c.hasFocus() and not np.array_equal(dotted, drawn)
    keys(w, Qt.Key.Key_Z, ctrl)
    assert np.array_equal(c.frame(), drawn) and prompt.text() == "a fox"
    w.close()


def test_latency_counts_only_frames_rendered_after_an_input_change(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))

    def latency() -> str:
        w._update_overlay()
        return w.output.overlay[0].split("latency")[1].strip()

    qtbot.waitUntil(lambda: w.last_result is not None, timeout=5000)
    time.sleep(1.0)  # idle: nothing changes
    old = w.pipeline.worker.loop
    w.load("stand-in-2", None)  # another model (the same one only swaps its adapter): the same drawing rendered again
    qtbot.waitUntil(lambda: w.pipeline.worker.loop not in (None, old) and w.pipeline.worker.loop.frames >= 1
                    and wait_idle(w.pipeline, 5), timeout=20000)
    assert latency() == "-- ms", f"latency {latency()} after a load: it counted idle time"
    c = w.canvas
    seen = w.last_result
    stroke(c, [(c.width() // 2 - 50, c.height() // 2), (c.width() // 2 + 50, c.height() // 2)])
    qtbot.waitUntil(lambda: w.last_result is not seen, timeout=5000)
    ms = float(latency().split()[0])
    assert 0 <= ms < 2000, ms  # a stroke to its picture: a real latency
    time.sleep(1.0)
    seen = w.last_result
    w.panel.prompt.setText("a different prompt")  # the same drawing rendered again
    qtbot.waitUntil(lambda: w.last_result is not seen, timeout=5000)
    assert latency() == "-- ms"
    w.close()


def test_quitting_takes_at_most_2_s_while_training_serving_and_capturing(qtbot, tmp_path, window, picture):  # noqa: F811
    from app.live.screen import ScreenCapture
    from app.ui.pipeline import finish_all

    w = window  # the tiny real model, so that the Train dialog can train on it
    x, y, width, height = WINDOW
    w.set_source(f"screen:1@{x},{y},{width},{height}")
    w.move(2000, 1500)  # away from the captured area
    assert isinstance(w.capture, ScreenCapture)
    server = w.actions.output.start_server("127.0.0.1:0")
    reader = Client(server.port, 1_000_000)
    reader.start()
    qtbot.waitUntil(lambda: len(reader.levels) >= 3, timeout=30000)  # the capture's pictures reach the stream
    d = dialog_for(w, tmp_path, steps=2000)
    d.start()
    seen: list[str] = []
    d.proc.event.connect(lambda ev: seen.append(ev["event"]))
    qtbot.waitUntil(lambda: "step" in seen, timeout=240000)  # the run is training
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]  # as browsers preconnect
    idle[1].sendall(b"GET /stream.mjpg HTTP/1.1\r\nHo")  # half a request
    closer = threading.Timer(8.0, lambda: [s.close() for s in idle])  # without a fix, quitting waits for this
    closer.start()
    time.sleep(0.3)
    capture = w.capture
    t0 = time.perf_counter()
    w.close()
    finish_all()
    took = time.perf_counter() - t0
    closer.cancel()
    for s in idle:
        s.close()
    print(f"quit took {took:.2f} s")
    assert took < 2.0, f"quitting took {took:.1f} s"
    assert not d.proc.running and not capture.alive and not w.pipeline.thread.isRunning()
    reader.join(5)
    assert not reader.is_alive()  # the stream ended
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_the_window_serves_from_the_command_line(tmp_path, tiny_base, tiny_controlnet):
    """`python main.py --serve ADDR --serve-token T`: the stream runs from the start, as from the Output menu."""
    import os
    import subprocess
    import sys
    import urllib.request

    from tests.test_app_cli import ROOT

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1", HOME=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "main.py", "--model", tiny_base, "--controlnet", tiny_controlnet, "--size", "64",
                             "--exit-after", "40", "--settings", str(tmp_path / "s.ini"), "--serve", f"127.0.0.1:{port}",
                             "--serve-token", "a&b=c+d-token"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
        while first and not first.startswith(("serving", "error")):
            first = proc.stderr.readline()
        assert first.startswith(f"serving http://127.0.0.1:{port}/stream.mjpg?token=a%26b%3Dc%2Bd-token"), first
        jpeg, end = b"", time.time() + 60
        while not jpeg.startswith(b"\xff\xd8") and time.time() < end:
            try:
                jpeg = urllib.request.urlopen(first.split()[1].replace("/stream.mjpg", "/frame.jpg"), timeout=10).read()
            except OSError:
                time.sleep(0.5)
        assert jpeg.startswith(b"\xff\xd8"), "the window's stream gave no frame"
    finally:
        proc.kill()
        proc.communicate(timeout=30)
