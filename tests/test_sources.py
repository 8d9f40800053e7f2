"""Sources, recorder and the Qt-free live loop: parsing, looping video, camera failure, atomic MP4."""

from __future__ import annotations

import time

import numpy as np
import pytest

from app.live.loop import ChangeDetector, Frame, LiveLoop, extract
from app.live.recorder import Recorder, side_by_side
from app.live.settings import ConditionSettings, LiveSettings
from app.live.source_spec import parse_source
from app.live.sources import Capture, StillImage, read_video
from app.live.testing import count_frames, stand_in, write_test_video
from models.errors import UserError


@pytest.fixture()
def video(tmp_path):
    return write_test_video(tmp_path / "clip.mp4", frames=6, size=64, fps=30)


def wait(cond, timeout=5.0):
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_parse_source(video, tmp_path):
    assert str(parse_source("sketch")) == "sketch"
    assert parse_source("camera:2").index == 2
    assert parse_source("3").kind == "camera"
    assert parse_source(f"video:{video}").target == str(video)
    assert parse_source(str(video)).kind == "video"
    for bad in ("camera:x", "video:/no/such.mp4", "image:", "webcam:1", str(tmp_path / "none")):
        with pytest.raises(UserError):
            parse_source(bad)


def test_video_source_loops(video):
    cap = Capture(parse_source(f"video:{video}"), realtime=False).start()
    try:
        assert wait(lambda: cap.loops >= 2 and cap.latest() is not None and cap.latest().seq > 12)
        assert cap.state == "running"
        assert cap.latest().image.shape == (64, 64, 3)
    finally:
        assert cap.stop()
    assert not cap.alive


def test_video_without_loop_stops(video):
    cap = Capture(parse_source(f"video:{video}"), loop=False, realtime=False).start()
    assert wait(lambda: not cap.alive)
    assert cap.state == "stopped" and cap.latest().seq == 6


def test_camera_failure_is_a_message_not_a_crash():
    t0 = time.perf_counter()
    cap = Capture(parse_source("camera:13")).start()
    assert wait(lambda: cap.state == "failed", timeout=5)
    assert "camera 13" in cap.error and "retry" in cap.error
    assert cap.latest() is None
    assert cap.stop() and time.perf_counter() - t0 < 5


def test_unplugged_camera_mid_stream(video):
    from app.live.source_spec import SourceSpec

    cap = Capture(SourceSpec("camera", str(video)), stall_seconds=0.3).start()  # a file as the camera: it ends
    assert wait(lambda: cap.state == "failed")
    assert "stopped sending frames" in cap.error and cap.latest().seq == 6  # the frames before it went
    assert wait(lambda: not cap.alive)  # the capture thread ends by itself


def test_list_cameras(tmp_path):
    from app.live.sources import list_cameras

    for i, name in ((2, "USB Camera"), (0, "Integrated Webcam")):
        (tmp_path / f"video{i}").mkdir()
        (tmp_path / f"video{i}" / "name").write_text(name + "\n")
    assert list_cameras(str(tmp_path)) == [(0, "Integrated Webcam"), (2, "USB Camera")]
    assert list_cameras(str(tmp_path / "none")) == []


def test_still_image(tmp_path, sketch_image):
    from models.imageio import write_rgb

    write_rgb(tmp_path / "s.png", sketch_image)
    src = StillImage(parse_source(f"image:{tmp_path / 's.png'}"))
    assert np.array_equal(src.latest().image, sketch_image)


def test_recorder_frame_count_and_atomicity(tmp_path):
    frames = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(7)]
    with Recorder(tmp_path / "out.mp4", fps=12) as rec:
        for f in frames:
            rec.write(f)
        assert not (tmp_path / "out.mp4").exists()  # only the temporary file while recording
    assert count_frames(tmp_path / "out.mp4") == 7
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    with pytest.raises(RuntimeError), Recorder(tmp_path / "bad.mp4") as rec:
        rec.write(frames[0])
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # nothing half-written left behind
    with pytest.raises(KeyboardInterrupt), Recorder(tmp_path / "ctrl_c.mp4") as rec:
        rec.write(frames[0])
        rec.write(frames[1])
        raise KeyboardInterrupt
    assert count_frames(tmp_path / "ctrl_c.mp4") == 2  # Ctrl+C keeps what was recorded, finalized
    with pytest.raises(UserError):
        Recorder(tmp_path / "x.avi")
    assert side_by_side(np.zeros((30, 40, 3), np.uint8), np.zeros((32, 32, 3), np.uint8)).shape == (32, 64, 3)


