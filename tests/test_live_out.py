"""Output to other apps from `stream`, with a tiny real model: the MJPEG stream while it runs, the server gone
after it; the virtual camera's missing backend in one line; a screen source through stream on Xvfb."""

from __future__ import annotations

import socket
import sys
import threading
import time
import urllib.request

import cv2
import numpy as np
import pytest

from app.live.testing import count_frames, write_test_video
from app.live.virtualcam import VirtualCamera, install_hint
from main import main
from models.errors import UserError
from tests.test_app_xvfb import xvfb  # noqa: F401
from tests.test_screen import WINDOW, picture  # noqa: F401  (fixture: a known picture on Xvfb)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_virtual_camera_reports_a_missing_backend_in_one_line():
    try:
        cam = VirtualCamera(64, 64, 30)
    except UserError as e:
        msg = str(e)
        assert "\n" not in msg and install_hint() in msg  # what to install, for this platform
        assert "v4l2loopback" in msg if sys.platform.startswith("linux") else "OBS" in msg
        return
    with cam:  # a machine with a backend: frames go out
        cam.send(np.zeros((32, 48, 3), np.uint8))
        assert cam.frames == 1


def test_install_hints_name_a_backend_per_platform():
    assert "v4l2loopback" in install_hint("linux")
    assert "OBS" in install_hint("darwin") and "OBS" in install_hint("win32")


def test_stream_virtual_camera_error_leaves_no_file(tmp_path, tiny_base, capsys):
    video = write_test_video(tmp_path / "in.mp4", frames=3, size=64)
    out = tmp_path / "out.mp4"
    try:
        VirtualCamera(64, 64).close()
        pytest.skip("this machine has a virtual camera backend")
    except UserError:
        pass
    code = main(["stream", "--model", tiny_base, "--input", str(video), "--out", str(out), "--size", "64", "--virtual-camera"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no virtual camera") and not out.exists()


def test_stream_serves_mjpeg_while_it_runs_and_stops_the_server(tmp_path, tiny_base, tiny_controlnet, capsys):
    video = write_test_video(tmp_path / "in.mp4", frames=40, size=96)
    port = free_port()
    got: list[np.ndarray] = []

    def watch():
        end = time.time() + 120
        while time.time() < end and len(got) < 3:
            try:
                data = urllib.request.urlopen(f"http://127.0.0.1:{port}/frame.jpg", timeout=5).read()
                got.append(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
            except OSError:
                time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    code = main(["stream", "--model", tiny_base, "--controlnet", tiny_controlnet, "--input", str(video),
                 "--serve", f"127.0.0.1:{port}", "--size", "64", "--steady", "on"])
    watcher.join(10)
    assert code == 0
    cap = capsys.readouterr()
    assert "frames=40" in cap.out and f"serving http://127.0.0.1:{port}/stream.mjpg" in cap.err
    assert got and all(g is not None and g.shape == (64, 64, 3) for g in got)  # the engine's output frames
    with pytest.raises(OSError):  # the server stopped with the stream
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert not [t for t in threading.enumerate() if t.name == "mjpeg-server" or "process_request" in t.name]


def test_stream_needs_an_output_and_a_token_off_loopback(tmp_path, tiny_base, capsys):
    video = write_test_video(tmp_path / "in.mp4", frames=2, size=64)
    assert main(["stream", "--model", tiny_base, "--input", str(video)]) == 2
    assert "--serve" in capsys.readouterr().err
    assert main(["stream", "--model", tiny_base, "--input", str(video), "--serve", "0.0.0.0:8765", "--size", "64"]) == 2
    assert "--serve-token" in capsys.readouterr().err
    assert main(["stream", "--model", tiny_base, "--input", str(video), "--out", str(tmp_path / "o.mp4"),
                 "--steady", "smooth=2"]) == 2
    assert "smooth" in capsys.readouterr().err and not (tmp_path / "o.mp4").exists()


def test_stream_from_a_screen_region(picture, tmp_path, tiny_base, capsys):  # noqa: F811
    x, y, w, h = WINDOW
    out = tmp_path / "screen.mp4"
    code = main(["stream", "--model", tiny_base, "--input", f"screen:1@{x},{y},{w},{h}", "--out", str(out),
                 "--size", "64", "--max-frames", "3", "--side-by-side", "--steady", "off"])
    assert code == 0, capsys.readouterr().err
    assert count_frames(out) == 3
    cap = cv2.VideoCapture(str(out))
    ok, bgr = cap.read()
    cap.release()
    left = cv2.cvtColor(bgr[:, :64], cv2.COLOR_BGR2RGB).astype(int)  # the captured input, centre-cropped
    assert abs(left[16, 16] - (220, 30, 30)).max() < 40 and abs(left[48, 48] - (230, 210, 40)).max() < 40
