"""NDI output (app.live.ndi) to a cyndilib receiver on this machine, found by its name.

NDI finds sources by mDNS; where multicast does not reach (this container), NDI's config file lists the
machines to ask, so the tests point it at loopback (NDI_CONFIG_DIR). The pictures go through NDI's own
codec (SpeedHQ, lossy even on one machine), so pixels match within a few grey levels, not exactly."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import pytest

from models.errors import UserError

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def ndi(tmp_path, monkeypatch):
    pytest.importorskip("cyndilib")
    (tmp_path / "ndi-config.v1.json").write_text(json.dumps({"ndi": {"networks": {"ips": "127.0.0.1"}}}))
    monkeypatch.setenv("NDI_CONFIG_DIR", str(tmp_path))  # read when a sender or finder is made


def pattern(h: int, w: int, seed: int) -> np.ndarray:
    """Blocks of 8 px in random colours: survives NDI's codec, and differs clearly from another seed's."""
    blocks = np.random.default_rng(seed).integers(0, 256, (h // 8, w // 8, 3))
    return np.kron(blocks, np.ones((8, 8, 1))).astype(np.uint8)


class Receiver:
    """A cyndilib receiver of the source whose name ends in (name)."""

    def __init__(self, name: str, timeout: float = 10.0):
        from cyndilib.finder import Finder
        from cyndilib.receiver import Receiver as NdiReceiver
        from cyndilib.video_frame import VideoRecvFrame
        from cyndilib.wrapper.ndi_recv import RecvBandwidth, RecvColorFormat

        self.finder = Finder()
        self.finder.open()
        end, source = time.monotonic() + timeout, None
        while source is None and time.monotonic() < end:
            self.finder.wait_for_sources(0.2)
            source = next((s for s in self.finder.iter_sources() if s.name.endswith(f"({name})")), None)
        assert source is not None, f"no NDI source named {name!r}; found {self.finder.get_source_names()}"
        self.source_name = source.name
        self.receiver = NdiReceiver(color_format=RecvColorFormat.RGBX_RGBA, bandwidth=RecvBandwidth.highest)
        self.frame = VideoRecvFrame()
        self.receiver.set_video_frame(self.frame)
        self.receiver.set_source(source)

    def next(self, timeout: float = 20.0) -> np.ndarray | None:
        """The next video frame (RGB), or None after timeout seconds: a connection and its first frame can take
        seconds on a loaded 2-core machine (CI runs the suite beside torch's threads)."""
        from cyndilib.receiver import ReceiveFrameType

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.receiver.receive(ReceiveFrameType.recv_video, 200) & ReceiveFrameType.recv_video:
                w, h = self.frame.get_resolution()
                data = np.empty(self.frame.get_data_size(), np.uint8)
                self.frame.fill_p_data(data)
                return data.reshape(h, w, 4)[:, :, :3]
        return None

    def close(self) -> None:
        self.receiver.disconnect()
        self.finder.close()


def test_a_receiver_finds_the_sender_by_name_and_gets_its_pictures(ndi):
    from app.live.ndi import NdiSender

    name = f"sdxs-test-{os.getpid()}"
    sent = pattern(96, 128, 0)
    with NdiSender(name, fps=30, resend=0.5) as sender:
        sender.send(sent)
        rx = Receiver(name)
        try:
            assert rx.source_name == sender.source_name
            got = rx.next()
            assert got is not None and got.shape == sent.shape
            err = np.abs(got.astype(int) - sent).mean()
            other = np.abs(got.astype(int) - pattern(96, 128, 1)).mean()
            assert err < 4 and other > 10 * err, (err, other)
            n = sender.frames_sent
            time.sleep(2.6)  # nothing new: the still picture is sent again every 0.5 s (5 times; 2 on a loaded machine)
            assert sender.frames_sent >= n + 2
            bigger = pattern(64, 64, 2)
            sender.send(bigger)  # another size reopens the source at that size, same name
            end, got = time.monotonic() + 20, None
            while time.monotonic() < end and (got is None or got.shape != bigger.shape):
                got = rx.next(1.0)
            assert got is not None and got.shape == bigger.shape
            assert np.abs(got.astype(int) - bigger).mean() < 4
        finally:
            rx.close()


def test_send_never_waits_for_the_network(ndi):
    from app.live.ndi import NdiSender

    frames = [pattern(256, 256, 3), pattern(256, 256, 5)]
    with NdiSender(f"sdxs-fast-{os.getpid()}") as sender:
        t0 = time.perf_counter()
        for i in range(500):
            sender.send(frames[i % 2])  # a new frame each time (the same one again is skipped: re-sent anyway)
        per_frame = (time.perf_counter() - t0) / 500
    assert per_frame < 0.002, f"send took {1000 * per_frame:.2f} ms"  # a reference under a lock; NDI works in its thread


def test_without_cyndilib_it_says_what_to_install(monkeypatch):
    from app.live.ndi import NdiSender

    monkeypatch.setitem(sys.modules, "cyndilib", None)
    with pytest.raises(UserError, match=r"pip install cyndilib==") as e:
        NdiSender("x")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["", "a (b)", "x" * 101])
