"""Sinks work on threads of their own (app.live.sinkthread): the frame path only hands a picture over. A slow sink
never slows the path; a live output gets the newest picture; a recording keeps real time, holds every frame when
its encoder keeps up, leaves out (and counts) what it cannot encode, and close() encodes every waiting picture
before the file is finished. The recordings are real MP4 files read back with PyAV, as a player would."""

from __future__ import annotations

import logging
import threading
import time

import av
import numpy as np
import pytest

from app.live.framepath import FramePath
from app.live.loop import Frame, LiveLoop
from app.live.recorder import Recorder
from app.live.settings import LiveSettings
from app.live.sinks import RECORD_SLOTS, RecorderSink, SinkSet
from app.live.sinkthread import SinkThread
from app.live.testing import stand_in

pytestmark = pytest.mark.timeout(180)


class Slow(SinkThread):
    """A live output whose work takes `seconds` a picture: it keeps the grey level of each picture it made."""

    label = "the slow one"

    def __init__(self, seconds: float, fail_at: int | None = None):
        super().__init__("slow-sink", slots=1)
        self.seconds, self.fail_at = seconds, fail_at
        self.made: list[int] = []
        self.finished = 0  # times finish() ran

    def work(self, rgb, at):
        time.sleep(self.seconds)
        if self.fail_at is not None and len(self.made) >= self.fail_at:
            raise OSError("the device went away")
        self.made.append(int(rgb[0, 0, 0]))

    def finish(self):
        self.finished += 1


def grey(v: int, size: int = 16) -> np.ndarray:
    return np.full((size, size, 3), v, np.uint8)


