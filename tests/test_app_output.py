"""The window side of live in and out (offscreen Qt; a real Xvfb display for the screen): the Output menu's
MJPEG server read by a loopback client, the virtual camera's missing backend, the Steady picture controls,
a screen source in the window, and the region picker driven by mouse events."""

from __future__ import annotations

import socket
import sys
import time
import urllib.request

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from app.live.screen import ScreenCapture
from app.live.steady import SteadySettings
from app.live.testing import stand_in
from app.ui.dialogs.region import RegionPicker, pick_screen
from app.ui.pipeline import wait_idle
from app.ui.session.settings import Persisted, open_settings
from app.ui.window import MainWindow
from models.errors import UserError
from tests.test_app_window import _keep_torch_threads, draw, make_window  # noqa: F401  (fixture and helpers)
from tests.test_app_xvfb import xvfb  # noqa: F401  (the fixture: a fresh Xvfb display)
from tests.test_screen import COLOURS, WINDOW, picture, quadrant_colours  # noqa: F401  (the Xvfb picture fixture)
from tests.test_serve import Client


def test_output_menu_streams_the_windows_frames_and_stops_with_it(qtbot, tmp_path):
    engine = stand_in(size=64)
    w = make_window(qtbot, tmp_path, lambda *a: engine)
    out = w.actions.output
    assert [a.text() for a in out.menu.actions() if a.text()] == ["Stream to OBS (MJPEG)...", "Stop the stream", "Virtual camera", "NDI...",
                                                                   "Stop NDI"]
    out.act_serve.trigger()  # the dialog
    d = out.dialog
    assert d.isVisible() and d.address.text() == "127.0.0.1:8765" and not d.token.isEnabled()  # loopback: no token
    d.address.setText("127.0.0.1:0")  # any free port
    qtbot.mouseClick(d.start, Qt.MouseButton.LeftButton)
    server = out.server
    assert server is not None and server.port > 0, d.state.text()
    assert d.urls["/stream.mjpg"].text() == f"http://127.0.0.1:{server.port}/stream.mjpg"
    assert d.urls["/frame.jpg"].text().endswith("/frame.jpg") and out.act_stop_serve.isEnabled()
    assert f"127.0.0.1:{server.port}" in out.act_serve.text()  # the menu says where it streams
    client = Client(server.port, limit=3)
    client.start()
    qtbot.waitUntil(lambda: server.clients == 1, timeout=5000)
    for i in range(6):  # strokes make new output frames, each published to the stream
        draw(w.canvas, [(40 + 60 * i, 40), (300, 100 + 50 * i)])
        qtbot.waitUntil(lambda: wait_idle(w.pipeline, 5), timeout=5000)
        qtbot.wait(30)
    client.join(10)
    assert client.error == "" and len(client.levels) == 3 and client.shapes == {(64, 64, 3)}
    jpeg = urllib.request.urlopen(server.url("/frame.jpg"), timeout=5).read()
    img = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.abs(img.astype(int) - w.last_result.output.astype(int)).mean() < 6  # the window's picture, as JPEG
    assert server.frames_published >= 6
    port = server.port
    w.close()  # the window's shutdown stops the server
    assert out.server is None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_taken_port_and_a_remote_address_in_the_dialog(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    out = w.actions.output
    out.open_dialog()
    d = out.dialog
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        d.address.setText(f"127.0.0.1:{taken.getsockname()[1]}")
        qtbot.mouseClick(d.start, Qt.MouseButton.LeftButton)
        assert out.server is None and "in use" in d.state.text() and "in use" in w.statusBar().currentMessage()
        assert "\n" not in w.statusBar().currentMessage()
    finally:
        taken.close()
    d.address.setText("0.0.0.0:0")  # other computers: a token is made and every URL carries it
    assert d.token.isEnabled() and len(d.token.text()) >= 16
    qtbot.mouseClick(d.start, Qt.MouseButton.LeftButton)
    try:
        assert out.server is not None and out.server.token == d.token.text()
        assert d.urls["/stream.mjpg"].text().endswith(f"?token={d.token.text()}")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{out.server.port}/frame.jpg", timeout=5)
        assert err.value.code == 403
    finally:
        qtbot.mouseClick(d.stop, Qt.MouseButton.LeftButton)
    assert out.server is None and d.start.isEnabled()
    token = d.token.text()
    d.address.setText("127.0.0.1:8765")  # back to this computer only: no greyed random token left behind
    assert d.token.text() == "" and not d.token.isEnabled()
    d.address.setText("0.0.0.0:8765")  # and the token made before comes back for other computers
    assert d.token.text() == token and d.token.isEnabled()
    w.close()


def test_virtual_camera_without_a_backend_is_one_line(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=5000)
    out = w.actions.output
    out.act_camera.setChecked(True)
    if out.camera is not None:  # a machine with v4l2loopback: the frames reach it
        n = out.camera.frames
        draw(w.canvas, [(30, 30), (200, 200)])
        qtbot.waitUntil(lambda: out.camera.frames > n, timeout=5000)
        w.close()
        return
    msg = w.statusBar().currentMessage()
    assert msg.startswith("no virtual camera is available") and "\n" not in msg
    if sys.platform.startswith("linux"):
        assert "v4l2loopback" in msg and "modprobe" in msg  # what to install
    assert not out.act_camera.isChecked()
    draw(w.canvas, [(30, 30), (200, 200)])  # the window keeps running
    qtbot.waitUntil(lambda: wait_idle(w.pipeline, 5), timeout=5000)
    w.close()


def test_steady_controls_reach_the_live_loop_and_persist(qtbot, tmp_path):
    engine = stand_in(size=64)
    w = make_window(qtbot, tmp_path, lambda *a: engine)
    g = w.panel.steady
    assert w.live.steady == SteadySettings()  # on by default, the measured defaults
    g.sliders["smooth"].setValue(40)
    g.sliders["skip"].setValue(15)
    g.sliders["blend"].setValue(25)
    wanted = SteadySettings(smooth=0.4, skip=1.5, blend=0.25)
    qtbot.waitUntil(lambda: w.live.steady == wanted, timeout=3000)
    qtbot.waitUntil(lambda: w.pipeline.worker.loop.settings.steady == wanted, timeout=3000)
    assert w.pipeline.worker.loop.steady is not None and g.labels["skip"].text() == "1.5"
    w.close()
    settings = str(tmp_path / "settings.ini")
    assert Persisted.load(open_settings(settings)).live.steady == wanted
    w2 = MainWindow(open_settings(settings), lambda *a: stand_in(size=64))
    qtbot.addWidget(w2)
    assert w2.panel.live_settings().steady == wanted and g is not w2.panel.steady
    w2.panel.steady.on.setChecked(False)  # off: None, and it stays off
    assert w2.panel.live_settings().steady is None and not w2.panel.steady.sliders["blend"].isEnabled()
    w2.close()
    assert Persisted.load(open_settings(settings)).live.steady is None
    w3 = MainWindow(open_settings(settings), lambda *a: stand_in(size=64))
    qtbot.addWidget(w3)
    assert not w3.panel.steady.on.isChecked() and w3.panel.live_settings().steady is None
    w3.shutdown()


def test_screen_source_in_the_window(qtbot, tmp_path, picture):  # noqa: F811
    x, y, width, height = WINDOW
    engine = stand_in(size=64)
    w = make_window(qtbot, tmp_path, lambda *a: engine, source=f"screen:1@{x},{y},{width},{height}")
    assert isinstance(w.capture, ScreenCapture) and w.source_spec == f"screen:1@{x},{y},{width},{height}"
    assert w.panel.source.currentData() == "screen" and w.panel.steady.isEnabled()
    # this test's window is offscreen, so its rectangle on the Xvfb desktop is made up: put it over the
    # captured area first (a feedback loop: warned and painted grey), then away from it
    w.move(0, 0)
    qtbot.waitUntil(lambda: "feedback loop" in w.statusBar().currentMessage(), timeout=5000)
    assert w.own_windows.sent and w.capture.warning
    qtbot.waitUntil(lambda: w.last_result is not None
                    and quadrant_colours(w.last_result.source) == [(128, 128, 128)] * 4, timeout=10000)
    w.move(2000, 1500)
    qtbot.waitUntil(lambda: w.capture.warning == "" and "feedback" not in w.statusBar().currentMessage(), timeout=5000)
    qtbot.waitUntil(lambda: quadrant_colours(w.last_result.source) == list(COLOURS), timeout=10000)
    assert w.last_result.output.shape == (64, 64, 3) and engine.runners[0].steps >= 2
    capture = w.capture
    w.close()
    assert not capture.alive


def test_region_picker_maps_a_drag_to_physical_pixels(qtbot):
    shot = np.zeros((800, 1280, 3), np.uint8)
    picker = RegionPicker(shot, 2, (1280, 0, 1280, 800))
    qtbot.addWidget(picker)
    picker.resize(640, 400)  # a display scaled 2x: a widget pixel is two screenshot pixels
    picker.show()
    QTest.mousePress(picker, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(160, 90))
    QTest.mouseMove(picker, QPoint(100, 70))
    QTest.mouseMove(picker, QPoint(50, 40))  # dragged up and left: the rectangle is normalised
    assert picker.region() == (100, 80, 220, 100) and picker.spec is None
    QTest.mouseRelease(picker, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(50, 40))
    assert picker.spec == "screen:2@100,80,220,100" and picker.result() == picker.DialogCode.Accepted

    for keys, spec in (([Qt.Key.Key_Escape], None), ([Qt.Key.Key_Return], "screen:2")):
        p = RegionPicker(shot, 2, (1280, 0, 1280, 800))
        qtbot.addWidget(p)
        p.resize(640, 400)
        p.show()
        QTest.mouseClick(p, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(20, 20))  # a click is no region
        assert p.spec is None and p.isVisible()
        for k in keys:
            QTest.keyClick(p, k)
        assert p.spec == spec and not p.isVisible()  # Esc cancels; Enter without a rectangle: the whole monitor


def test_region_picker_on_a_real_screenshot(qtbot, picture):  # noqa: F811
    from app.live.screen import screenshot

    image, rect = screenshot(1)
    assert rect == (0, 0, 1280, 800) and image.shape == (800, 1280, 3)
    picker = RegionPicker(image, 1, rect)
    qtbot.addWidget(picker)
    picker.resize(1280, 800)
    picker.show()
    x, y, width, height = WINDOW
    QTest.mousePress(picker, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(x, y))
    QTest.mouseMove(picker, QPoint(x + width, y + height))
    QTest.mouseRelease(picker, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(x + width, y + height))
    assert picker.spec == f"screen:1@{x},{y},{width},{height}"
    assert quadrant_colours(image[y : y + height, x : x + width]) == list(COLOURS)  # what it showed is what it picked


def test_pick_screen_on_wayland_is_one_line(monkeypatch, qtbot):
    if not sys.platform.startswith("linux"):
        pytest.skip("the Wayland check is for Linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    with pytest.raises(UserError, match="Wayland") as err:
        pick_screen()
    assert "\n" not in str(err.value)


def test_source_change_resets_the_stabiliser(qtbot, tmp_path):
    from app.live.testing import write_test_video

    video = write_test_video(tmp_path / "clip.mp4", frames=8, size=64, fps=30)
    engine = stand_in(size=64)
    w = make_window(qtbot, tmp_path, lambda *a: engine, source=f"video:{video}")
    qtbot.waitUntil(lambda: engine.runners[0].steps >= 2, timeout=10000)
    steady = w.pipeline.worker.loop.steady
    qtbot.waitUntil(lambda: steady._avg is not None, timeout=5000)
    w.set_source("sketch")
    qtbot.waitUntil(lambda: steady._avg is None, timeout=5000)  # reset on the worker's thread
    time.sleep(0.05)
    w.close()
