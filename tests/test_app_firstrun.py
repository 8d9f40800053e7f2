"""A new user's first start on a bare Linux desktop: Qt's X11 libraries checked before Qt starts (all the missing
ones named, with the one command that installs them), and the SDXS download offered only when the hub answers."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.ui import qtapp
from app.ui.panel import modelpick

ROOT = Path(__file__).resolve().parent.parent
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")
HIDDEN = ("libxcb-cursor.so.0", "libxkbcommon-x11.so.0")  # two of the plugin's libraries, as a bare desktop lacks them


def window_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE")}
    env.update(DISPLAY=":987", HF_HUB_OFFLINE="1", **extra)  # no X server there: the check comes before Qt connects
    return env


def can_hide_libraries() -> bool:
    return (sys.platform.startswith("linux") and os.geteuid() == 0 and shutil.which("unshare") is not None
            and all((LIBDIR / lib).exists() for lib in HIDDEN)
            and subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0)


@pytest.mark.skipif(not can_hide_libraries(), reason="needs root and unshare to hide two libraries in a mount namespace")
def test_missing_x11_libraries_are_named_with_the_command_that_installs_them():
    """The libraries really gone (an empty file bound over each, in a private mount namespace): Qt alone names
    only xcb-cursor0 and suggests reinstalling; the app names both and one apt command, before Qt starts."""
    hide = " && ".join(f"mount --bind /dev/null {LIBDIR / lib}" for lib in HIDDEN)
    qt_alone = subprocess.run(["unshare", "-m", "sh", "-c", f"{hide} && exec {sys.executable} -c "
                               "'from PySide6.QtWidgets import QApplication; QApplication([])'"],
                              cwd=ROOT, env=window_env(), capture_output=True, text=True, timeout=120)
    assert qt_alone.returncode != 0 and "xcb-cursor0" in qt_alone.stderr and "xkbcommon-x11" not in qt_alone.stderr
    r = subprocess.run(["unshare", "-m", "sh", "-c", f"{hide} && exec {sys.executable} main.py --model demo"],
                       cwd=ROOT, env=window_env(), capture_output=True, text=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "libxcb-cursor.so.0, libxkbcommon-x11.so.0" in lines[0]
    assert "`sudo apt install libxcb-cursor0 libxkbcommon-x11-0`" in lines[0]
    assert "Reinstalling" not in r.stderr and "qt.qpa" not in r.stderr
    off = subprocess.run(["unshare", "-m", "sh", "-c", f"{hide} && exec {sys.executable} -c "
                          "'from app.ui.qtapp import application; application(); print(\"started\")'"],
                         cwd=ROOT, env=window_env(QT_QPA_PLATFORM="offscreen"), capture_output=True, text=True, timeout=120)
    assert off.returncode == 0 and "started" in off.stdout, off.stderr  # offscreen needs none of them: not checked


def test_the_check_reads_the_one_list(tmp_path):
    """The same list tests/system_deps.sh installs from; a library the loader cannot open is reported with its
    package, in a real `python main.py` (the list pointed at one more, absent, library)."""
    listed = [line.split() for line in qtapp.XCB_LIBS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert ["libxcb-cursor.so.0", "libxcb-cursor0"] in listed and all(len(pair) == 2 for pair in listed)
    assert "qt-xcb-libs.txt" in (ROOT / "tests" / "system_deps.sh").read_text()
    table = tmp_path / "libs.txt"
    table.write_text(qtapp.XCB_LIBS.read_text() + "libsdxs-absent.so.7 libsdxs-absent7\n")
    code = (f"import sys; from app.ui import qtapp; qtapp.XCB_LIBS = __import__('pathlib').Path({str(table)!r}); "
            "from app.cli.main import main; sys.exit(main(['--model', 'demo']))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=window_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "(libsdxs-absent.so.7)" in r.stderr and "`sudo apt install libsdxs-absent7`" in r.stderr
    for platform in ("offscreen", "wayland", "offscreen;xcb"):
        os.environ["QT_QPA_PLATFORM"] = platform
        try:
            assert qtapp.qt_platform() != "xcb"
            qtapp.check_platform_libraries(table)  # not X11: nothing to check, nothing raised
        finally:
            os.environ["QT_QPA_PLATFORM"] = "offscreen"


class _Hub(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_HEAD(self):
        self.send_response(self.status if self.path == f"/api/models/{modelpick.SDXS}" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def hub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_download_is_offered_only_when_the_hub_answers(hub):
    assert modelpick.hub_answers(2.0, hub)  # a hub that answers (a loopback stand-in at HF_ENDPOINT's place)
    _Hub.status = 503
    try:
        assert not modelpick.hub_answers(2.0, hub)  # a hub that answers with an error cannot serve the download
    finally:
        _Hub.status = 200
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    assert not modelpick.hub_answers(2.0, f"http://127.0.0.1:{port}")  # nothing there: refused at once
    assert not modelpick.hub_answers(2.0, "http://no-such-host.invalid")  # no DNS, as offline
    silent = socket.socket()  # a network that swallows packets: accepts, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        t0 = time.monotonic()
        probe = modelpick.HubProbe(0.5, f"http://127.0.0.1:{silent.getsockname()[1]}")
        assert probe.answered() is False and time.monotonic() - t0 < 1.5  # bounded by its timeout
    finally:
        silent.close()
    assert modelpick.HubProbe(2.0, hub).answered()


def test_offline_means_no_offer(monkeypatch):
    monkeypatch.setattr(modelpick, "in_hub_cache", lambda *a: False)
    monkeypatch.setattr(modelpick, "demo_available", lambda: (True, True))
    monkeypatch.setattr(modelpick, "hub_offline", lambda: True)  # HF_HUB_OFFLINE=1
    assert not modelpick.startup_choice(None, None).offer_download
    monkeypatch.setattr(modelpick, "hub_offline", lambda: False)
    assert modelpick.startup_choice(None, None).offer_download  # then only if HubProbe hears the hub (app/cli/window.py)


FIRST_START = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from app.ui import qtapp
QMessageBox.question = lambda *a, **k: (print("ASKED", flush=True), QMessageBox.StandardButton.No)[1]
make = qtapp.application
def application():
    app = make()
    QTimer.singleShot(4000, lambda: [w.close() for w in QApplication.topLevelWidgets() if w.inherits("QMainWindow")])
    return app
qtapp.application = application
from app.cli.main import main
sys.exit(main(["--settings", sys.argv[1], "--source", "sketch"]))
"""


@pytest.mark.parametrize("answers", [True, False])
def test_first_start_asks_about_the_download_only_when_the_hub_answers(tmp_path, hub, answers):
    """`python main.py` on a first start (no settings, an empty Hugging Face cache, not HF_HUB_OFFLINE): the hub
    stand-in answers -> the question; nothing at HF_ENDPOINT (offline) -> no question, the demo model starts."""
    if answers:
        endpoint = hub
    else:
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
        closed.close()
    env = window_env(QT_QPA_PLATFORM="offscreen", HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=endpoint)
    del env["HF_HUB_OFFLINE"]
    r = subprocess.run([sys.executable, "-c", FIRST_START, str(tmp_path / "settings.ini")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert ("ASKED" in r.stdout) == answers, r.stdout + r.stderr
    assert "frames=" in r.stdout
