"""The window as a client of an engine server (issue 33 item 2): a real EngineServer on loopback with the stand-in
engine, the window connected to it through Model > Connect to engine's path, strokes on the canvas, pictures back,
the MJPEG output following; a wrong token is one line; Model > Use local engine loads the local engine again."""

from __future__ import annotations

import threading
import time
import urllib.request

import cv2
import numpy as np
import pytest

from app.live.loop import LiveLoop
from app.live.settings import LiveSettings
from app.live.testing import stand_in
from app.remote.server import EngineServer
from app.ui.pipeline import wait_idle
from tests.test_app_window import draw, make_window

TOKEN = "k" * 11 + "Q" * 11  # 22 characters: 128 bits' worth


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture()
def server():
    srv = EngineServer(LiveLoop(stand_in(size=64), LiveSettings(prompt="a cat", size=64)), "127.0.0.1:0", token=TOKEN,
                       idle=3.0)
    srv.start()
    yield srv
    srv.stop()


def _jpeg(url: str) -> np.ndarray:
    data = urllib.request.urlopen(url, timeout=5).read()
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_the_window_draws_on_a_remote_engine_and_falls_back_to_the_local_one(qtbot, tmp_path, server):
    loads = []

    def loader(*a):
        loads.append(1)
        return stand_in(size=64)

    w = make_window(qtbot, tmp_path, loader)
    assert len(loads) == 1
    remote_runner = server.loop.engine.runners[0]
    messages: list[str] = []
    w.statusBar().messageChanged.connect(lambda text: messages.append(text) if text else None)

    # a wrong token: one line in the status bar, the local engine keeps running, nothing hangs
    start = time.perf_counter()
    w.actions.engine.connect(server.url, "wrong-" + TOKEN)
    qtbot.waitUntil(lambda: any("token" in m.lower() for m in messages), timeout=15000)
    assert time.perf_counter() - start < 12
    assert w.pipeline.remote is None and w.pipeline.worker.loop is not None
    assert not w.actions.engine.act_local.isEnabled()
    wrong = next(m for m in messages if "token" in m.lower())
    assert "\n" not in wrong

    # nothing listening: one line, too
    messages.clear()
    w.actions.engine.connect("127.0.0.1:9", TOKEN)
    qtbot.waitUntil(lambda: any("127.0.0.1:9" in m and "Connecting" not in m for m in messages), timeout=15000)
    assert w.pipeline.remote is None

    # the right token: the frames go to the server
    server_out = w.actions.output.start_server("127.0.0.1:0", None)
    w.actions.engine.connect(server.url, TOKEN)
    qtbot.waitUntil(lambda: w.pipeline.remote is not None and w.pipeline.remote.state == "live", timeout=20000)
    qtbot.waitUntil(w.actions.engine.act_local.isEnabled, timeout=5000)  # the loaded report, queued to the GUI
    assert w.session.model.device == "remote"
    steps = remote_runner.steps
    draw(w.canvas, [(50, 50), (400, 400), (60, 300)])
    qtbot.waitUntil(lambda: remote_runner.steps > steps and wait_idle(w.pipeline, 5), timeout=10000)
    qtbot.waitUntil(lambda: w.last_result is not None and w.last_result.timings.get("server") is not None,
                    timeout=10000)
    first = w.last_result.output.copy()
    assert first.shape == (64, 64, 3)
    mjpeg_first = _jpeg(server_out.url("/frame.jpg"))
    assert np.abs(mjpeg_first.astype(int) - first.astype(int)).mean() < 6  # the MJPEG output shows the remote picture

    draw(w.canvas, [(500, 60), (80, 420), (420, 200), (100, 100)])  # a new stroke: a new picture, the output follows
    qtbot.waitUntil(lambda: not np.array_equal(w.last_result.output, first) and wait_idle(w.pipeline, 5), timeout=10000)
    qtbot.wait(100)
    mjpeg = _jpeg(server_out.url("/frame.jpg"))
    assert np.abs(mjpeg.astype(int) - w.last_result.output.astype(int)).mean() < 6
    assert np.abs(mjpeg.astype(int) - mjpeg_first.astype(int)).mean() > 0.5

    w.panel.prompt.setText("a castle")  # settings reach the server
    qtbot.waitUntil(lambda: server.loop.settings.prompt.startswith("a castle"), timeout=10000)

    said = threading.Thread(target=w.pipeline.remote.say, args=("engine link lost; reconnecting",))
    said.start()  # the client's notices come from its own thread: queued to the status bar
    said.join()
    qtbot.waitUntil(lambda: w.statusBar().currentMessage() == "engine link lost; reconnecting", timeout=5000)

    w._update_overlay()  # the overlay: the link's state and round trip
    assert any(line.startswith("remote live") and "rtt" in line for line in w.output.overlay), w.output.overlay

    # Model > Use local engine: the link closes, the local model loads again
    w.actions.engine.act_local.trigger()
    qtbot.waitUntil(lambda: len(loads) == 2 and w.pipeline.worker.loop is not None and w.pipeline.remote is None,
                    timeout=20000)
    qtbot.waitUntil(lambda: server.session is None, timeout=10000)  # the server let the client go
    qtbot.waitUntil(lambda: w.session.model is not None and w.session.model.device != "remote", timeout=10000)
    assert not w.actions.engine.act_local.isEnabled()
    steps = remote_runner.steps
    draw(w.canvas, [(60, 500), (500, 500)])
    qtbot.waitUntil(lambda: wait_idle(w.pipeline, 5), timeout=10000)
    qtbot.waitUntil(lambda: w.last_result is not None and "server" not in w.last_result.timings, timeout=10000)
    assert remote_runner.steps == steps
    w._update_overlay()
    assert not any(line.startswith("remote") for line in w.output.overlay)
    w.close()


