"""The MJPEG server on loopback with real sockets: valid JPEGs to two clients, a stalled client that slows
nobody and grows no memory, the client limit, one-line errors for a taken port and a wrong token, a clean stop."""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from app.live.serve import MjpegServer
from models.errors import UserError


def frame(i: int, side: int = 64) -> np.ndarray:
    """A flat grey frame whose level tells its number (survives JPEG within a few levels)."""
    return np.full((side, side, 3), (i * 10) % 250, np.uint8)


def noisy(i: int, side: int = 256) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 256, (side, side, 3), dtype=np.uint8)  # big JPEGs: fills buffers


class Client(threading.Thread):
    """Reads /stream.mjpg over a raw socket and decodes every part."""

    def __init__(self, port: int, limit: int):
        super().__init__(daemon=True)
        self.port, self.limit = port, limit
        self.levels: list[float] = []
        self.shapes: set = set()
        self.error = ""
        self.last_new = 0.0  # time.perf_counter() when a part differing from the one before arrived

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                f = s.makefile("rb")
                status = f.readline()
                assert b" 200 " in status, status
                while f.readline() not in (b"\r\n", b""):
                    pass  # response headers
                last = b""
                while len(self.levels) < self.limit:
                    line = f.readline()
                    if not line:
                        return
                    if not line.startswith(b"--sdxsframe"):
                        continue
                    headers = {}
                    while (h := f.readline().strip()):
                        k, _, v = h.partition(b":")
                        headers[k.lower()] = v.strip()
                    assert headers[b"content-type"] == b"image/jpeg"
                    jpeg = f.read(int(headers[b"content-length"]))
                    if jpeg != last:
                        self.last_new, last = time.perf_counter(), jpeg
                    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                    assert img is not None, "not a valid JPEG"
                    self.shapes.add(img.shape)
                    self.levels.append(float(img.mean()))
        except Exception as e:  # reported by the test
            self.error = repr(e)


def publish_until(server: MjpegServer, done, make=frame, period: float = 0.02, most: int = 2000) -> list[float]:
    """Publish frames every `period` until done() or `most` frames; returns each publish() duration."""
    took = []
    for i in range(most):
        if done():
            break
        t = time.perf_counter()
        server.publish(make(i))
        took.append(time.perf_counter() - t)
        time.sleep(period)
    return took


def test_two_clients_get_valid_jpegs_at_the_engines_rate():
    with MjpegServer("127.0.0.1:0") as server:
        clients = [Client(server.port, 40), Client(server.port, 40)]
        for c in clients:
            c.start()
        end = time.time() + 10
        while server.clients < 2 and time.time() < end:
            time.sleep(0.01)
        published_before = server.frames_published
        publish_until(server, lambda: not any(c.is_alive() for c in clients), most=400)
        for c in clients:
            c.join(10)
        published = server.frames_published - published_before
        for c in clients:
            assert not c.error, c.error
            assert len(c.levels) == 40 and c.shapes == {(64, 64, 3)}
            assert all(abs(v - 10 * round(v / 10)) < 4 for v in c.levels)  # the published pictures, decoded
        # each client got (nearly) every frame published while it read: the engine's rate, not less
        assert published <= 70, f"{published} frames published for 40 received: clients lag the engine"
        assert server.encodes <= server.frames_published  # one encoding per frame, not per client
        watcher = Client(server.port, 5)
        watcher.start()
        end = time.time() + 10
        while server.clients < 1 and time.time() < end:
            time.sleep(0.01)
        encodes, still = server.encodes, frame(7)
        publish_until(server, lambda: not watcher.is_alive(), make=lambda i: still, most=200)
        watcher.join(10)
        assert len(watcher.levels) == 5 and not watcher.error  # the loop reusing its output (a still scene)
        assert server.encodes - encodes == 1  # publishes the same array: it is encoded once
        r = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/frame.jpg", timeout=5)
        assert r.headers["Content-Type"] == "image/jpeg"
        assert cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR).shape == (64, 64, 3)


