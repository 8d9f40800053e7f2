"""The one frame path (app.live.framepath): newest input wins, a capture wakes it (nothing polls), a video is
handed over frame by frame, and in the window every sink keeps getting pictures while the GUI thread is blocked."""

from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np
import pytest

from app.live.framepath import FramePath
from app.live.loop import Frame, LiveLoop
from app.live.settings import LiveSettings
from app.live.sinks import SinkSet
from app.live.sources import FrameThread
from app.live.testing import stand_in
from tests.test_app_window import _keep_torch_threads, make_window  # noqa: F401  (fixture and helpers)

pytestmark = pytest.mark.timeout(120)


class Seen:
    """A sink that remembers the top-left grey level of every input whose result it was sent, and when."""

    label = "seen"

    def picture(self, result):
        return result.source

    def __init__(self):
        self.levels: list[int] = []
        self.times: list[float] = []

    def send(self, rgb):
        self.levels.append(int(rgb[0, 0, 0]))
        self.times.append(time.perf_counter())

    def close(self):
        pass


def grey(v: int, drawn: bool = True, seq: int = 0) -> Frame:
    return Frame(np.full((64, 64, 3), v, np.uint8), time.perf_counter(), drawn, seq)


def make_path(delay: float = 0.0, **kw) -> tuple[FramePath, Seen]:
    seen = Seen()
    path = FramePath(sinks=SinkSet([seen]), **kw)
    path.set_loop(LiveLoop(stand_in(size=64, delay=delay), LiveSettings(size=64, steady=None)))
    return path.start(), seen


def test_offered_frames_newest_wins_while_one_is_made():
    path, seen = make_path(delay=0.3)
    try:
        path.offer(grey(10))
        end = time.perf_counter() + 5
        while not path.busy or path._pending is not None:  # taken: the frame is in flight
            assert time.perf_counter() < end
            time.sleep(0.001)
        for v in (20, 30, 40):
            path.offer(grey(v))
        assert path.wait_idle(10)
        assert seen.levels == [10, 40] and path.dropped == 2
        assert path.latest().result.source[0, 0, 0] == 40  # the display's newest post
    finally:
        assert path.stop()


class Pulses(FrameThread):
    """A source that publishes a frame each time pulse() is called: no timer in it or in the path."""

    def __init__(self):
        from app.live.source_spec import parse_source

        super().__init__(parse_source("camera:0"), "pulses")
        self.go = threading.Event()
        self.value = 0

    def pulse(self, v: int) -> None:
        self.value = v
        self.go.set()

    def _run(self) -> None:
        self._set_state("running")
        while not self._stop.is_set():
            if self.go.wait(0.05):
                self.go.clear()
                self._publish(np.full((64, 64, 3), self.value, np.uint8))


def test_a_capture_wakes_the_path_and_its_failure_is_posted():
    """The path waits without a timeout: a frame reaches the sink only because the capture woke it."""
    path, seen = make_path()
    cap = Pulses().start()
    try:
        path.set_capture(cap)
        for v in (50, 60, 70):
            t0 = time.perf_counter()
            cap.pulse(v)
            end = t0 + 5
            while not seen.levels or seen.levels[-1] != v:
                assert time.perf_counter() < end, seen.levels
                time.sleep(0.0005)
            assert seen.times[-1] - t0 < 1.0
        assert seen.levels == [50, 60, 70]
        count = path.latest().count
        cap._fail("camera 0 stopped sending frames")
        end = time.perf_counter() + 5
        while path.latest().count == count:
            assert time.perf_counter() < end
            time.sleep(0.001)
        assert path.latest().result is None and cap.on_frame is not None
    finally:
        cap.stop()
        assert path.stop()


def test_a_blocking_offer_hands_over_every_frame_in_order():
    path, seen = make_path(delay=0.01)
    try:
        for v in range(1, 31):
            assert path.offer(grey(v * 8, drawn=False, seq=v), block=True, timeout=5)
        assert path.wait_idle(10)
        assert seen.levels == [v * 8 for v in range(1, 31)] and path.dropped == 0
    finally:
        assert path.stop()


def test_a_change_waiting_for_the_engine_goes_before_the_next_frame():
    """A path that runs frames back to back (each result offers its input again, as a gliding transition does)
    lets a waiting change (a LoRA load, new settings) in before its next frame. With a plain lock the path took
    it again first, frame after frame: such a change waited 20-400 ms here, a LoRA asked for while the window
    loaded could wait for the whole transition."""
    path, seen = make_path()
    path.set_loop(LiveLoop(stand_in(size=256), LiveSettings(size=256, steady=None)))
    frame = Frame(np.full((256, 256, 3), 100, np.uint8), time.perf_counter(), False, 0)
    path.after = lambda result: path.offer(frame)  # frames back to back
    try:
        path.offer(frame)
        deadline = time.monotonic() + 10
        while len(seen.levels) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        waits, counts = [], []
        for _ in range(11):
            t0 = time.perf_counter()
            with path.lock:  # as the worker does for a LoRA
                waits.append(time.perf_counter() - t0)
                counts.append(len(seen.levels))
            time.sleep(0.03)  # frames go on between changes
        waits.sort()
        assert waits[5] < 0.01, waits  # a frame here is ~1 ms: the median change waits about one
        assert counts[-1] > counts[0]  # and the path kept running between the changes
    finally:
        path.after = None
        assert path.stop()


