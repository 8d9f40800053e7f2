"""The BEFORE side of `python main.py bench framepath`: the same stand-in runner, sinks, client and probes driven
through the frame path as it was at commit 2cdf4ed (no app/live/framepath.py), for docs/benchmarks.md.

Run it from a checkout of 2cdf4ed (it imports that tree's app.ui.worker.Pipeline with its relay, and
app.cli.stream's play and polling input), handing it this file's sibling bench module by path:

    git worktree add /tmp/before 2cdf4ed && cd /tmp/before
    PYTHONPATH=. QT_QPA_PLATFORM=offscreen python /path/to/bench/framepath_before.py \
        /path/to/app/cli/bench/framepath.py out.json [SECONDS [none]]

window  the GUI thread offers a frame (the canvas: after each result; a capture: a 10 ms QTimer polling it), the
        worker runs it and feeds the recording, the result comes back by a queued signal and the GUI thread
        feeds MJPEG, the virtual camera and NDI (two SinkSets on two threads), then makes the QImage.
stream  app.cli.stream.play on the main thread: a video file's frames back to back (the rate), a live source
        polled every 5 ms as input_frames did (the latency).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

from app.live.loop import Frame, LiveLoop
from app.live.settings import LiveSettings
from app.live.sinks import RecorderSink, SinkSet

WHICH = "all"  # every sink, or "none" (argv[4]): the probe alone
fb = None  # the after side's bench module (app/cli/bench/framepath.py), loaded by path in main


def load(path: str) -> None:
    global fb, Drawings
    spec = importlib.util.spec_from_file_location("fpbench", path)
    fb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fb)

    class Drawings(fb.Drawings):
        def _run(self) -> None:  # the old FrameThread has no wake-up: it only keeps the newest frame
            self._set_state("running")
            due = time.perf_counter()
            while not self._stop.is_set():
                with self._lock:
                    self._seq += 1
                    self._frame = Frame(self.frames[self._seq % len(self.frames)], time.perf_counter(), True, self._seq)
                due = self._pace(due, self.period)


def stand_in(cost_ms: float, size: int):
    """The old code's stand-in (its app.live.testing.FakeEngine): sleeps cost_ms, returns a premade picture."""
    import numpy as np

    from app.live.testing import FakeEngine

    class StandIn(FakeEngine):
        def __init__(self):
            super().__init__(0.0, size=size)
            rng = np.random.default_rng(1)
            self.pictures = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(fb.PICTURES)]
            self.steps = 0

        def step(self, frame, strengths=None):
            time.sleep(cost_ms / 1000) if cost_ms else None
            self.steps += 1
            return self.pictures[self.steps % fb.PICTURES]

    return StandIn()


def setup(cost: float, size: int, folder: Path):
    engine = stand_in(cost, size)
    import numpy as np

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(fb.PICTURES)]
    alone, step_ms = fb.runner_alone(engine, frames, 2.0)
    sinks, skipped, client = fb.open_sinks(size, folder, WHICH)
    return engine, frames, alone, step_ms, sinks, skipped, client


def window(cost: float, size: int, seconds: float, folder: Path) -> dict:
    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtWidgets import QApplication

    from app.ui.outputs.qimage import from_rgb
    from app.ui.worker import LoadRequest, Pipeline

    app = QApplication.instance() or QApplication([])
    engine, frames, alone, step_ms, sinks, skipped, client = setup(cost, size, folder)
    probe = fb.Probe()
    rec = [s for s in sinks if isinstance(s, RecorderSink)]
    gui_sinks = SinkSet([s for s in sinks if not isinstance(s, RecorderSink)] + [probe])  # the Output menu's
    p = Pipeline(lambda *a, **k: engine)
    p.configure(LiveSettings(size=size, steady=None))
    p.load(LoadRequest("stand-in"))

    def spin(s: float) -> None:
        end = time.perf_counter() + s
        while time.perf_counter() < end:
            QCoreApplication.processEvents()
            time.sleep(0.001)

    while p.worker.loop is None:
        spin(0.05)
    for s in rec:
        p.worker.sinks.add(s)  # the recording: fed by the worker
    state = {"feed": True, "i": 0}

    def on_result(r) -> None:  # the window's _on_result: the Output menu's sinks, then the picture
        gui_sinks.send(r)
        if not r.reused:
            from_rgb(r.output)
        if state["feed"]:  # the canvas's route with an input always waiting
            state["i"] += 1
            p.offer(Frame(frames[state["i"] % fb.PICTURES], time.perf_counter(), True, state["i"]))

    p.resultReady.connect(on_result)
    p.offer(Frame(frames[0], time.perf_counter(), True, 0))
    p.offer(Frame(frames[1], time.perf_counter(), True, 1))
    spin(0.3)
    n0, t0 = probe.count, time.perf_counter()
    spin(seconds)
    path_fps = (probe.count - n0) / (time.perf_counter() - t0)
    state["feed"] = False
    spin(0.3)
    source = Drawings(frames, min(max(path_fps, 1.0) / 2, 250.0)).start()
    seen = [0]

    def poll() -> None:  # window_sources._poll_capture
        f = source.latest()
        if f is not None and f.seq != seen[0]:
            seen[0] = f.seq
            p.offer(f)

    timer = QTimer(interval=10)
    timer.timeout.connect(poll)
    timer.start()
    spin(0.3)
    probe.latencies.clear()
    spin(seconds)
    lat = list(probe.latencies)
    timer.stop()
    source.stop()
    p.stop(5000)
    for s in sinks:
        s.close()
    del app
    return row("window", cost, size, sinks, skipped, alone, step_ms, path_fps, lat)