def test_bad_names_are_one_line(name):
    from app.live.ndi import check_name

    with pytest.raises(UserError, match="--ndi"):
        check_name(name)


def test_stream_sends_its_output_over_ndi_and_still_records(ndi, tmp_path, tiny_base):
    import re
    import signal
    import subprocess
    from pathlib import Path

    from app.live.testing import count_frames, write_test_video

    name = f"sdxs-stream-{os.getpid()}"
    # far longer than the test needs (a still video streams at 100+ fps here): the sender must outlive a slow finder
    video = write_test_video(tmp_path / "in.mp4", frames=20000, size=64, fps=30)
    out = tmp_path / "out.mp4"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, str(root / "main.py"), "stream", "--model", tiny_base, "--input", str(video),
                             "--out", str(out), "--size", "64", "--ndi", name], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.poll() is None, proc.communicate()[1]  # the stream runs (else its one line says why)
        rx = Receiver(name, timeout=60)  # the model loads first
        got = rx.next()
        rx.close()
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl+C: the stream stops and keeps what it recorded
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert f"NDI: sending as '{name}'" in stderr
    assert got is not None and got.shape == (64, 64, 3) and got.std() > 1  # a picture, not a blank frame
    frames = int(re.search(r"frames=(\d+)", stdout).group(1))
    # Ctrl+C came mid-video, or a slow finder on a loaded machine let the whole video pass first (unchanged
    # frames stream at hundreds per second): either way the recording holds every frame the stream counted
    assert ("interrupted" in stdout or frames == 20000) and count_frames(out) == frames > 0


def test_the_windows_output_menu_sends_over_ndi(ndi, qtbot, tmp_path):
    from app.live.testing import stand_in
    from tests.test_app_window import make_window

    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    out = w.actions.output
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=10000)
    name = f"sdxs-window-{os.getpid()}"
    out.start_ndi(name)
    assert out.act_stop_ndi.isEnabled() and name in out.act_ndi.text()
    rx = Receiver(name)
    try:
        got = rx.next(60)  # the still picture, re-sent while nothing changes (slow to connect on a loaded machine)
        assert got is not None and got.shape == w.last_result.output.shape
        end = time.monotonic() + 20  # a picture sent while the start's transition still glided may come first
        while np.abs(got.astype(int) - w.last_result.output).mean() >= 4 and time.monotonic() < end:
            nxt = rx.next(5)
            got = got if nxt is None else nxt
        assert np.abs(got.astype(int) - w.last_result.output).mean() < 4
    finally:
        rx.close()
    w.close()  # the window's shutdown stops NDI
    assert out.ndi is None and not out.act_stop_ndi.isEnabled()


def test_an_ndi_source_is_an_input_like_a_camera(ndi, qtbot, tmp_path):
    from app.live.capture import open_capture
    from app.live.ndi import NdiSender
    from app.live.source_spec import parse_source
    from app.live.testing import stand_in
    from tests.test_app_window import make_window

    name = f"sdxs-in-{os.getpid()}"
    sent = pattern(64, 96, 4)
    with NdiSender(name, resend=0.3) as sender:
        sender.send(sent)
        cap = open_capture(parse_source(f"ndi:{name}"))
        try:
            end = time.monotonic() + 30  # a connection's first frame can take seconds on a loaded machine
            while cap.latest() is None:
                assert time.monotonic() < end and cap.state != "failed", cap.error
                time.sleep(0.05)
            got = cap.latest().image
            assert cap.state == "running" and cap.source_name.endswith(f"({name})")
            assert got.shape == sent.shape and np.abs(got.astype(int) - sent).mean() < 4
        finally:
            assert cap.stop()
        w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64), source=f"ndi:{name}")  # the window's source
        qtbot.waitUntil(lambda: w.last_result is not None and w.capture.state == "running", timeout=40000)
        assert w.source_spec == f"ndi:{name}" and w.panel.source.currentData() == "ndi"
        w.close()


def test_a_missing_ndi_source_is_one_line(ndi):
    from app.live.ndi_in import NdiCapture
    from app.live.source_spec import SourceSpec, parse_source

    cap = NdiCapture(SourceSpec("ndi", "nobody-sends-this"), find_seconds=1.0).start()
    end = time.monotonic() + 10
    while cap.state != "failed":
        assert time.monotonic() < end
        time.sleep(0.05)
    assert cap.error.startswith("no NDI source named 'nobody-sends-this' found in 1 s") and "\n" not in cap.error
    with pytest.raises(UserError, match="ndi:"):
        parse_source("ndi:")