def test_paused_takes_inputs_but_renders_nothing_and_resume_renders_the_newest():
    path, seen = make_path()
    try:
        path.set_paused(True)
        path.offer(grey(90))
        assert path.wait_idle(5) and seen.levels == [] and path.latest().frame.image[0, 0, 0] == 90
        path.set_paused(False)  # the current input again
        assert path.wait_idle(5) and seen.levels == [90]
    finally:
        assert path.stop()


class TimedClient(threading.Thread):
    """Reads /stream.mjpg over a raw socket; the arrival time of every JPEG part."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.times, self.error, self.stop = port, [], "", threading.Event()

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                f = s.makefile("rb")
                assert b" 200 " in f.readline()
                while f.readline() not in (b"\r\n", b""):
                    pass
                while not self.stop.is_set():
                    line = f.readline()
                    if not line:
                        return
                    if line.startswith(b"--sdxsframe"):
                        headers = {}
                        while (h := f.readline().strip()):
                            k, _, v = h.partition(b":")
                            headers[k.lower()] = v.strip()
                        f.read(int(headers[b"content-length"]))
                        self.times.append(time.perf_counter())
        except Exception as e:
            self.error = repr(e)


RECEIVE = """
import sys, time
sys.path.insert(0, sys.argv[2])
from tests.test_ndi import Receiver
r = Receiver(sys.argv[1], timeout=30)
print("ready", flush=True)
while True:
    if r.next(0.5) is not None:
        print(time.monotonic(), flush=True)
"""


class NdiCounter(threading.Thread):
    """An NDI receiver in its own process (as another app is): the arrival time of every picture."""

    def __init__(self, name: str):
        import subprocess
        import sys

        super().__init__(daemon=True)
        self.times: list[float] = []
        self.ready = False
        self.proc = subprocess.Popen([sys.executable, "-c", RECEIVE, name, os.getcwd()], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)

    def run(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("ready"):
                self.ready = True
            elif line.strip():
                self.times.append(float(line) - time.monotonic() + time.perf_counter())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def ndi_works(tmp_path, monkeypatch) -> bool:
    try:
        import cyndilib  # noqa: F401
    except Exception:
        return False
    import json

    (tmp_path / "ndi-config.v1.json").write_text(json.dumps({"ndi": {"networks": {"ips": "127.0.0.1"}}}))
    monkeypatch.setenv("NDI_CONFIG_DIR", str(tmp_path))
    return True


def blocks_video(path, frames: int = 60, size: int = 64, fps: float = 60.0):
    """Every frame different (random 8 px blocks): none is an unchanged input the loop would reuse."""
    import cv2

    from tests.test_ndi import pattern

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    for i in range(frames):
        writer.write(pattern(size, size, i))
    writer.release()
    return path


def between(times: list[float], t0: float, t1: float) -> int:
    return sum(t0 <= t <= t1 for t in times)


def test_every_sink_keeps_its_rate_while_the_gui_thread_is_blocked(qtbot, tmp_path, monkeypatch):
    """The contract: the window's MJPEG client, NDI receiver (where the NDI runtime runs) and recording keep
    getting new pictures at the engine's rate while the GUI thread sleeps 2 s (the old window fed the engine
    and these sinks from the GUI thread: they stopped)."""
    video = blocks_video(tmp_path / "clip.mp4")
    engine = stand_in(size=64, delay=0.02)
    w = make_window(qtbot, tmp_path, lambda *a: engine, source=f"video:{video}")
    out = w.actions.output
    server = out.start_server("127.0.0.1:0")
    client = TimedClient(server.port)
    client.start()
    ndi = None
    if not os.environ.get("NO_NDI") and ndi_works(tmp_path, monkeypatch):
        name = f"sdxs-path-{os.getpid()}"
        out.start_ndi(name)
        ndi = NdiCounter(name)
        ndi.start()
    w.pipeline.start_recording(str(tmp_path / "rec.mp4"), 30.0, False)
    qtbot.waitUntil(lambda: w.pipeline.worker.recorder is not None and w.pipeline.worker.recorder.recorder.frames > 3
                    and len(client.times) > 3 and (ndi is None or len(ndi.times) > 3), timeout=30000)
    loop, rec, sender = w.pipeline.worker.loop, w.pipeline.worker.recorder.recorder, out.ndi
    try:
        made0, rec0, sent0, t0 = loop.frames, rec.frames, sender.frames_sent if sender else 0, time.perf_counter()
        time.sleep(2.0)  # the GUI thread is blocked: no event, timer or signal runs here
        made, recorded, t1 = loop.frames - made0, rec.frames - rec0, time.perf_counter()
        served = between(client.times, t0, t1)
        sent = sender.frames_sent - sent0 if sender else None
        received = between(ndi.times, t0, t1) if ndi is not None else None
        print(f"engine {made} frames in {t1 - t0:.2f} s; MJPEG {served}, recording {recorded}, NDI sent {sent} "
              f"received {received}")
        assert made >= 20  # the engine ran (stand-in at 20 ms a frame: up to 100 in 2 s; a loaded 2-core machine makes fewer)
        assert served >= 0.6 * made and recorded >= 0.8 * made  # each sink got (nearly) every picture
        if ndi is not None:  # NDI sends each new picture; its receiver, another process, decodes what it can
            assert sent >= 0.6 * made and received >= 10
    finally:
        ndi.close() if ndi is not None else None
        client.stop.set()
    assert client.error == ""
    w.close()