def test_the_connect_dialog_reads_the_url_and_token(qtbot, tmp_path, monkeypatch):
    from app.ui.dialogs.engine import DEFAULT_URL, ConnectDialog

    monkeypatch.setenv("SDXS_ENGINE_TOKEN", "from-env")
    d = ConnectDialog(None, DEFAULT_URL, "from-env")
    qtbot.addWidget(d)
    d.url.setText("  http://gpu-box:8770 ")
    assert d.values() == ("http://gpu-box:8770", "from-env")


def test_the_window_lists_the_servers_adapters_and_loras_and_remembers_the_url_not_the_token(qtbot, tmp_path, tiny_base):
    from tests.tiny_lora import save_lora

    engine = stand_in(size=64)
    ink = str(save_lora(tiny_base, tmp_path / "ink.safetensors", "kohya", rank=4, seed=0))
    lora = engine.add_lora(ink, 0.7)
    srv = EngineServer(LiveLoop(engine, LiveSettings(prompt="a cat", size=64)), "127.0.0.1:0", token=TOKEN, idle=3.0)
    srv.start()
    try:
        w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
        assert w.actions.engine.default_url() == "http://127.0.0.1:8770"  # nothing remembered yet
        w.actions.engine.connect(srv.url, TOKEN)
        qtbot.waitUntil(lambda: w.pipeline.remote is not None and w.actions.engine.act_local.isEnabled(), timeout=20000)
        adapters, styles = w.panel.adapters, w.panel.styles
        qtbot.waitUntil(lambda: list(adapters.rows) == ["fake"] and list(styles.rows) == [lora], timeout=5000)
        for group in (adapters, styles):  # the server's: no add or remove here, one line says why
            assert not group.add_button.isEnabled() and group.remote_note.isVisibleTo(group)
            assert "where it runs" in group.remote_note.text() and "\n" not in group.remote_note.text()
            assert not any(row.remove.isEnabled() for row in group.rows.values())
        assert abs(styles.rows[lora].weight - 0.7) < 1e-6

        adapters.rows["fake"].number.setValue(0.35)  # as a user types them: they go to the server with the next frame
        styles.rows[lora].number.setValue(-0.4)
        draw(w.canvas, [(50, 50), (400, 400)])
        qtbot.waitUntil(lambda: srv.loop.settings.adapters.get("fake") == 0.35 and srv.loop.settings.loras.get(ink) == -0.4,
                        timeout=10000)
        assert engine.adapter_strengths["fake"] == 0.35 and abs(engine.lora_weights[lora] + 0.4) < 1e-6

        w.actions.engine.act_local.trigger()  # local again: the lists are the local engine's, add offered again
        qtbot.waitUntil(lambda: w.pipeline.remote is None and adapters.add_button.isEnabled(), timeout=20000)
        assert not adapters.remote_note.isVisibleTo(adapters) and styles.add_button.isEnabled()
        w.close()  # saves the settings
        text = (tmp_path / "settings.ini").read_text()
        assert srv.url in text and TOKEN not in text
        w2 = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
        assert w2.saved.engine_url == srv.url and w2.actions.engine.default_url() == srv.url  # offered next time
        w2.close()
    finally:
        srv.stop()
