"""The window (pytest-qt, offscreen): canvas, frame path, output with a stand-in engine and a tiny real model,
camera failure, recording, snapshot, settings, shutdown."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from app.live.loop import Frame
from app.live.testing import count_frames, stand_in, write_test_video
from app.ui.panel.modelpick import Choice
from app.ui.pipeline import Pipeline, wait_idle
from app.ui.session.settings import Persisted, open_settings
from app.ui.window import MainWindow, StartOptions
from models.runners.standin import StandInRunner


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """The window's worker leaves a CPU core to the GUI (torch.set_num_threads); restore it for other tests."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


class Recording(StandInRunner):
    """The stand-in runner, remembering the frames it was given (by their top-left pixel)."""

    def __init__(self, delay=0.0):
        super().__init__(1000 * delay)
        self.seen: list[int] = []

    def step(self, recipe, p, frames):
        self.seen.append(int(frames[0][0, 0, 0]))  # the loop gives one condition per adapter
        return super().step(recipe, p, frames)


def recording(delay=0.0):
    """The real engine on tiny parts on a Recording runner: (engine, runner)."""
    runner = Recording(delay)
    return stand_in(size=64).use_runner(runner), runner


def make_window(qtbot, tmp_path, loader=None, model="stand-in", source="sketch", adapter=None):
    w = MainWindow(open_settings(str(tmp_path / "settings.ini")), loader)
    w.snapshot_dir = w.video_dir = tmp_path
    qtbot.addWidget(w)
    w.resize(1100, 700)
    w.show()
    w.start(StartOptions(Choice(model, adapter), source, "a test", 64))
    qtbot.waitUntil(lambda: w.pipeline.worker.loop is not None, timeout=60000)
    return w


def draw(canvas, points):
    canvas.stroke_to(QPointF(*points[0]), start=True)
    for p in points[1:]:
        canvas.stroke_to(QPointF(*p))
    canvas.end_stroke()


def test_canvas_strokes_change_the_frame_and_undo_redo(qtbot):
    from app.ui.canvas.canvas import SketchCanvas

    c = SketchCanvas(128)
    qtbot.addWidget(c)
    blank = c.frame()
    assert blank.shape == (128, 128, 3) and blank.min() == 255
    with qtbot.waitSignal(c.changed):
        draw(c, [(10, 10), (100, 100)])
    drawn = c.frame()
    assert drawn.min() == 0 and (drawn < 128).sum() > 100
    c.eraser = True
    draw(c, [(10, 10), (100, 100)])
    assert c.frame().min() > 0  # erased
    assert c.undo() and np.array_equal(c.frame(), drawn)
    assert c.undo() and np.array_equal(c.frame(), blank)
    assert c.redo() and np.array_equal(c.frame(), drawn)
    c.clear()
    assert c.frame().min() == 255
    c.set_drawing(np.zeros((50, 80, 3), np.uint8))
    assert c.frame().max() == 0


def test_frame_path_delivers_only_the_newest_while_busy(qtbot):
    engine, runner = recording(delay=0.3)
    p = Pipeline(lambda *a: engine)
    from app.live.session import ModelRequest

    p.load(ModelRequest(model="stand-in"))
    qtbot.waitUntil(lambda: p.worker.loop is not None and wait_idle(p, 5), timeout=5000)
    runner.seen.clear()
    frames = [Frame(np.full((64, 64, 3), v, np.uint8), time.perf_counter(), True) for v in (10, 20, 30, 40)]
    p.offer(frames[0])
    qtbot.waitUntil(lambda: runner.seen == [10], timeout=5000)  # taken at once: the path was idle
    for f in frames[1:]:
        p.offer(f)  # in flight: kept, newest wins
    assert wait_idle(p, 10)
    assert runner.seen == [10, 40] and p.path.dropped == 2
    assert p.stop()


def test_garbage_is_collected_on_the_gui_thread_while_a_worker_lives(qtbot):
    """A collection on the worker's thread can free GUI-thread Qt wrappers (a segfault seen in CI): while a
    pipeline lives, automatic collection is off and a GUI-thread timer collects; afterwards it is back on."""
    import gc
    import weakref

    assert gc.isenabled()
    p = Pipeline(lambda *a: recording()[0])
    assert not gc.isenabled()

    class Node:
        pass

    gen0 = gc.get_threshold()[0]
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
    gone = weakref.ref(a)
    del a, b
    try:
        junk = [[Node()] for _ in range(gen0 + 10)]  # enough live allocations to make generation 0 due
        assert gone() is not None  # nothing collected it on this (allocating) thread
        qtbot.waitUntil(lambda: gone() is None, timeout=5000)  # the GUI-thread timer did
        del junk
    finally:
        assert p.stop()
    assert gc.isenabled()


