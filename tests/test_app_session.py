"""The window plays one session (app.live.session): its widgets bind both ways, a write from another thread
(OSC's, MIDI's) moves the widget on the GUI thread, the settings saved are the session's and come back,
the seed box takes any whole number, and /sdxs/fps is answered from a published value."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from app.live.session import LoadedLora
from app.live.testing import stand_in, write_test_video
from tests.test_app_window import make_window

pytestmark = pytest.mark.timeout(120)


def test_widgets_write_the_session_and_follow_it(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    s, panel = w.session, w.panel
    panel.strength.setValue(130)  # as a user drags it
    assert s.live.strength == 1.3
    panel.mirror.setChecked(True)
    panel.low.setValue(40)
    panel.condition.setCurrentIndex(panel.condition.findData("canny"))
    assert (s.live.condition.mirror, s.live.condition.low, s.live.condition.mode) == (True, 40, "canny")
    panel.keep_colours.setChecked(False)
    assert s.live.keep_colours == 0.0
    qtbot.waitUntil(lambda: w.pipeline.worker.loop.settings.condition.low == 40, timeout=5000)  # and the engine

    def elsewhere():  # as OSC's or MIDI's thread writes
        s.set({"strength": 0.4, "transition": 12.5, "condition.high": 90, "keep_colours": 0.6, "prompt": "a harbour",
               "seed": 2**64 + 9, "fill_shapes": False, "paused": True})

    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()
    qtbot.waitUntil(lambda: panel.strength.value() == 40, timeout=5000)  # queued to the GUI thread
    assert panel.transition.value() == 12.5 and panel.high.value() == 90 and panel.prompt.text() == "a harbour"
    assert panel.keep_colours.isChecked() and panel.keep_strength.value() == 60 and panel.keep_label.text() == "0.60"
    assert panel.seed.value() == 9 and not panel.fill_shapes.isChecked()
    assert w.actions.act_pause.isChecked() and w.output.message == "Paused"
    w.actions.act_pause.trigger()  # the menu writes the session too
    assert not s.paused
    qtbot.waitUntil(lambda: w.pipeline.worker.loop.settings.prompt == "a harbour", timeout=5000)
    w.close()


def test_the_seed_box_takes_any_whole_number(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    box = w.panel.seed
    for typed, kept in ((str(2**63 + 5), 2**63 + 5), ("-1", 2**64 - 1), (str(2**64 * 3 + 7), 7)):
        box.lineEdit().selectAll()
        qtbot.keyClicks(box.lineEdit(), typed)
        qtbot.keyClick(box.lineEdit(), "\r")  # Enter takes it
        assert w.session.live.seed == kept and box.text() == str(kept), typed
    qtbot.waitUntil(lambda: w.pipeline.worker.loop.settings.seed == 7, timeout=5000)
    qtbot.keyClicks(box.lineEdit(), "x")  # no digit: refused by the box
    assert box.text() == "7"
    w.session.roll_seed()
    assert box.value() == w.session.live.seed
    w.close()


def test_saved_settings_are_the_session_and_come_back(qtbot, tmp_path, tiny_base):
    from tests.tiny_lora import save_lora

    ink = str(save_lora(tiny_base, tmp_path / "ink.safetensors", "kohya", rank=4, seed=0))  # loads on the stand-in's UNet
    def loader(options, progress, busy, before_warm_up):  # as models.opening does: the remembered LoRAs first
        engine = stand_in(size=64)
        before_warm_up(engine)
        return engine

    w = make_window(qtbot, tmp_path, loader)
    s = w.session
    s.set({"prompt": "a lighthouse", "seed": 2**64 - 2, "strength": 0.75, "transition": 30.0, "keep_colours": 0.0,
           "condition.sigma": 12, "condition.mode": "sketch", "seed_locked": True, "loras": {ink: -0.5}})
    qtbot.waitUntil(lambda: [lo.spec for lo in s.loras_loaded] == [ink], timeout=60000)  # the engine holds it
    live = s.live
    w.close()
    w2 = make_window(qtbot, tmp_path, loader)
    qtbot.waitUntil(lambda: [lo.spec for lo in w2.session.loras_loaded] == [ink], timeout=60000)  # loaded again
    back = w2.session.live
    for field in ("seed", "strength", "transition", "keep_colours", "condition", "loras"):
        assert getattr(back, field) == getattr(live, field), field
    assert back.prompt == "a test"  # the command line's --prompt wins over the remembered one
    assert w2.session.seed_locked and not w2.panel.seed.isEnabled() and not w2.panel.new_seed.isEnabled()
    assert w2.panel.seed.value() == 2**64 - 2 and w2.panel.sigma.value() == 12 and not w2.panel.keep_colours.isChecked()
    w2.close()


def test_osc_fps_is_answered_from_a_published_value(qtbot, tmp_path):
    """The OSC thread reads session.fps (a float the HUD publishes), never the GUI thread's deque of times."""
    pythonosc = pytest.importorskip("pythonosc")  # noqa: F841
    from app.live.osc import OscControl
    from app.ui.session.osc_link import OscLink

    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    link = OscLink(w.session, OscControl("127.0.0.1:0"), w)
    w.shown_times.extend([1.0, 2.0])  # what the fps property would iterate
    w.session.set(fps=23.5)
    assert link.osc.fps() == 23.5
    w._update_overlay()
    assert link.osc.fps() == w.session.fps == w.fps  # the HUD publishes what it shows
    link.close()
    w.close()


