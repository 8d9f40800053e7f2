"""`python main.py stream`: video in, MP4 out, with a tiny real model; failures leave no file."""

from __future__ import annotations

import cv2
import pytest

from app.live.testing import count_frames, write_test_video
from main import main


@pytest.fixture()
def video(tmp_path):
    return write_test_video(tmp_path / "in.mp4", frames=5, size=96, fps=10)


def test_stream_video_to_mp4(tmp_path, video, tiny_base, tiny_controlnet, capsys):
    out = tmp_path / "out.mp4"
    code = main(["stream", "--model", tiny_base, "--controlnet", tiny_controlnet, "--input", str(video), "--out", str(out),
                 "--size", "64", "--prompt", "a red fox", "--side-by-side", "--condition", "canny"])
    assert code == 0
    assert "frames=5" in capsys.readouterr().out
    assert count_frames(out) == 5
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (128, 64)  # input | output
    assert abs(cap.get(cv2.CAP_PROP_FPS) - 10) < 0.5  # keeps the video's rate
    cap.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


def test_stream_max_frames(tmp_path, video, tiny_base):
    out = tmp_path / "two.mp4"
    assert main(["stream", "--model", tiny_base, "--input", f"video:{video}", "--out", str(out), "--size", "64", "--max-frames", "2"]) == 0
    assert count_frames(out) == 2


@pytest.mark.parametrize("argv_input, why", [("camera:11", "camera 11"), ("nothing.mp4", "does not exist")])
def test_stream_bad_input_leaves_no_file(tmp_path, tiny_base, capsys, argv_input, why, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out.mp4"
    assert main(["stream", "--model", tiny_base, "--input", argv_input, "--out", str(out), "--size", "64"]) == 2
    assert why in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_stream_bad_model_leaves_no_file(tmp_path, video, capsys):
    out = tmp_path / "o.mp4"
    assert main(["stream", "--model", str(tmp_path / "missing"), "--input", str(video), "--out", str(out)]) == 2
    assert "error:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