def test_a_stalled_client_slows_nobody_and_grows_no_memory():
    server = MjpegServer("127.0.0.1:0", send_timeout=1.5).start()
    try:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", server.port))
        stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # and never reads
        reader = Client(server.port, 60)
        reader.start()
        end = time.time() + 10
        while server.clients < 2 and time.time() < end:
            time.sleep(0.01)
        assert server.clients == 2
        tracemalloc.start()
        sizes = []

        def done() -> bool:
            sizes.append(tracemalloc.get_traced_memory()[0])
            return not reader.is_alive()

        took = publish_until(server, done, make=noisy, most=600)
        tracemalloc.stop()
        reader.join(10)
        assert not reader.error, reader.error
        assert len(reader.levels) == 60  # the reader went on while the other client stalled
        assert max(took) < 0.2, f"publish() waited {max(took):.3f} s"  # the engine never waits for a client
        assert sizes[-1] - sizes[min(10, len(sizes) - 1)] < 2_000_000, "memory grew while a client stalled"
        # the engine goes on; the stalled client is dropped after its send timeout, the finished one at once
        publish_until(server, lambda: server.clients == 0, make=noisy, period=0.05, most=200)
        assert server.clients == 0
        stalled.close()
    finally:
        server.stop()


def test_client_limit_refuses_in_one_line():
    with MjpegServer("127.0.0.1:0", max_clients=1) as server:
        server.publish(frame(1))
        first = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/stream.mjpg", timeout=5)
        end = time.time() + 5
        while server.clients < 1 and time.time() < end:
            time.sleep(0.01)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/stream.mjpg", timeout=5)
        assert err.value.code == 503
        body = err.value.read().decode().strip()
        assert "too many clients" in body and "\n" not in body
        first.close()


def test_port_in_use_is_one_line_user_error():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(UserError) as err:
            MjpegServer(f"127.0.0.1:{port}").start()
        msg = str(err.value)
        assert "in use" in msg and str(port) in msg and "\n" not in msg
    finally:
        taken.close()


def test_other_address_needs_a_token_and_bad_addresses_are_refused():
    with pytest.raises(UserError) as err:
        MjpegServer("0.0.0.0:8765")  # refused before anything listens
    assert "--serve-token" in str(err.value) and "\n" not in str(err.value)
    assert MjpegServer("0.0.0.0:8765", token="auto").token  # a token is made (not started here: loopback only)
    for bad in ("127.0.0.1:99999", "127.0.0.1:http", "[::1"):
        with pytest.raises(UserError):
            MjpegServer(bad)


def test_wrong_token_is_refused_in_one_line():
    with MjpegServer("127.0.0.1:0", token="s3cret-token") as server:
        server.publish(frame(3))
        for query in ("", "?token=wrong"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"http://127.0.0.1:{server.port}/frame.jpg{query}", timeout=5)
            assert err.value.code == 403
            body = err.value.read().decode().strip()
            assert "token" in body and "\n" not in body
        ok = urllib.request.urlopen(server.url("/frame.jpg"), timeout=5)
        assert ok.status == 200 and ok.read()[:2] == b"\xff\xd8"
        page = urllib.request.urlopen(server.url("/"), timeout=5).read().decode()
        assert "/stream.mjpg?token=s3cret-token" in page  # the page a Browser Source opens carries the token on


def test_stop_ends_streams_and_joins_threads():
    server = MjpegServer("127.0.0.1:0").start()
    server.publish(frame(1))
    clients = [Client(server.port, 10_000) for _ in range(2)]
    for c in clients:
        c.start()
    end = time.time() + 5
    while server.clients < 2 and time.time() < end:
        time.sleep(0.01)
    t = time.perf_counter()
    server.stop()
    assert time.perf_counter() - t < 5
    for c in clients:
        c.join(5)
        assert not c.is_alive()  # their streams ended
    assert not [th for th in threading.enumerate() if th.name.startswith("mjpeg")]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
