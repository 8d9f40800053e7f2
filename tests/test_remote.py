"""The engine server and its client over real WebRTC on loopback (aiortc both ends, the tiny real engine): pictures
follow the frames and the settings, a wrong token / a busy server / a dropped link / a server killed mid-frame
each give one line and nothing hangs, and 100 connect/disconnect cycles leave the server's memory and threads
flat (read from /proc of a real `serve-engine` process)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.live.loop import Frame, LiveLoop
from app.live.settings import LiveSettings
from app.remote.client import RemoteEngine
from app.remote.server import EngineServer, check_listen
from models.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "k" * 11 + "Q" * 11  # 22 characters: 128 bits' worth
pytestmark = pytest.mark.usefixtures("one_thread")


def drawing(n: int, size: int = 64) -> Frame:
    """A drawing whose black bar grows with n (each frame differs)."""
    img = np.full((size, size, 3), 255, np.uint8)
    img[size // 2 - 2:size // 2 + 2, 4:8 + n % (size - 12)] = 0
    return Frame(img, time.perf_counter(), True, n)


@pytest.fixture()
def server(engine):
    srv = EngineServer(LiveLoop(engine, LiveSettings(prompt="a cat", size=64)), "127.0.0.1:0", token=TOKEN, idle=3.0)
    srv.start()
    yield srv
    srv.stop()


def test_pictures_come_back_and_settings_reach_the_engine(server):
    with RemoteEngine(server.url, TOKEN) as remote:
        assert remote.size == 64 and remote.state == "live"
        pics = [remote.step(drawing(i), LiveSettings(prompt="a dog", seed=3, size=64)) for i in range(3)]
        assert [p.seq for p in pics] == [1, 2, 3] and all(p.image.shape == (64, 64, 3) for p in pics)
        assert server.loop.settings.prompt == "a dog" and server.loop.settings.seed == 3
        assert pics[-1].bytes_out > 0 and pics[-1].bytes_in > 0 and pics[-1].latency_ms > 0
        same = remote.step(drawing(2))  # the same drawing again: the server's loop reuses its output
        assert same.reused and np.array_equal(same.image, pics[-1].image)
        assert remote.snapshot().shape == (64, 64, 3)
    assert _until(lambda: server.session is None), "the server still holds the closed client"


def test_wrong_token_busy_server_and_bad_values_are_one_line(server):
    import threading

    before = threading.active_count()
    with pytest.raises(UserError, match="refused the token") as e:
        RemoteEngine(server.url, "x" * 22).connect()
    assert "\n" not in str(e.value)
    assert threading.active_count() == before, "a refused client left its thread running"
    with RemoteEngine(server.url, TOKEN) as first:
        with pytest.raises(UserError, match="engine busy") as e:
            RemoteEngine(server.url, TOKEN).connect()
        assert "\n" not in str(e.value)
        from app.remote.messages import Message

        first.send(Message(type="settings", fields={"loras": {"/etc/passwd": 1.0}}))  # a path names nothing offered
        assert _until(lambda: "not offered" in first.last_error), first.last_error
        assert first.step(drawing(1)).image.shape == (64, 64, 3)  # the session goes on


def test_the_command_line_says_a_wrong_token_in_one_line(server, tmp_path):
    clip = _clip(tmp_path)
    r = subprocess.run([sys.executable, "main.py", "stream", "--engine", server.url, "--engine-token", "nope" * 6,
                        "--input", str(clip), "--out", str(tmp_path / "o.mp4")], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env={**os.environ, "SDXS_ENGINE_TOKEN": ""})
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "refused the token" in r.stderr, r.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_stream_through_the_engine_server_writes_the_pictures(server, tmp_path):
    clip = _clip(tmp_path)
    r = subprocess.run([sys.executable, "main.py", "stream", "--engine", server.url, "--input", str(clip), "--out",
                        str(tmp_path / "o.mp4"), "--max-frames", "5", "--prompt", "a dog"], cwd=ROOT, capture_output=True,
                       text=True, timeout=180, env={**os.environ, "SDXS_ENGINE_TOKEN": TOKEN})
    assert r.returncode == 0, r.stderr
    assert "frames=5" in r.stdout and server.worker.rendered >= 5
    from app.live.testing import count_frames

    assert count_frames(tmp_path / "o.mp4") == 5


def test_a_dropped_link_reconnects_and_says_so(server, caplog):
    said = []
    with RemoteEngine(server.url, TOKEN, say=said.append, give_up=20) as remote:
        remote.step(drawing(1))
        session = server.session
        asyncio.run_coroutine_threadsafe(server._close(session, "test drops it"), server._aio).result(5)  # noqa: SLF001
        assert _until(lambda: remote.state == "reconnecting" or server.session not in (None, session), 5)
        pic = remote.step(drawing(2))  # waits for the new link, then sends the frame again
        assert pic.image.shape == (64, 64, 3) and remote.state == "live"
    assert len([s for s in said if "link lost" in s]) == 1 and len([s for s in said if "back after" in s]) == 1, said


class _Touch:
    """Unpickling this writes a file: the proof that a payload was unpickled."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_pause_holds_the_picture_and_a_pickle_is_refused_never_unpickled(server, tmp_path):
    import pickle

    from app.remote.messages import Message

    with RemoteEngine(server.url, TOKEN) as remote:
        held = remote.step(drawing(1))
        remote.send(Message(type="pause", fields={"on": True}))
        assert _until(lambda: server.session is not None and server.session.paused)
        again = remote.step(drawing(20))  # paused: the held picture comes back at once
        assert again.reused and again.image.shape == held.image.shape
        remote.send(Message(type="pause", fields={"on": False}))
        assert _until(lambda: not server.session.paused)
        assert not remote.step(drawing(30)).reused
        marker = tmp_path / "unpickled"
        payload = pickle.dumps(_Touch(marker))
        seq = remote._seq + 1  # noqa: SLF001 - sent as the next step's frame would be
        remote._aio.call_soon_threadsafe(remote._send_frame, None, {"seq": seq, "drawn": True}, payload)  # noqa: SLF001
        assert _until(lambda: "neither PNG nor JPEG" in remote.last_error), remote.last_error
        with pytest.raises(UserError, match="neither PNG nor JPEG"):
            remote.step(drawing(40))  # the frame of this seq failed on the server: one line, no wait
        assert not marker.exists()
        assert remote.step(drawing(41)).image.shape == (64, 64, 3)  # the next frame is fine