def noise(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Pictures x264 is slow on (nothing to predict): an encoder that falls behind."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def decoded(path) -> tuple[list[float], list[int]]:
    """Each frame's time in seconds and its mean grey level, as a player decodes them."""
    times, levels = [], []
    with av.open(str(path)) as box:
        for f in box.decode(video=0):
            times.append(float(f.time))
            levels.append(int(round(f.to_ndarray(format="rgb24").mean())))
    return times, levels


def test_a_slow_live_sink_never_holds_up_send_and_gets_the_newest_picture():
    slow = Slow(0.2)
    sinks = SinkSet([slow])
    t0 = time.perf_counter()
    for v in range(1, 21):
        sinks.send(grey(v * 10))
    took = time.perf_counter() - t0
    assert took < 0.15, f"20 sends took {took:.3f} s: one picture's work is 0.2 s"  # none waited for the work
    slow.close()
    assert slow.finished == 1 and slow.made[-1] == 200  # the newest picture was made; the ones between were replaced
    assert slow.made == sorted(slow.made) and len(slow.made) <= 3
    assert slow.delivered == len(slow.made) and slow.delivered + slow.dropped == 20


def test_closing_twice_finishes_once_with_or_without_a_picture():
    idle, used = Slow(0.0), Slow(0.0)
    used.send(grey(5))
    for sink in (idle, used):
        sink.close()
        sink.close()
        sink.abort()
        sink.send(grey(6))  # after close: ignored
    assert idle.finished == used.finished == 1 and idle.made == [] and used.made == [5]


def test_a_sink_thread_that_fails_is_dropped_at_once_without_another_frame():
    told = []
    bad = Slow(0.0, fail_at=1)
    sinks = SinkSet([bad], on_failure=lambda sink, text: told.append(text))
    sinks.send(grey(1))
    assert bad.drain()
    sinks.send(grey(2))  # its work fails on the sink's thread; no picture comes after it (a still drawing)
    end = time.monotonic() + 10
    while not told:
        assert time.monotonic() < end, "the failure was never reported"
        time.sleep(0.01)
    assert told == ["the slow one stopped: the device went away"] and len(sinks) == 0 and bad.finished == 1
    sinks.send(grey(3))  # the others (none here) go on
    assert bad.made == [1]


def test_the_frame_path_does_not_wait_for_a_recording_that_encodes_slower_than_it(tmp_path):
    """The real recorder at 512 px of noise (about 5-10 ms a frame of x264 here): the path's hand-over takes a
    small part of the time the encoder needs, which it spends on its own thread (it used to be the path's)."""
    size = 512
    pictures = noise(4, size)
    handed: list[float] = []

    class Clock:  # around the recorder in the path's SinkSet: how long its send took on the path's thread
        label = "clock"

        def __init__(self, start: bool):
            self.start = start

        def picture(self, result):
            if self.start:
                handed.append(-time.perf_counter())
            else:
                handed[-1] += time.perf_counter()
            return None

        def send(self, rgb):
            pass

        def close(self):
            pass

    rec = RecorderSink(Recorder(tmp_path / "slow.mp4", 30))
    path = FramePath(sinks=SinkSet([Clock(True), rec, Clock(False)]))
    path.set_loop(LiveLoop(stand_in(size=size), LiveSettings(size=size, steady=None)))
    path.start()
    try:
        t0 = time.perf_counter()
        for i in range(40):
            assert path.offer(Frame(pictures[i % 4], time.perf_counter(), True, i + 1), block=True, timeout=10)
        assert path.wait_idle(30)
        through = time.perf_counter() - t0
        assert rec.drain(60)
        encoded = time.perf_counter() - t0
    finally:
        assert path.stop()
    rec.close()
    print(f"40 frames: through the path {through:.2f} s, recorded by {encoded:.2f} s, handing over "
          f"{1000 * sum(handed):.1f} ms in all; {rec.delivered} encoded, {rec.dropped} left out")
    assert len(handed) == 40 and sum(handed) < 0.1 * encoded  # the hand-over is not the encoding
    assert rec.sent == 40 and rec.delivered + rec.dropped == 40
    times, _ = decoded(rec.path)
    assert len(times) == rec.recorder.frames >= rec.delivered  # every encoded picture plays (and the last, again)


def test_a_recording_that_keeps_up_holds_every_frame_at_its_real_time(tmp_path):
    rec = RecorderSink(Recorder(tmp_path / "live.mp4", 30))
    sinks = SinkSet([rec])
    stamps = []
    for i in range(24):
        sinks.send(grey(10 * i, 32))
        stamps.append(time.monotonic())
        time.sleep(0.05)  # 20 pictures a second: a 32 px encoder keeps up
    time.sleep(0.5)  # the last picture stays on screen until the recording stops
    sinks.close()
    times, levels = decoded(rec.path)
    assert rec.dropped == 0 and rec.delivered == 24
    assert len(times) == 25  # every picture, and the last one again at the end
    assert [abs(a - b) <= 3 for a, b in zip(levels, [10 * i for i in range(24)] + [230])] == [True] * 25
    assert np.allclose(np.diff(times[:24]), np.diff(stamps), atol=0.03)  # each at the time it was sent
    assert times[24] - times[0] == pytest.approx(stamps[-1] - stamps[0] + 0.55, abs=0.1)  # it plays for its real time


def test_close_encodes_every_waiting_picture_before_the_file_is_finished(tmp_path):
    rec = RecorderSink(Recorder(tmp_path / "flush.mp4", 30))
    pictures = noise(RECORD_SLOTS, 512, seed=1)
    for p in pictures:  # at once: the first is taken, the rest wait in the mailbox
        rec.send(p)
    waiting = rec.waiting
    rec.close()
    assert waiting >= 2, "the encoder kept up: this test shows nothing"
    assert rec.dropped == 0 and rec.delivered == RECORD_SLOTS
    times, _ = decoded(rec.path)
    assert len(times) == rec.recorder.frames >= RECORD_SLOTS


def test_a_recording_whose_encoder_falls_behind_leaves_pictures_out_and_says_so(tmp_path, caplog):
    rec = RecorderSink(Recorder(tmp_path / "behind.mp4", 30))
    pictures = noise(6, 512, seed=2)
    with caplog.at_level(logging.WARNING):
        for i in range(60):  # far faster than x264 at 512 px: the mailbox (RECORD_SLOTS) fills
            rec.send(pictures[i % 6])
        assert rec.waiting <= RECORD_SLOTS  # memory stays bounded
        rec.close()
    assert rec.dropped > 0 and rec.delivered + rec.dropped == 60
    assert f"{rec.dropped} of the 60 pictures sent were left out" in caplog.text
    times, _ = decoded(rec.path)
    assert len(times) == rec.recorder.frames and rec.delivered <= len(times) <= rec.delivered + 1


def test_a_video_files_recording_waits_for_room_and_keeps_every_frame(tmp_path):
    rec = RecorderSink(Recorder(tmp_path / "video.mp4", 25, real_time=False))
    pictures = noise(5, 256, seed=3)
    done = threading.Event()

    def feed():
        for i in range(40):
            rec.send(pictures[i % 5])
        done.set()

    threading.Thread(target=feed, daemon=True).start()
    assert done.wait(60)
    rec.close()
    times, _ = decoded(rec.path)
    assert rec.dropped == 0 and len(times) == 40 and times[-1] == pytest.approx(39 / 25)


def test_bench_framepath_times_each_sinks_output_not_the_hand_over(tmp_path):
    """`bench framepath` reports what each sink made (its on_output: JPEG encoded, frame encoded into the file)
    and the latency to the last sink's output, beside the path's own hand-over."""
    from app.cli.bench.framepath import measure

    r = measure("stream", 0.0, 64, 0.4, tmp_path)
    assert {"mjpeg", "recording"} <= set(r["sink_fps"]) and min(r["sink_fps"].values()) > 0
    assert r["latency_frames"] > 0 and r["latency_ms_p50"] > 0 and r["handoff_ms_p50"] > 0
    for name, lat in r["sink_latency_ms"].items():  # every frame in latency_ms was made by every sink
        assert lat["frames"] >= r["latency_frames"] and lat["p50"] > 0, name
