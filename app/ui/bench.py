"""The window under measurement for `python main.py bench ui` and `bench endurance`: a stroke drawn on the
canvas through mouse events, and a looping video through the window's pipeline for thousands of frames.
What they measure and how they pass is told, and reported, in app/cli/bench/ui.py."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from models.errors import UserError


def _app():
    from app.ui.qtapp import application, has_display

    if not has_display():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # measured without a screen; with DISPLAY set, on the real one
    return application()


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else 0.0


def _close(w) -> None:
    from app.ui.pipeline import finish_all

    w.close()
    finish_all()  # a frame or load still running past the close: let it end before Python exits


def _window(loader, settings_dir: str):
    from app.ui.session.settings import open_settings
    from app.ui.window import MainWindow

    w = MainWindow(open_settings(str(Path(settings_dir) / "bench.ini")), loader)
    w.snapshot_dir = w.video_dir = Path(settings_dir)
    w.resize(1200, 720)
    w.show()
    return w


def _spin(app, seconds: float, until=None) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and not (until and until()):
        app.processEvents()
        time.sleep(0.001)


def measure_ui(args: argparse.Namespace) -> dict:
    """A stroke drawn at 60 Hz for --ui-seconds; the repaint intervals and what the frame path was offered and dropped."""
    import math

    from PySide6.QtCore import QObject, QPointF, Qt, Slot
    from PySide6.QtGui import QMouseEvent

    from app.live.testing import stand_in
    from app.ui.panel.modelpick import Choice
    from app.ui.window import StartOptions

    class Repaints(QObject):
        def __init__(self):
            super().__init__()
            self.times: list[float] = []

        @Slot(float)
        def on_paint(self, t: float) -> None:
            self.times.append(t)

    app = _app()
    delay = args.ui_delay
    size = args.size or 256
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:  # the real engine instead of the stand-in: its Python work competes for the GIL
            w = _window(None, tmp)
            w.panel.device.setCurrentText(args.device)
            w.panel.dtype.setCurrentText(args.dtype)
            w.start(StartOptions(Choice(args.model, tuple(args.controlnet) or None), "sketch", "bench", size))
        else:
            w = _window(lambda *a: stand_in(size, delay), tmp)
            w.start(StartOptions(Choice("stand-in engine"), "sketch", "bench", size))
        _spin(app, 300.0, lambda: w.pipeline.worker.loop is not None and not w.pipeline.path.busy)
        c = w.canvas
        rec = Repaints()
        c.painted.connect(rec.on_paint)
        sent0, done0 = w.pipeline.sent, w.pipeline.frames

        def mouse(kind, x: float, y: float) -> None:
            pos = QPointF(x, y)
            buttons = Qt.MouseButton.NoButton if kind == QMouseEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
            app.sendEvent(c, QMouseEvent(kind, pos, c.mapToGlobal(pos), Qt.MouseButton.LeftButton, buttons, Qt.KeyboardModifier.NoModifier))

        cx, cy, r = c.width() / 2, c.height() / 2, min(c.width(), c.height()) / 3
        mouse(QMouseEvent.Type.MouseButtonPress, cx + r, cy)
        t0 = time.perf_counter()
        moves = 0
        while time.perf_counter() - t0 < args.ui_seconds:  # one mouse move per 1/60 s, events in between
            moves += 1
            a = moves / 20
            mouse(QMouseEvent.Type.MouseMove, cx + r * math.cos(a) * (0.6 + 0.4 * math.sin(a / 3)), cy + r * math.sin(a))
            _spin(app, max(0.0, t0 + moves / 60 - time.perf_counter()))
        mouse(QMouseEvent.Type.MouseButtonRelease, cx, cy)
        _spin(app, delay * 2 + 0.2)
        times = [t for t in rec.times if t0 <= t <= t0 + args.ui_seconds]
        gaps = [1000 * (b - a) for a, b in zip(times, times[1:])]
        data = {
            "kind": "ui", "engine_delay_s": delay, "seconds": args.ui_seconds, "mouse_moves": moves,
            "repaints": len(times), "repaint_interval_ms": {"p50": _pct(gaps, 0.5), "p95": _pct(gaps, 0.95), "max": max(gaps, default=0.0)},
            "engine": args.model or f"stand-in sleeping {delay} s", "size": size,
            "frames_sent": w.pipeline.sent - sent0, "engine_frames": w.pipeline.frames - done0, "relay_dropped": w.pipeline.path.dropped,
            "platform": app.platformName(), "pass": bool(gaps) and _pct(gaps, 0.95) <= 33.0,
        }
        _close(w)
    return data


def _usage(readings: int = 5) -> dict:
    """RSS, threads and open files; threads and files as the least of a few readings 20 ms apart, since
    OpenCV starts and joins decoder threads each time the looping video reopens."""
    import psutil

    proc = psutil.Process()
    threads, fds = [], []
    for i in range(readings):
        if i:
            time.sleep(0.02)
        threads.append(proc.num_threads())
        fds.append(len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else proc.num_fds())
    return {"rss_mb": proc.memory_info().rss / 2**20, "threads": min(threads), "fds": min(fds)}


def measure_endurance(args: argparse.Namespace) -> dict:
    """--frames frames of a looping video through the window; memory, threads and open files along the way."""
    import torch

    from app.live.testing import write_test_video
    from app.ui.panel.modelpick import Choice
    from app.ui.window import StartOptions

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    total = 10000 if args.frames == 20 else args.frames  # 20 is bench's default for the engine kind
    warm = min(args.endurance_warmup, max(total // 2, 1))
    app = _app()
    with tempfile.TemporaryDirectory() as tmp:
        model, controlnet = args.model, (tuple(args.controlnet) or None)
        if not model:
            from models.loading import quiet_libraries
            from models.tiny import save_base, save_controlnet

            quiet_libraries()
            save_base(Path(tmp) / "base", "tiny", seed=0)
            save_controlnet(Path(tmp) / "controlnet", Path(tmp) / "base", "tiny", seed=1)
            model, controlnet = str(Path(tmp) / "base"), str(Path(tmp) / "controlnet")
        video = write_test_video(Path(tmp) / "loop.mp4", frames=30, size=128, fps=60)
        w = _window(None, tmp)
        w.panel.device.setCurrentText(args.device)
        w.panel.dtype.setCurrentText(args.dtype)
        w.start(StartOptions(Choice(model, controlnet), f"video:{video}", "endurance", args.size or 64))
        samples = []
        t0 = time.perf_counter()
        next_mark = warm
        while w.pipeline.frames < total:
            _spin(app, 0.05)
            if w.pipeline.frames >= next_mark:
                samples.append({"frames": w.pipeline.frames, "seconds": time.perf_counter() - t0, **_usage()})
                print(f"  {samples[-1]['frames']} frames  rss {samples[-1]['rss_mb']:.1f} MB  threads {samples[-1]['threads']}  "
                      f"fds {samples[-1]['fds']}", file=sys.stderr)
                next_mark += 500 if next_mark >= warm else warm
            if w.capture is not None and w.capture.state == "failed":
                raise UserError(w.capture.error)
            if not w.pipeline.worker.loop and time.perf_counter() - t0 > 300:
                raise UserError("the model did not load in 5 minutes")
        end = {"frames": w.pipeline.frames, "seconds": time.perf_counter() - t0, **_usage()}
        loops = w.capture.loops if w.capture is not None else 0
        info = dict(w.pipeline.info)
        _close(w)
    first = samples[0]
    growth = (end["rss_mb"] - first["rss_mb"]) / first["rss_mb"] * 100
    ok = growth <= 5.0 and end["threads"] <= first["threads"] and end["fds"] <= first["fds"]
    data = {"kind": "endurance", "frames": end["frames"], "seconds": end["seconds"], "fps": end["frames"] / end["seconds"],
            "video_loops": loops, "model": args.model or "tiny (random weights)", "size": info.get("size"), "device": info.get("device"),
            "dtype": info.get("dtype"), "at_warmup": first, "at_end": end, "rss_growth_percent": growth, "samples": samples, "pass": ok}
    return data


def window_path(loop, sinks):
    """For `bench framepath`: the window's frame path (a Pipeline with its worker, loaded with loop's engine and
    settings, the given SinkSet as its sinks) and a GUI event loop that shows each new result as the output pane
    does (a QImage). Returns (spin(seconds): run the GUI's events, stop() with .path: the FramePath)."""
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from app.live.session import ModelRequest
    from app.ui.outputs.qimage import from_rgb
    from app.ui.pipeline import Pipeline

    QApplication.instance() or QApplication([])
    p = Pipeline(lambda *a, **k: loop.engine)
    p.path.sinks = sinks
    p.resultReady.connect(lambda r: from_rgb(r.output))  # the output pane's QImage, on the GUI thread
    p.configure(loop.settings)
    p.load(ModelRequest(model="stand-in"))

    def spin(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            QCoreApplication.processEvents()
            time.sleep(0.001)

    while p.worker.loop is None:
        spin(0.05)

    def stop() -> None:
        p.stop(5000)

    stop.path = p.path
    return spin, stop