def stream(cost: float, size: int, seconds: float, folder: Path) -> dict:
    from app.cli.stream import play
    from app.live.schedule import Playhead

    engine, frames, alone, step_ms, sinks, skipped, client = setup(cost, size, folder)
    probe = fb.Probe()
    loop = LiveLoop(engine, LiveSettings(size=size, steady=None))
    sset = SinkSet(sinks + [probe])

    def video(s: float):  # a video file's frames, back to back
        end, i = time.perf_counter() + s, 0
        while time.perf_counter() < end:
            i += 1
            yield Frame(frames[i % fb.PICTURES], time.perf_counter(), True, i)

    play(loop, video(0.3), Playhead([]), 0.0, [0.0], sset, None)
    n0, t0 = probe.count, time.perf_counter()
    play(loop, video(seconds), Playhead([]), 0.0, [0.0], sset, None)
    path_fps = (probe.count - n0) / (time.perf_counter() - t0)
    source = Drawings(frames, min(max(path_fps, 1.0) / 2, 250.0)).start()

    def live(s: float):  # input_frames on a live source: the newest frame, polled every 5 ms
        end, seen = time.perf_counter() + s, 0
        while time.perf_counter() < end:
            f = source.latest()
            if f is None or f.seq == seen:
                time.sleep(0.005)
                continue
            seen = f.seq
            yield f

    play(loop, live(0.3), Playhead([]), 0.0, [0.0], sset, None)
    probe.latencies.clear()
    play(loop, live(seconds), Playhead([]), 0.0, [0.0], sset, None)
    lat = list(probe.latencies)
    source.stop()
    for s in sinks:
        s.close()
    return row("stream", cost, size, sinks, skipped, alone, step_ms, path_fps, lat)


def row(mode, cost, size, sinks, skipped, alone, step_ms, path_fps, lat) -> dict:
    pct, target = fb.pct, min(alone, fb.CAP)
    return {"mode": mode, "cost_ms": cost, "size": size, "skipped": skipped, "alone_fps": round(alone, 1),
            "path_fps": round(path_fps, 1), "ratio": round(path_fps / target, 3),
            "runner_ms_p50": round(pct(step_ms, 50), 3), "runner_ms_p95": round(pct(step_ms, 95), 3),
            "latency_ms_p50": round(pct(lat, 50), 3), "latency_ms_p95": round(pct(lat, 95), 3),
            "added_ms_p95": round(pct(lat, 95) - pct(step_ms, 95), 3), "latency_frames": len(lat)}


if __name__ == "__main__":
    sys.path.insert(0, str(Path.cwd()))
    load(sys.argv[1])
    WHICH = sys.argv[4] if len(sys.argv) > 4 else "all"
    rows = []
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
    with tempfile.TemporaryDirectory() as d:
        for mode in (window, stream):
            for cost in (0.0, 1.0, 6.0):
                r = mode(cost, 512, seconds, Path(d))
                rows.append(r)
                print(f"{r['mode']:6} {cost:4g} ms: alone {r['alone_fps']:8.1f} fps, path {r['path_fps']:8.1f} fps "
                      f"({r['ratio']:.2f}), latency p50 {r['latency_ms_p50']:.2f} p95 {r['latency_ms_p95']:.2f} ms, "
                      f"runner p95 {r['runner_ms_p95']:.2f}, added p95 {r['added_ms_p95']:.2f} ms", flush=True)
    Path(sys.argv[2]).write_text(json.dumps({"kind": "framepath-before", "commit": "2cdf4ed", "results": rows}, indent=2))
