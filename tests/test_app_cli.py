"""The window's command line: no display, bad options, --exit-after with frames=N fps=X, install-desktop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.live.testing import write_test_video
from main import main
from models.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


def test_no_display_says_how_to_run(monkeypatch, capsys):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["--model", "demo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "QT_QPA_PLATFORM=offscreen" in err[0] and "stream" in err[0]


@pytest.mark.parametrize("argv, why", [
    (["--size", "100"], "multiple of 8"), (["--source", "webcam"], "sketch, camera:N"),
    (["--exit-after", "0"], "positive"), (["--dtype", "int8"], "unknown dtype"),
])
def test_bad_window_options(argv, why, capsys):
    assert main(argv) == 2
    assert why in capsys.readouterr().err


def test_exit_after_prints_frames_and_fps(tmp_path, tiny_base, tiny_controlnet):
    video = write_test_video(tmp_path / "clip.mp4", frames=10, size=64, fps=30)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1", HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "main.py", "--model", tiny_base, "--controlnet", tiny_controlnet, "--source", f"video:{video}",
                        "--size", "64", "--prompt", "a boat", "--exit-after", "25", "--settings", str(tmp_path / "s.ini")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r"^frames=(\d+) fps=([\d.]+)$", r.stdout, re.M)
    assert m, r.stdout
    assert int(m.group(1)) >= 1 and float(m.group(2)) > 0
    assert "Traceback" not in r.stderr


def test_install_desktop(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert main(["install-desktop"]) == 0
    path = tmp_path / "data" / "applications" / "sdxs-live.desktop"
    text = path.read_text()
    assert "[Desktop Entry]" in text and "Name=SDXS Live" in text and "Type=Application" in text
    icon = re.search(r"^Icon=(.+)$", text, re.M).group(1)
    assert Path(icon).is_file() and icon.endswith(".png")
    exec_line = re.search(r"^Exec=(.+)$", text, re.M).group(1)
    assert str(ROOT / "main.py") in exec_line and sys.executable in exec_line
    assert [p.name for p in path.parent.iterdir()] == ["sdxs-live.desktop"]  # no temporary file left
    assert str(path) in capsys.readouterr().out
    assert main(["install-desktop", "--remove"]) == 0 and not path.exists()


def test_training_takes_any_device_the_engine_takes():
    from training.config import TrainConfig, check

    check(TrainConfig("b", "d", "/tmp/nowhere-sdxs", device="cuda:1"))  # the device picker accepts it too
    with pytest.raises(UserError, match="tpu"):
        check(TrainConfig("b", "d", "/tmp/nowhere-sdxs", device="tpu"))