def test_window_with_stand_in_engine(qtbot, tmp_path):
    engine = recording()[0]
    w = make_window(qtbot, tmp_path, lambda *a: engine)
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=5000)
    first = w.last_result.output.copy()
    n = engine.runners[0].steps
    draw(w.canvas, [(50, 50), (400, 400), (60, 300)])
    qtbot.waitUntil(lambda: engine.runners[0].steps > n and wait_idle(w.pipeline, 5), timeout=5000)
    assert not np.array_equal(w.last_result.output, first)  # the output follows the strokes
    assert w.output.image is not None and w.output.image.width() == 64
    w.panel.prompt.setText("a castle")  # applies on the next frame
    qtbot.waitUntil(lambda: engine.prompt == "a castle" and wait_idle(w.pipeline, 5), timeout=5000)
    w.panel.preset.setCurrentText("Watercolor")
    qtbot.waitUntil(lambda: engine.prompt.startswith("a castle, watercolor"), timeout=5000)
    w._update_overlay()
    assert "fps" in w.output.overlay[0] and "latency" in w.output.overlay[0]
    path = w.actions.snapshot()
    assert path is not None and path.suffix == ".png" and path.stat().st_size > 0
    w.close()


def test_window_with_tiny_real_model(qtbot, tmp_path, tiny_base, tiny_controlnet):
    w = make_window(qtbot, tmp_path, None, tiny_base, adapter=tiny_controlnet)
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=60000)
    assert w.pipeline.info["controlnet"] == tiny_controlnet and w.pipeline.info["size"] == 64
    out = w.last_result.output
    assert out.shape == (64, 64, 3) and out.std() > 1  # a real image, not a blank
    draw(w.canvas, [(30, 30), (300, 200)])
    qtbot.waitUntil(lambda: w.pipeline.frames >= 2, timeout=30000)
    assert "cpu" in w.panel.readout.text()
    w.close()
    assert not w.pipeline.thread.isRunning()


def test_video_source_and_recording(qtbot, tmp_path):
    video = write_test_video(tmp_path / "clip.mp4", frames=8, size=64, fps=60)
    engine = recording()[0]
    w = make_window(qtbot, tmp_path, lambda *a: engine, source=f"video:{video}")
    qtbot.waitUntil(lambda: engine.runners[0].steps >= 3, timeout=10000)
    qtbot.waitUntil(lambda: w.feed.inset is not None, timeout=5000)  # the condition preview, once the GUI shows a result
    w.panel.record_side.setChecked(True)
    w.actions.act_record.setChecked(True)
    start = w.pipeline.frames
    qtbot.waitUntil(lambda: w.pipeline.frames >= start + 12, timeout=10000)  # past a loop of the video
    with qtbot.waitSignal(w.pipeline.recorded, timeout=5000) as rec:
        w.actions.act_record.setChecked(False)
    path, frames = rec.args
    assert frames >= 8 and count_frames(path) == frames  # every rendered frame, once
    import cv2

    cap = cv2.VideoCapture(path)
    assert cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 128  # side by side
    cap.release()
    assert w.capture.loops >= 1
    w.close()


def test_camera_failure_shows_message_and_retry(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64), source="camera:12")
    qtbot.waitUntil(lambda: bool(w.feed.message), timeout=5000)
    assert "camera 12" in w.feed.message and w.feed.retry_button.isVisible()
    qtbot.mouseClick(w.feed.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.feed.retry_button.isVisible(), timeout=5000)  # failed again, still no crash
    assert "camera 12" in w.feed.message
    w.set_source("sketch")  # the window keeps working
    assert w.stack.currentWidget() is w.canvas_page
    w.close()


def test_shutdown_stops_everything_within_two_seconds(qtbot, tmp_path):
    video = write_test_video(tmp_path / "clip.mp4", frames=8, size=64, fps=30)
    before = threading.active_count()
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64, delay=0.4), source=f"video:{video}")
    qtbot.waitUntil(lambda: w.pipeline.path.busy, timeout=5000)  # a slow frame in flight
    capture = w.capture
    t0 = time.perf_counter()
    w.close()
    assert time.perf_counter() - t0 < 2.0
    assert not w.pipeline.thread.isRunning() and not capture.alive
    assert threading.active_count() <= before