def test_read_video_in_order(video):
    frames = list(read_video(str(video)))
    assert len(frames) == 6 and frames[0].shape == (64, 64, 3)
    assert len(list(read_video(str(video), max_frames=2))) == 2


def test_change_detector():
    d = ChangeDetector(threshold=2.0)
    a = np.full((100, 100, 3), 60, np.uint8)
    assert d.changed(a)
    assert not d.changed(a + 1)  # below the threshold: camera noise
    assert d.changed(255 - a)
    drawn = np.full((64, 64, 3), 255, np.uint8)
    assert d.changed(drawn, exact=True)
    drawn2 = drawn.copy()
    drawn2[10, 10] = 0  # a single new pixel of a stroke counts
    assert d.changed(drawn2, exact=True)
    assert not d.changed(drawn2.copy(), exact=True)


def test_live_loop_reuses_unchanged_and_applies_settings(sketch_image):
    engine = stand_in(size=64)
    loop = LiveLoop(engine, LiveSettings(prompt="a cat", seed=3, size=64, transition=0))  # changes jump
    r1 = loop.process(Frame(sketch_image, time.perf_counter(), True))
    assert not r1.reused and r1.output.shape == (64, 64, 3) and engine.prompt == "a cat"
    r2 = loop.process(Frame(sketch_image.copy(), time.perf_counter(), True))
    assert r2.reused and engine.runners[0].steps == 1 and r2.output is r1.output
    loop.apply(LiveSettings(prompt="a dog", seed=4, size=64, transition=0))  # new prompt and seed: the same frame renders again
    r3 = loop.process(Frame(sketch_image, time.perf_counter(), True))
    assert not r3.reused and engine.runners[0].steps == 2 and engine.seed == 4 and not np.array_equal(r3.output, r1.output)
    assert loop.frames == 2 and loop.fps > 0


def test_condition_extraction_and_polarity(sketch_image):
    photo = np.zeros((80, 80, 3), np.uint8)
    photo[20:60, 20:60] = 200
    edges = extract(photo, ConditionSettings(mode="canny", low=50, high=150))
    assert edges.min() == 0 and np.median(edges) == 255  # black edges on white
    assert np.array_equal(extract(sketch_image, ConditionSettings(mode="canny"), drawn=True), sketch_image)  # the canvas is used as drawn
    flip = ConditionSettings(mode="none", mirror=True)
    assert np.array_equal(extract(flip.orient(photo[:, ::-1].copy()), flip), photo)
    assert np.array_equal(flip.orient(photo, drawn=True), photo)  # a drawing is never mirrored
    loop = LiveLoop(stand_in(size=64, condition="canny", polarity="white_on_black"), LiveSettings(size=64))
    r = loop.process(Frame(photo, time.perf_counter()))
    assert np.median(r.condition) == 0  # shown as the adapter sees it: white lines on black


def test_live_loop_profiles_on_the_plain_recipe_and_keeps_a_fallback(sketch_image):
    """A fast runner that fails falls back to eager inside step() (models.runners.chain): the loop notices."""
    from models.tiny import tiny_engine

    engine = tiny_engine(size=64, cost_ms=None)  # the real recipe, on the runner the loop picks
    loop = LiveLoop(engine, LiveSettings(size=64, profile=True), fast="graphs")
    assert loop.fast == "graphs" and engine.fast == "eager"  # per-stage timings need the plain recipe
    loop.apply(LiveSettings(size=64, profile=False))
    assert engine.fast == "graphs"  # and the fast path comes back after
    engine.runners[0].run = lambda: (_ for _ in ()).throw(RuntimeError("no graphs here"))  # it fails for real
    r = loop.process(Frame(sketch_image, time.perf_counter(), True))
    assert engine.fast == "eager" and r.output.shape == (64, 64, 3)
    loop.apply(LiveSettings(size=64, seed=1))
    assert engine.fast == "eager" and loop.fast == "eager"  # a failed fast path is not asked for again


def test_capture_never_reports_running_after_stop(video):
    """stop() and the capture thread set the state under one lock, and "stopped" is final."""
    for _ in range(5):
        cap = Capture(parse_source(f"video:{video}")).start()
        cap.stop(timeout=0)  # returns at once, typically while the thread is still opening the file
        cap._thread.join(5)
        assert cap.state == "stopped", cap.state
