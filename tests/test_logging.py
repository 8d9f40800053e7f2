"""Logging, set up once by the command line (-v, -q, SDXS_LOG); our warnings in the window's status bar; and
the typed errors that replace reading an error's text: a cancelled download, a hub that cannot be reached.

Downloads run against a small hub on a loopback socket that serves a tiny real adapter the way the
Hugging Face hub does (the revision, the file tree, HEAD and GET of each file)."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from app.cli.logs import StderrHandler
from app.live.testing import write_test_video
from main import main
from models.errors import Cancelled, HubUnreachable, UserError
from models.quiet import OURS


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(h)
    for name in OURS:
        logging.getLogger(name).setLevel(logging.NOTSET)


DEFAULT = ["an info line", "warning: a warning line"]
QUIET = ["warning: a warning line"]
VERBOSE = ["debug: models.engine: a debug line", *DEFAULT]


@pytest.mark.parametrize("argv, env, shown", [
    ([], None, DEFAULT),
    (["-q"], None, QUIET),
    (["install-desktop", "--remove", "-q"], None, QUIET),  # after the subcommand too
    (["-v"], None, VERBOSE),
    ([], "warning", QUIET),
    (["-v"], "warning", VERBOSE),  # a flag wins over SDXS_LOG
    ([], "DEBUG", VERBOSE),
])
def test_log_level_from_flags_and_environment(argv, env, shown, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.delenv("SDXS_LOG", raising=False)
    if env:
        monkeypatch.setenv("SDXS_LOG", env)
    for _ in range(3):  # configured again by every main(): still one handler, every line once
        assert main(argv if "install-desktop" in argv else [*argv, "install-desktop", "--remove"]) == 0
    capsys.readouterr()
    ours = logging.getLogger("models.engine")
    ours.debug("a debug line")
    ours.info("an info line")
    ours.warning("a warning line")
    logging.getLogger("httpx").info("a library's info line")  # libraries keep to warnings
    assert capsys.readouterr().err.splitlines() == shown
    assert sum(isinstance(h, StderrHandler) for h in logging.getLogger().handlers) == 1


def test_bad_log_level_in_the_environment_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("SDXS_LOG", "loud")
    assert main(["install-desktop", "--remove"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: SDXS_LOG='loud' is not a log level: use one of debug, info, warning, error"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("flag", ["", "-q", "-v"])
def test_stream_lines_by_level(flag, tmp_path, tiny_base, tiny_controlnet, capsys):
    """A real run: the server's info line by default, none with -q, its per-request debug line with -v;
    the summary line on stdout always."""
    frames = 10 if flag == "-v" else 2  # -v: time for the request
    video = write_test_video(tmp_path / "in.mp4", frames=frames, size=64)
    port = free_port()
    asked = threading.Event()

    def ask():  # one request to the server (its page: answered at once) while the stream runs
        end = time.time() + 120
        while time.time() < end and not asked.is_set():
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                asked.set()
            except OSError:
                time.sleep(0.02)

    if flag == "-v":
        threading.Thread(target=ask, daemon=True).start()
    argv = ["stream", "--model", tiny_base, "--controlnet", tiny_controlnet, "--input", str(video),
            "--serve", f"127.0.0.1:{port}", "--size", "64"]
    assert main([flag, *argv] if flag else argv) == 0
    cap = capsys.readouterr()
    assert f"frames={frames}" in cap.out and "Traceback" not in cap.err
    assert (f"serving http://127.0.0.1:{port}/stream.mjpg" in cap.err) == (flag != "-q"), cap.err
    if flag == "-v":
        assert asked.is_set() and 'debug: app.live.serve_http: 127.0.0.1 "GET / HTTP/1.1" 200' in cap.err, cap.err
    if flag != "-v":
        assert "debug:" not in cap.err, cap.err


def test_offline_hub_id_not_in_the_cache_is_a_typed_one_line_error(tmp_path):
    """HF_HUB_OFFLINE=1 (conftest): a real load of a hub id that no cache holds."""
    from models.loading import load_adapter

    with pytest.raises(HubUnreachable) as err:
        load_adapter("nobody/not-in-any-cache", torch.float32)
    text = str(err.value)
    assert "\n" not in text and "'nobody/not-in-any-cache' is not in the Hugging Face cache" in text and "connect once" in text


class Hub:
    """A hub on a loopback socket serving one repo's files; unknown repos get the hub's RepoNotFound answer.
    on_body runs once the first bytes of a file's body are sent (as a user pressing Cancel mid-download)."""

    SHA = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, repo: str, folder: Path, on_body=None):
        self.files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        self.repo, self.on_body, self.bodies = repo, on_body, 0
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                hub.answer(self, body=False)

            def do_GET(self) -> None:
                hub.answer(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def answer(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        path = h.path.split("?")[0]
        if path.startswith(f"/api/models/{self.repo}/revision/"):
            return self.json(h, {"id": self.repo, "sha": self.SHA, "siblings": [{"rfilename": f} for f in self.files]})
        if path.startswith(f"/api/models/{self.repo}/tree/"):
            return self.json(h, [{"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                                 for f, d in self.files.items()])
        prefix = f"/{self.repo}/resolve/{self.SHA}/"
        data = self.files.get(path[len(prefix):]) if path.startswith(prefix) else None
        if data is None:
            h.send_response(404)
            h.send_header("X-Error-Code", "RepoNotFound")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        h.send_response(200)
        h.send_header("X-Repo-Commit", self.SHA)
        h.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if not body:
            return
        step = max(1, len(data) // 8)
        for i in range(0, len(data), step):
            h.wfile.write(data[i:i + step])
            h.wfile.flush()
            if i == 0 and self.on_body is not None:
                self.on_body()
            time.sleep(0.02)

    @staticmethod
    def json(h: BaseHTTPRequestHandler, value) -> None:
        data = json.dumps(value).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


@pytest.fixture()
def online(monkeypatch, tmp_path):
    """The hub client pointed at a URL, online, with an empty cache of its own."""
    from huggingface_hub import constants

    def point(url: str) -> None:
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "ENDPOINT", url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))

    return point


def test_cancelled_download_is_typed_and_the_next_one_completes(online, tiny_controlnet, qtbot):
    from app.ui.worker import Worker, progress_class
    from models.loading import load_adapter

    cancel = threading.Event()
    hub = Hub("owner/sketch-adapter", Path(tiny_controlnet), on_body=cancel.set)
    online(hub.url)
    progress = progress_class(Worker(), cancel)
    with pytest.raises(Cancelled) as err:
        load_adapter("owner/sketch-adapter", torch.float32, progress)
    assert "Partial files are kept" in str(err.value)
    cancel.clear()
    hub.on_body = None
    adapter = load_adapter("owner/sketch-adapter", torch.float32, progress)
    assert adapter.info.condition and sum(p.numel() for p in adapter.net.parameters()) > 0


def test_worker_says_a_cancelled_load_was_cancelled(online, tiny_base, tiny_controlnet, qtbot):
    from app.live.session import ModelRequest
    from app.ui.worker import Worker

    w = Worker()
    hub = Hub("owner/sketch-adapter", Path(tiny_controlnet), on_body=w.cancel.set)  # the window's Cancel button
    online(hub.url)
    failed, loaded = [], []
    w.failed.connect(failed.append)
    w.loaded.connect(loaded.append)
    w.load(ModelRequest(model=tiny_base, adapters=("owner/sketch-adapter",), device="cpu", dtype="float32"))
    assert failed == [Cancelled().args[0]] and not loaded


def test_hub_failures_told_apart_by_type(online, tiny_controlnet):
    from models.loading import download

    hub = Hub("owner/sketch-adapter", Path(tiny_controlnet))
    online(hub.url)
    with pytest.raises(UserError) as err:  # the hub answers: no such repo
        download("owner/no-such-adapter", "adapter")
    assert not isinstance(err.value, HubUnreachable) and "'owner/no-such-adapter' is not on the Hugging Face hub" in str(err.value)
    online(f"http://127.0.0.1:{free_port()}")  # nothing listens: no network
    with pytest.raises(HubUnreachable):
        download("owner/sketch-adapter", "adapter")


def test_a_warning_from_the_worker_thread_shows_in_the_windows_status_bar(qtbot, tmp_path):
    from app.live.testing import stand_in
    from app.ui.outputs.logbar import StatusBarHandler
    from app.ui.panel.modelpick import Choice
    from app.ui.session.settings import open_settings
    from app.ui.window import MainWindow, StartOptions

    text = "fast path cuda-graphs failed (out of memory); using the eager recipe"
    threads = []

    def loader(*args):  # runs on the worker thread, as the engine's fallback warnings do
        threads.append(threading.current_thread())
        logging.getLogger("models.engine").warning(text)
        logging.getLogger("httpx").warning("a library's warning stays out of the status bar")
        return stand_in(size=64)

    w = MainWindow(open_settings(str(tmp_path / "s.ini")), loader)
    qtbot.addWidget(w)
    w.show()
    w.start(StartOptions(Choice("stand-in", None), "sketch", "a test", 64))
    qtbot.waitUntil(lambda: w.statusBar().currentMessage() == text, timeout=30000)
    assert threads and threads[0] is not threading.main_thread()
    other = threading.Thread(target=lambda: logging.getLogger("app.live.sinks").error("virtual camera lost"))
    other.start()
    other.join()
    qtbot.waitUntil(lambda: w.statusBar().currentMessage() == "virtual camera lost", timeout=10000)
    assert any(isinstance(h, StatusBarHandler) for h in logging.getLogger().handlers)
    w.close()
    assert not any(isinstance(h, StatusBarHandler) for h in logging.getLogger().handlers)  # removed on close