def test_check_listen_needs_a_long_token_beyond_loopback():
    with pytest.raises(UserError, match="--token auto"):
        check_listen("0.0.0.0:0", None)
    with pytest.raises(UserError, match="128 bits"):
        check_listen("0.0.0.0:0", "short-token")
    assert len(check_listen("0.0.0.0:0", "auto")[2]) >= 22
    assert check_listen("7000", None)[:2] == ("127.0.0.1", 7000)


# a real serve-engine process: killed mid-frame, and 100 clients in a row


def _serve(tiny_base, tiny_controlnet, port: int, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "main.py", "serve-engine", "--model", tiny_base, "--controlnet", tiny_controlnet, "--size", "64",
           "--device", "cpu", "--dtype", "float32", "--listen", f"127.0.0.1:{port}", "--token", TOKEN, *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    line = proc.stdout.readline()
    assert "serving the engine" in line, line + proc.stdout.read()
    return proc


def _proc_status(pid: int) -> tuple[float, int]:
    """(resident MiB, threads) of a live process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def test_a_server_killed_mid_frame_is_one_line_and_nothing_hangs(tiny_base, tiny_controlnet):
    port = _free_port()
    proc = _serve(tiny_base, tiny_controlnet, port)
    said = []
    remote = RemoteEngine(f"http://127.0.0.1:{port}", TOKEN, say=said.append, give_up=3, timeout=5).connect()
    try:
        remote.step(drawing(1))
        proc.kill()  # gone: no close, no goodbye
        t0 = time.monotonic()
        with pytest.raises(UserError, match="went away") as e:
            for i in range(2, 100):
                remote.step(drawing(i))
        assert "\n" not in str(e.value) and time.monotonic() - t0 < 20
        assert len([s for s in said if "link lost" in s]) == 1, said
    finally:
        remote.close()
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory and threads from /proc (Linux)")
def test_a_hundred_clients_in_a_row_leave_memory_and_threads_flat(tiny_base, tiny_controlnet):
    port = _free_port()
    proc = _serve(tiny_base, tiny_controlnet, port)
    url, readings = f"http://127.0.0.1:{port}", {}
    try:
        for i in range(1, 101):
            remote = _connect_when_free(url)
            remote.step(drawing(i))
            camera = drawing(i + 1)
            assert remote.step(Frame(camera.image, time.perf_counter(), False, i)).track  # both video tracks too
            remote.close()
            if i in (20, 100):
                time.sleep(1.0)  # the server notices the last close
                readings[i] = _proc_status(proc.pid)
        logging.getLogger(__name__).info("serve-engine after 20 and 100 clients: %s", readings)
        (rss20, threads20), (rss100, threads100) = readings[20], readings[100]
        assert threads100 <= threads20 + 2, readings
        assert rss100 - rss20 < 40, readings  # MiB over 80 more clients: flat, not a leak per client
    finally:
        proc.kill()
        proc.wait()


def _connect_when_free(url: str, wait: float = 10.0) -> RemoteEngine:
    """The next client: the server frees the last one's session when its channel closes (a moment)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return RemoteEngine(url, TOKEN).connect()
        except UserError as e:
            if "busy" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _until(check, wait: float = 10.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clip(tmp_path: Path, frames: int = 8) -> Path:
    import cv2

    path = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, (64, 64))
    for i in range(frames):
        w.write(cv2.cvtColor(drawing(i * 5).image, cv2.COLOR_RGB2BGR))
    w.release()
    return path