def test_settings_persist(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    w.panel.prompt.setText("a lighthouse at dusk")
    w.panel.seed.setValue(1234)
    w.panel.strength.setValue(55)
    w.panel.preset.setCurrentText("Anime")
    w.set_view("output")
    w.close()
    saved = Persisted.load(open_settings(str(tmp_path / "settings.ini")))
    live = saved.live
    assert (live.prompt, live.seed, live.strength, live.style, saved.view) == ("a lighthouse at dusk", 1234, 0.55, "Anime", "output")
    assert saved.model == "stand-in" and saved.source == "sketch" and saved.geometry
    w2 = MainWindow(open_settings(str(tmp_path / "settings.ini")), lambda *a: stand_in(size=64))
    qtbot.addWidget(w2)
    assert w2.panel.prompt.text() == "a lighthouse at dusk" and w2.panel.seed.value() == 1234
    assert not w2.stack.isVisibleTo(w2)  # output only
    w2.shutdown()


def test_load_failure_is_a_message(qtbot, tmp_path):
    w = MainWindow(open_settings(str(tmp_path / "s.ini")))
    qtbot.addWidget(w)
    w.show()
    w.start(StartOptions(Choice(str(tmp_path / "no-such-model")), "sketch", "x", 64))
    qtbot.waitUntil(lambda: "neither" in w.output.message or "no-such-model" in w.output.message, timeout=30000)
    qtbot.waitUntil(lambda: not w.busy_bar.isVisible(), timeout=5000)
    w.close()


def test_startup_choice_without_models(monkeypatch):
    import app.ui.panel.modelpick as mp

    monkeypatch.setattr(mp, "in_hub_cache", lambda *a: False)
    monkeypatch.setattr(mp, "demo_available", lambda: (False, False))
    c = mp.startup_choice(None, None)
    assert c.model is None and "model folder" in c.notice and not c.offer_download  # HF_HUB_OFFLINE=1 in tests
    monkeypatch.setattr(mp, "demo_available", lambda: (True, True))
    c = mp.startup_choice(None, None)
    assert (c.model, c.controlnet) == ("demo", "demo") and "not SDXS quality" in c.notice
    monkeypatch.setattr(mp, "in_hub_cache", lambda *a: True)
    assert mp.startup_choice(None, None).model == mp.SDXS
    assert mp.startup_choice("x", "y", "saved").model == "x"
    assert mp.startup_choice(None, None, "saved", "a").controlnet == "a"
    from models.loading import DEMO_DIR

    assert mp.DEMO_DIR == DEMO_DIR


@pytest.mark.parametrize("cancel", [False, True])
def test_download_progress_adapter(qtbot, cancel):
    from app.ui.worker import Worker, progress_class
    from models.errors import Cancelled

    w = Worker()
    ev = threading.Event()
    cls = progress_class(w, ev)
    with qtbot.waitSignal(w.progress) as sig:
        bar = cls(total=1000, desc="Downloading bytes")
        if cancel:
            ev.set()
            with pytest.raises(Cancelled):
                bar.update(10)
            w.progress.emit("x", 0.0, 0.0)
        else:
            bar.update(250)
    if not cancel:
        assert sig.args == ["Downloading bytes", 250.0, 1000.0]


def test_close_while_loading_does_not_hang_or_crash(qtbot, tmp_path):
    def slow_loader(*a):
        time.sleep(3.0)  # a model load cannot be interrupted
        return stand_in(size=64)

    w = MainWindow(open_settings(str(tmp_path / "s.ini")), slow_loader)
    qtbot.addWidget(w)
    w.show()
    w.start(StartOptions(Choice("slow"), "sketch", "x", 64))
    qtbot.waitUntil(lambda: w.busy_bar.isVisible(), timeout=2000)
    t0 = time.perf_counter()
    w.close()
    assert time.perf_counter() - t0 < 2.5  # the window goes at once; the load finishes in the background
    from app.ui.pipeline import finish_all

    finish_all()
    assert not w.pipeline.thread.isRunning()


def test_void_qt_calls_do_not_drain_none():
    import sys

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    for _ in range(20000):  # each returned None without a reference in shiboken6 6.12 on Python 3.11
        app.processEvents()
    assert sys.version_info >= (3, 12) or sys.getrefcount(None) > 1 << 59


def test_pause_fullscreen_and_trace(qtbot, tmp_path):
    engine = recording()[0]
    w = make_window(qtbot, tmp_path, lambda *a: engine)
    qtbot.waitUntil(lambda: w.last_result is not None and wait_idle(w.pipeline, 5), timeout=5000)
    w.actions.act_pause.setChecked(True)
    n = engine.runners[0].steps
    draw(w.canvas, [(10, 10), (200, 300)])
    assert wait_idle(w.pipeline, 5) and engine.runners[0].steps == n and w.output.message == "Paused"
    w.actions.act_pause.setChecked(False)  # resuming renders what was drawn meanwhile
    qtbot.waitUntil(lambda: engine.runners[0].steps == n + 1, timeout=5000)
    w.actions.act_full.trigger()
    assert w.actions.fullscreen is not None and w.actions.fullscreen.isVisible() and w.actions.fullscreen.view.image is not None
    qtbot.keyClick(w.actions.fullscreen, Qt.Key.Key_Escape)
    assert w.actions.fullscreen is None
    before = w.canvas.frame()
    w.canvas.set_trace(np.zeros((40, 40, 3), np.uint8))
    assert np.array_equal(w.canvas.frame(), before)  # the tracing picture is shown, not sent
    from models.imageio import write_rgb

    write_rgb(tmp_path / "photo.png", np.full((30, 30, 3), 90, np.uint8))
    w.actions.files.open_path(str(tmp_path / "photo.png"))  # dropped on the window while sketching: traced
    assert w.canvas.trace is not None and w.source_spec == "sketch"
    w.actions.files.open_path(str(write_test_video(tmp_path / "drop.mp4", frames=4, size=48)))  # a video becomes the source
    assert w.source_spec.startswith("video:") and w.stack.currentWidget() is w.feed
    w.set_view("output")
    assert not w.stack.isVisible() and w.actions.act_output.isChecked()
    w.close()


def test_offered_download_failure_falls_back(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from app.ui.panel.modelpick import SDXS
    from models.errors import UserError

    def loader(options, progress, *rest):
        if options.model == SDXS:
            bar = progress(total=100, desc="Downloading bytes")
            bar.update(40)  # the dialog shows progress, then the network fails
            raise UserError(f"could not download model {options.model!r}: connection refused")
        return stand_in(size=64)

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    w = MainWindow(open_settings(str(tmp_path / "s.ini")), loader)
    qtbot.addWidget(w)
    w.show()
    w.start(StartOptions(Choice("fallback", None, "Small demo model, not SDXS quality.", offer_download=True), "sketch", "x", 64))
    assert w.models.download_dialog is not None
    qtbot.waitUntil(lambda: w.loaded_model == "fallback", timeout=10000)
    assert w.banner.text().endswith(": connection refused. Using the demo model instead.")  # each sentence ends in a stop
    assert w.models.download_dialog is None  # closed when loading ended
    w.close()


def test_recording_that_cannot_start(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    w.actions.act_record.setChecked(True)
    assert w.pipeline.recording
    w.actions.act_record.setChecked(False)
    w.pipeline.start_recording(str(tmp_path / "missing" / "x.mp4"), 10.0, False)
    w.actions.act_record.setChecked(True)
    qtbot.waitUntil(lambda: not w.pipeline.recording and not w.actions.act_record.isChecked(), timeout=5000)
    assert "does not exist" in w.statusBar().currentMessage() or "Recording stopped" in w.statusBar().currentMessage()
    w.close()


def test_camera_picker(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    w.panel.camera.setCurrentText("3: Some camera")
    assert w.panel.camera_index() == 3
    w.set_source("camera:5")
    assert w.panel.camera_index() == 5 and w.panel.source.currentData() == "camera"
    w.close()


def test_remembered_stage_timings_work_on_the_fast_path(qtbot, tiny_base, tiny_controlnet, sketch_image):
    """Per-stage timings remembered on: the first frames after a load show stages, though the worker picks a
    fast path at load (the loop used to be built before it, so the overlay showed no stages until toggled)."""
    from app.live.session import ModelRequest
    from app.live.settings import LiveSettings
    from app.ui.worker import Worker

    w = Worker()
    w.configure(LiveSettings(size=64, profile=True))
    with qtbot.waitSignal(w.loaded, timeout=60000):
        w.load(ModelRequest(model=tiny_base, adapters=(tiny_controlnet,), device="cpu", dtype="float32", fast="fused"))
    result = w.loop.process(Frame(sketch_image, time.perf_counter(), True))  # as the frame path runs it
    assert {"unet", "decode"} <= set(result.timings)
    w.configure(LiveSettings(size=64, profile=False))
    assert w.loop.engine.fast == "fused"  # and the fast path comes back when timings are turned off


def test_every_live_setting_round_trips_through_qsettings(tmp_path):
    """The window persists the LiveSettings value itself: nested, optional (steady off) and mapping fields too."""
    from dataclasses import replace

    from app.live.settings import ConditionSettings, LiveSettings

    live = LiveSettings(prompt="a fox", style="Anime", seed=9, strength=1.3, size=384, transition=0.0, steady=None,
                        condition=ConditionSettings(mode="canny", low=30, high=90, sigma=3.0, mirror=True),
                        loras={"style_anime": 0.6, "/path/with:colon.safetensors": -1.5})
    saved = Persisted(live=live, model="demo", seed_locked=True)
    saved.save(open_settings(str(tmp_path / "s.ini")))
    again = Persisted.load(open_settings(str(tmp_path / "s.ini")))
    assert again.live == live and again.model == "demo" and again.seed_locked
    from app.live.steady import SteadySettings

    on = replace(live, steady=SteadySettings(smooth=0.4, blend=0.2))
    Persisted(live=on).save(open_settings(str(tmp_path / "s.ini")))
    assert Persisted.load(open_settings(str(tmp_path / "s.ini"))).live == on
