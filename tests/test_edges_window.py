"""The window's recordings and snapshots on full and read-only disks: stopped, said in the window, nothing false."""

from __future__ import annotations

import re

import pytest

from app.live.testing import stand_in, write_test_video
from app.ui.panel.modelpick import Choice
from app.ui.session.settings import open_settings
from app.ui.window import MainWindow, StartOptions
from tests.test_edges_files import disk, fill, played  # noqa: F401  (disk is a fixture)


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def window(qtbot, tmp_path, source: str) -> MainWindow:
    w = MainWindow(open_settings(str(tmp_path / "settings.ini")), lambda *a: stand_in(size=64))
    w.snapshot_dir = w.video_dir = tmp_path
    qtbot.addWidget(w)
    w.show()
    w.start(StartOptions(Choice("stand-in", None), source, "a test", 64))
    qtbot.waitUntil(lambda: w.pipeline.worker.loop is not None, timeout=60000)
    return w


def test_window_recording_on_a_disk_that_fills(qtbot, tmp_path, disk):  # noqa: F811
    folder = disk("20m")
    video = write_test_video(tmp_path / "clip.mp4", frames=30, size=64, fps=30)
    w = window(qtbot, tmp_path, f"video:{video}")
    w.pipeline.start_recording(str(folder / "rec.mp4"), 10.0, False)
    qtbot.waitUntil(lambda: any(p.stat().st_size > 0 for p in folder.glob("rec.recording*.mp4")), timeout=20000)
    fill(folder, leave=4 * 2**20)
    qtbot.waitUntil(lambda: not w.pipeline.recording and not w.actions.act_record.isChecked(), timeout=20000)
    said = w.statusBar().currentMessage()
    assert "the disk is full" in said and str(folder / "rec.mp4") in said, said
    n = int(re.search(r"the (\d+) frames so far are kept", said).group(1))
    assert n > 0 and played(folder / "rec.mp4") == n
    w.close()


def test_window_snapshot_on_a_read_only_disk(qtbot, tmp_path, disk):  # noqa: F811
    w = window(qtbot, tmp_path, "sketch")
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=20000)
    w.snapshot_dir = disk("20m", read_only=True)
    assert w.actions.snapshot() is None
    assert "read-only" in w.statusBar().currentMessage()
    assert list(w.snapshot_dir.iterdir()) == []
    w.close()
