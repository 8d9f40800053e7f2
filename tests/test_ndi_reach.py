"""What NDI output reaches, said where it is offered, and an empty --ndi name as one line (not silently no NDI).

The NDI runtime listens on every interface; its config's adapters.allowed does not change that (measured here
with ss: the test fails, and the docs' claim with it, if a runtime ever binds to loopback when asked)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from main import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("extra", [["--out", "OUT"], []])
def test_an_empty_ndi_name_is_one_line_before_anything_loads(tmp_path, capsys, extra):
    from app.live.testing import write_test_video

    pytest.importorskip("cyndilib")
    out, video = tmp_path / "out.mp4", write_test_video(tmp_path / "in.mp4", frames=2, size=32, fps=10)
    argv = ["stream", "--model", str(tmp_path / "not-loaded"), "--input", str(video), "--ndi", ""]
    code = main(argv + [str(out) if a == "OUT" else a for a in extra])
    err = capsys.readouterr().err
    assert code == 2 and "--ndi '': use a short name" in err and err.count("\n") == 1, err
    assert not out.exists()


def test_help_says_ndi_reaches_every_computer_on_the_network(capsys):
    for argv in (["stream", "--help"], ["--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert "NDI listens on every network interface" in text, argv
    assert "NDI listens on every network interface" in (ROOT / "docs/instrument.md").read_text()


def test_the_output_menu_says_so(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    from app.live.testing import stand_in
    from tests.test_app_window import make_window

    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    asked = []
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (asked.append(a[2]), ("", False))[1])
    w.actions.output.ask_ndi()
    assert "NDI listens on every network interface" in asked[0]
    assert "every computer on the network" in w.actions.output.act_ndi.statusTip()
    w.close()


PROBE = """
import os, subprocess, time, numpy as np
from app.live.ndi import NdiSender
s = NdiSender("reach-probe", 10)
for _ in range(15):
    s.send(np.full((32, 32, 3), np.random.randint(255), np.uint8)); time.sleep(0.1)
out = subprocess.run(["ss", "-tlnp"], capture_output=True, text=True).stdout
print(s.source_name)
print("\\n".join(l.split()[3] for l in out.splitlines() if f"pid={os.getpid()}," in l))
s.close()
"""


@pytest.mark.skipif(not shutil.which("ss"), reason="needs ss (iproute2) to see the listening sockets")
def test_ndi_listens_on_every_interface_even_when_its_config_allows_only_loopback(tmp_path):
    pytest.importorskip("cyndilib")
    (tmp_path / "ndi-config.v1.json").write_text(json.dumps(
        {"ndi": {"machinename": "CONFIGREAD", "adapters": {"allowed": "127.0.0.1"}, "networks": {"ips": "127.0.0.1"}}}))
    env = dict(os.environ, NDI_CONFIG_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    lines = r.stdout.split()
    assert lines[0] == "CONFIGREAD", r.stdout + r.stderr  # the runtime read the file
    listening = lines[2:] if len(lines) > 2 and lines[1] == "(reach-probe)" else lines[1:]
    assert listening and all(a.startswith(("0.0.0.0:", "*:", "[::]:")) for a in listening), listening
