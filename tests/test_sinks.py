"""The sink interface (app.live.sinks): a failing sink is one line and is dropped, the others keep getting
frames; a recording skips reused frames and is discarded, not half-written, when something breaks; and the
command line's instrument options (--osc, --osc-allow, --ndi) fail in one line before any model loads."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from app.live.loop import Result
from app.live.recorder import Recorder
from app.live.sinks import RecorderSink, SinkSet
from main import main


class Collect:
    label = "the collector"

    def __init__(self):
        self.frames, self.closed = [], False

    def send(self, rgb):
        self.frames.append(rgb)

    def close(self):
        self.closed = True


class Broken(Collect):
    label = "the broken one"

    def __init__(self, after: int):
        super().__init__()
        self.after = after

    def send(self, rgb):
        if len(self.frames) >= self.after:
            raise OSError("device went away\nmore detail")
        super().send(rgb)


def result(i: int, reused: bool = False) -> Result:
    img = np.full((16, 16, 3), i, np.uint8)
    return Result(img, img, img, 0.0, reused)


def test_a_failing_sink_is_one_line_and_the_others_go_on(caplog):
    good, bad = Collect(), Broken(after=2)
    told = []
    sinks = SinkSet([bad, good], on_failure=lambda sink, text: told.append((sink, text)))
    with caplog.at_level(logging.WARNING):
        for i in range(5):
            sinks.send(result(i))
    assert len(good.frames) == 5 and len(bad.frames) == 2
    assert list(sinks) == [good] and bad.closed
    assert told == [(bad, "the broken one stopped: device went away")]
    assert [r.getMessage() for r in caplog.records] == ["the broken one stopped: device went away"]
    sinks.close()
    assert good.closed and len(sinks) == 0


def test_the_recording_skips_reused_frames_when_asked_and_is_discarded_on_abort(tmp_path):
    path = tmp_path / "rec.mp4"
    rec = RecorderSink(Recorder(path, 10), skip_reused=True)
    sinks = SinkSet([rec])
    for r in (result(10), result(10, reused=True), result(40)):
        sinks.send(r)
    assert rec.drain() and rec.recorder.frames == 2  # encoded on the sink's own thread
    sinks.abort()
    assert not path.exists() and not list(tmp_path.iterdir())  # no half-written file, no temporary left
    rec2 = RecorderSink(Recorder(path, 10), side_by_side=True)  # stream's: every frame, a video keeps its timing
    sinks = SinkSet([rec2])
    sinks.send(result(50))
    sinks.send(result(50, reused=True))
    sinks.close()
    assert rec2.path == path and path.exists() and rec2.recorder.frames == 2


@pytest.mark.parametrize("argv, says", [
    (["--osc", "99999"], "--osc '99999': use a port from 1 to 65535"),
    (["--osc", "0.0.0.0:9000"], "add --osc-allow"),
    (["--osc-allow", "127.0.0.2"], "--osc-allow only means something with --osc"),
    (["--osc", "9000", "--osc-allow", "no-such-host.invalid"], "--osc-allow 'no-such-host.invalid': no such host"),
    (["--ndi", "a (b)"], "--ndi 'a (b)': use a short name without parentheses"),
])
def test_bad_instrument_options_are_one_line_before_loading(tmp_path, capsys, argv, says):
    from app.live.testing import write_test_video

    out, video = tmp_path / "out.mp4", write_test_video(tmp_path / "in.mp4", frames=2, size=32, fps=10)
    code = main(["stream", "--model", str(tmp_path / "not-loaded"), "--input", str(video), "--out", str(out)] + argv)
    err = capsys.readouterr().err
    assert code == 2 and says in err and err.count("\n") == 1, err
    assert not out.exists()


def test_a_failing_recording_in_the_window_is_one_line_and_the_picture_goes_on(qtbot, tmp_path):
    from app.live.testing import stand_in
    from tests.test_app_window import make_window

    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    w.actions.act_record.setChecked(True)
    worker = w.pipeline.worker
    qtbot.waitUntil(lambda: worker.recorder is not None, timeout=5000)

    def full_disk(rgb, at=None):
        raise OSError(28, "No space left on device")

    worker.recorder.recorder.write = full_disk
    frames = worker.loop.frames
    w.canvas.set_drawing(w.canvas.frame() // 2)
    qtbot.waitUntil(lambda: not w.actions.act_record.isChecked(), timeout=5000)
    assert "stopped: [Errno 28] No space left on device" in w.statusBar().currentMessage()
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".rec-*"))  # discarded, nothing half-written
    w.canvas.set_drawing(w.canvas.frame() // 3)
    qtbot.waitUntil(lambda: worker.loop.frames > frames + 1, timeout=5000)  # the picture goes on
    w.close()