def test_a_lora_weight_from_midi_moves_its_row(qtbot, tmp_path):
    mido = pytest.importorskip("mido")
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    w.panel.styles.set_loaded([("ink", "hub/ink", 1.0)])
    assert w.session.loras_loaded == (LoadedLora(name="ink", spec="hub/ink", weight=1.0),)
    link = w.midi
    link.why = ""
    link.learn("lora/ink")
    link.feed(mido.Message("control_change", channel=0, control=30, value=1))
    link.feed(mido.Message("control_change", channel=0, control=30, value=127))
    assert w.session.live.loras == {"hub/ink": 4.0} and w.panel.styles.rows["hub/ink"].number.value() == 4.0
    link.feed(mido.Message("control_change", channel=0, control=30, value=0))
    assert w.panel.styles.rows["hub/ink"].weight == -4.0
    w.close()


def test_the_model_pickers_and_output_boxes_are_the_session_and_come_back(qtbot, tmp_path):
    """The model, device, dtype and backend pickers are the session's ModelRequest both ways, Load loads that
    request, Overlay (box and View menu) and side by side are session fields, and all of them are saved."""
    seen = []

    def loader(options, *a):  # what the worker was asked to open
        seen.append(options)
        return stand_in(size=64)

    w = make_window(qtbot, tmp_path, loader)
    s, panel = w.session, w.panel
    panel.device.setCurrentText("cpu")  # as a user picks it
    panel.dtype.setCurrentText("float32")
    assert (s.request.model, s.request.device, s.request.dtype) == ("stand-in", "cpu", "float32")
    s.set(request=replace(s.request, model="stand-in-2"))  # anyone writing the request moves the picker
    assert panel.model.currentText() == "stand-in-2"
    w.load_from_panel()  # the Load button: the session's request, not the widgets', is what loads
    qtbot.waitUntil(lambda: s.model is not None and s.model.model == "stand-in-2", timeout=20000)
    assert (seen[-1].model, seen[-1].device, seen[-1].dtype) == ("stand-in-2", "cpu", "float32")
    assert w.pipeline.worker.request == s.request
    w.actions.act_overlay.trigger()  # View > Overlay (Ctrl+I): the session, the panel's box and the output follow
    assert s.get("overlay") is False and not panel.overlay.isChecked() and not w.output.show_overlay
    panel.record_side.setChecked(True)
    assert s.get("record_side") is True
    w.close()
    w2 = make_window(qtbot, tmp_path, loader)
    p2 = w2.panel
    assert (p2.device.currentText(), p2.dtype.currentText()) == ("cpu", "float32")
    assert (w2.session.request.device, w2.session.request.dtype) == ("cpu", "float32")
    assert not p2.overlay.isChecked() and not w2.actions.act_overlay.isChecked() and not w2.output.show_overlay
    assert p2.record_side.isChecked() and w2.session.get("record_side") is True
    w2.close()


def test_actions_need_only_what_they_are_given(qtbot, tmp_path):
    """Actions runs on a bare host widget with the session's bridge, a Pipeline, a ModelLink, a canvas page and
    an adapter list (no MainWindow): its commands write the session and its answers come out as signals."""
    from PySide6.QtWidgets import QMainWindow, QToolBar

    from app.live.session import Session
    from app.ui.actions import Actions, Folders
    from app.ui.canvas.canvas import SketchCanvas
    from app.ui.canvas.canvas_tools import CanvasPage
    from app.ui.panel.adapters import AdapterList
    from app.ui.pipeline import Pipeline
    from app.ui.session.bindings import SessionBridge
    from app.ui.session.model_link import ModelLink
    from app.ui.session.settings import Persisted

    host = QMainWindow()
    qtbot.addWidget(host)
    bridge = SessionBridge(Session(), host)
    pipeline = Pipeline(lambda *a: stand_in(size=64), host)
    entries = []
    a = Actions(host, host.menuBar(), QToolBar(), bridge=bridge, pipeline=pipeline,
                models=ModelLink(bridge, pipeline, Persisted(), host), canvas_page=CanvasPage(SketchCanvas(64)),
                adapters=AdapterList(bridge), folders=Folders(snapshots=tmp_path, videos=tmp_path), qsettings=None,
                engine_entries=lambda menu: entries.append(menu) or menu)
    said, sources = [], []
    a.said.connect(lambda text, ms: said.append(text))
    a.sourceRequested.connect(sources.append)
    assert a.snapshot() is None and said == ["Nothing to save yet: no output so far"]
    a.act_pause.trigger()
    a.act_overlay.trigger()
    assert bridge.session.paused and bridge.session.get("overlay") is False
    a.files.open_path(str(write_test_video(tmp_path / "clip.mp4", frames=2, size=32)))
    assert sources == [f"video:{tmp_path / 'clip.mp4'}"]
    assert [m.title() for m in entries] == ["&Model"]  # the engine's entries go into the Model menu
    assert "O&utput" in [m.title() for m in host.menuBar().findChildren(type(entries[0]))]  # Actions made the Output menu
    pipeline.stop(2000)
