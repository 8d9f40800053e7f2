"""A server no client can hang, on loopback with real sockets: a still picture stays a live stream (each part
closed by the next boundary at once, the newest frame sent again), slowloris sockets are dropped within the
header deadline while a normal client keeps getting frames, 400 idle sockets do not make 400 threads, stop()
does not wait for idle or half-sent clients, the Host check against DNS rebinding, the token in a header and
URL-encoded, the options checked before the model loads, and a real `stream --serve` that exits within 2 s of
its last frame with an idle socket open."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from app.live.serve import MjpegServer, check_token
from app.live.testing import write_test_video
from main import main
from models.errors import UserError
from tests.test_serve import Client, frame

ROOT = Path(__file__).resolve().parents[1]


def request(port: int, path: str = "/frame.jpg", headers: str = "Host: 127.0.0.1\r\n") -> tuple[int, bytes]:
    """One raw GET: (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\n{headers}\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def closed_by_server(s: socket.socket) -> bool:
    if not select.select([s], [], [], 0)[0]:
        return False
    try:
        return s.recv(1) == b""
    except OSError:  # reset
        return True


def wait_for(cond, timeout: float = 10.0) -> bool:
    end = time.time() + timeout
    while not cond() and time.time() < end:
        time.sleep(0.02)
    return cond()


def test_a_still_picture_stays_a_live_stream():
    with MjpegServer("127.0.0.1:0", repeat_after=0.5) as server:
        server.publish(frame(5))  # once, then nothing changes
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            f = s.makefile("rb")
            while f.readline() not in (b"\r\n", b""):
                pass  # response headers
            assert f.readline() == b"--sdxsframe\r\n"  # the first boundary comes with the headers
            t0, parts = time.perf_counter(), 0
            while time.perf_counter() - t0 < 2.6:
                headers = {}
                while (h := f.readline().strip()):
                    k, _, v = h.partition(b":")
                    headers[k.lower()] = v.strip()
                jpeg = f.read(int(headers[b"content-length"]))
                assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
                # the part is closed by the next boundary at once, not when the next frame comes
                assert f.read(len(b"\r\n--sdxsframe\r\n")) == b"\r\n--sdxsframe\r\n"
                parts += 1
        assert parts >= 5, f"{parts} parts in 2.6 s of a still picture: the newest frame is not sent again"


def test_slowloris_sockets_are_dropped_while_a_client_streams():
    deadline = 1.5
    with MjpegServer("127.0.0.1:0", header_timeout=deadline) as server:
        reader = Client(server.port, 100_000)
        reader.start()
        done = threading.Event()
        engine = threading.Thread(target=lambda: [server.publish(frame(i)) for i in range(100_000) if not done.wait(0.04)],
                                  daemon=True)
        engine.start()
        try:
            assert wait_for(lambda: len(reader.levels) > 5), reader.error
            slow = []
            for _ in range(20):  # a request line, then one header byte at a time, never the blank line
                s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                slow.append([s, time.perf_counter(), None])
            got_before = len(reader.levels)
            end = time.perf_counter() + deadline + 2.0
            while time.perf_counter() < end and any(c is None for _, _, c in slow):
                for entry in slow:
                    s, _, closed = entry
                    if closed is None:
                        try:
                            s.send(b"X")
                        except OSError:
                            pass
                        if closed_by_server(s):
                            entry[2] = time.perf_counter()
                time.sleep(0.25)
            waited = [c - t if c is not None else float("inf") for _, t, c in slow]
            assert max(waited) < deadline + 1.0, f"slow headers kept a connection {max(waited):.1f} s (deadline {deadline} s)"
            assert len(reader.levels) - got_before >= 15, "the streaming client stopped getting frames meanwhile"
            assert not reader.error
        finally:
            done.set()
            for s, _, _ in slow:
                s.close()


def test_400_idle_sockets_do_not_make_400_threads():
    with MjpegServer("127.0.0.1:0", header_timeout=2.0) as server:
        server.publish(frame(1))
        before = threading.active_count()
        idle, peak = [], 0
        try:
            for i in range(400):  # in bursts of 20, so that the server accepts them as they come
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", server.port))
                idle.append(s)
                if i % 20 == 19:
                    time.sleep(0.05)
                    peak = max(peak, threading.active_count())
            t_end = time.time() + 1.0
            while time.time() < t_end:
                peak = max(peak, threading.active_count())
                time.sleep(0.02)
            assert peak - before <= server.max_connections + 2, f"{peak - before} threads for 400 idle sockets"
            assert request(server.port)[0] == 200  # a real client still gets through (an idle one makes room)
            assert wait_for(lambda: server.connections == 0, 5.0), f"{server.connections} idle connections left"
        finally:
            for s in idle:
                s.close()


def test_stop_does_not_wait_for_idle_half_sent_or_stalled_clients():
    server = MjpegServer("127.0.0.1:0", header_timeout=30, send_timeout=30).start()
    server.publish(frame(1))
    socks = []
    for data in (b"", b"GET /stream.mjpg HTTP/1.1\r\nHos", b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(data)  # idle, half a request, a stream it never reads
        socks.append(s)
    assert wait_for(lambda: server.connections == 3 and server.clients == 1)
    took = []
    stopper = threading.Thread(target=lambda: (t := time.perf_counter(), server.stop(), took.append(time.perf_counter() - t)),
                               daemon=True)
    stopper.start()
    stopper.join(10)
    try:
        assert took and took[0] < 1.0, f"stop() took {took[0] if took else 'over 10'} s with idle clients open"
        assert not [t for t in threading.enumerate() if t.name.startswith("mjpeg")]
    finally:
        for s in socks:
            s.close()


def test_host_header_guards_a_tokenless_loopback_server():
    with MjpegServer("127.0.0.1:0") as server:
        server.publish(frame(2))
        port = server.port
        status, body = request(port, headers=f"Host: rebind.example:{port}\r\n")
        assert status == 403 and b"127.0.0.1" in body and body.count(b"\n") == 1  # one line
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
            assert request(port, headers=f"Host: {host}\r\n")[0] == 200, host
        assert request(port, headers="")[0] == 200  # an HTTP/1.0 tool without a Host header
    with MjpegServer("127.0.0.1:0", token="a-long-token") as server:  # a token guards it: any Host with the token
        server.publish(frame(2))
        assert request(server.port, "/frame.jpg?token=a-long-token", headers="Host: my-pc.lan\r\n")[0] == 200


def test_the_token_in_a_header_or_url_encoded_in_the_query():
    token = "t0k&en=+/%#?x"
    with MjpegServer("127.0.0.1:0", token=token) as server:
        server.publish(frame(4))
        url = server.url("/frame.jpg")
        assert "t0k%26en%3D%2B%2F%25%23%3Fx" in url  # printed URL-encoded: it reaches the server whole
        assert urllib.request.urlopen(url, timeout=5).status == 200
        page = urllib.request.urlopen(server.url("/"), timeout=5).read().decode()
        assert "/stream.mjpg?token=t0k%26en%3D%2B%2F%25%23%3Fx'" in page
        assert request(server.port, headers=f"Host: x\r\nX-SDXS-Token: {token}\r\n")[0] == 200
        assert request(server.port, headers=f"Host: x\r\nAuthorization: Bearer {token}\r\n")[0] == 200
        for wrong in ("X-SDXS-Token: t0k&en", "Authorization: Bearer nope-nope", "Authorization: Basic " + token):
            status, body = request(server.port, headers=f"Host: x\r\n{wrong}\r\n")
            assert status == 403 and b"token" in body and body.count(b"\n") == 1
    for bad in ("short", "has a space", "tab\there12", "x" * 300, "ünïcödé-token"):
        with pytest.raises(UserError, match="--serve-token"):
            check_token(bad)
    assert len(check_token("auto")) >= 16 and check_token(None) is None


@pytest.fixture()
def taken_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


@pytest.mark.parametrize("command", ["stream", "window"])
def test_serve_options_are_checked_before_the_model_loads(tmp_path, capsys, taken_port, command):
    """A missing model would fail its load: the serve error must come first, in one line, at once."""
    video = write_test_video(tmp_path / "in.mp4", frames=2, size=64)
    missing = str(tmp_path / "no-such-model")
    base = ["stream", "--model", missing, "--input", str(video)] if command == "stream" else \
        ["--model", missing, "--settings", str(tmp_path / "s.ini"), "--exit-after", "1"]
    for serve, why in (([f"127.0.0.1:{taken_port}"], "in use"), (["0.0.0.0:0"], "--serve-token"),
                       (["0.0.0.0:0", "--serve-token", "abc"], "--serve-token"), (["10.254.254.254:0", "--serve-token", "auto"], "not one of")):
        t = time.perf_counter()
        assert main([*base, "--serve", *serve]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and why in err and "\n" not in err and "no-such-model" not in err, err
        assert time.perf_counter() - t < 3
    assert main([*base, "--serve-token", "a-long-token"]) == 2
    assert "--serve ADDR" in capsys.readouterr().err  # a token without --serve is refused too


def test_stream_serve_exits_soon_after_its_last_frame_with_an_idle_socket_open(tmp_path, tiny_base):
    """The command's own work (the server stopped, the summary printed) ends within 2 s of the last frame while
    idle sockets are open; the interpreter's teardown after that (torch's, 2-6 s on a busy 2-core machine) is
    only bounded here."""
    video = write_test_video(tmp_path / "in.mp4", frames=400, size=64, fps=10)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "main.py", "stream", "--model", tiny_base, "--input", str(video), "--size", "64",
                             "--serve", f"127.0.0.1:{port}", "--steady", "off", "--dtype", "float32"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    summary: list[tuple[float, str]] = []
    out_reader = threading.Thread(target=lambda: summary.extend((time.perf_counter(), line) for line in proc.stdout
                                                                if line.startswith("frames=")), daemon=True)
    out_reader.start()
    idle: list[socket.socket] = []
    try:
        reader, give_up = None, time.perf_counter() + 180
        while proc.poll() is None and not summary:  # a fresh idle socket every 0.1 s: some are always open
            assert time.perf_counter() < give_up, "stream --serve did not finish"
            try:
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=1))
            except OSError:
                time.sleep(0.1)
                continue
            if reader is None:
                reader = Client(port, 100_000)
                reader.start()
            time.sleep(0.1)
        assert proc.wait(timeout=60) == 0
        exited = time.perf_counter()
    except BaseException:
        proc.kill()
        raise
    finally:
        for s in idle:
            s.close()
    out_reader.join(5)
    assert summary and "frames=400" in summary[0][1], summary
    assert reader is not None and len(reader.levels) > 10, reader and reader.error
    reader.join(5)
    assert not reader.is_alive()  # the server ended its stream
    # the reader's last new picture arrived with the last frame; the command was done within 2 s of it
    done = summary[0][0] - reader.last_new
    assert done < 2.0, f"stream finished {done:.1f} s after its last frame (exited {exited - reader.last_new:.1f} s after)"
