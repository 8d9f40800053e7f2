"""The MJPEG server's HTTP side with real clients on loopback: two Host headers are refused whatever the first one
says, HEAD is answered as GET without a body (players probe with it), and serve_http drives MjpegServer only
through its public interface."""

from __future__ import annotations

import ast
import http.client
import socket
from pathlib import Path

import numpy as np
import pytest

from app.live.serve import MjpegServer

ROOT = Path(__file__).resolve().parents[1]


def raw(port: int, text: str) -> tuple[int, dict, bytes]:
    """One raw request (HTTP/1.0, the server closes after it): (status, headers, everything after them)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(text.encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


@pytest.fixture
def server():
    s = MjpegServer("127.0.0.1:0").start()
    s.publish(np.full((48, 64, 3), 120, np.uint8))
    yield s
    s.stop()


@pytest.mark.parametrize("hosts", [["127.0.0.1", "rebind.example"], ["localhost", "localhost"],
                                   ["rebind.example", "127.0.0.1"]])
def test_two_host_headers_are_refused(server, hosts):
    lines = "".join(f"Host: {h}\r\n" for h in hosts)
    for path in ("/frame.jpg", "/stream.mjpg", "/"):
        status, _, body = raw(server.port, f"GET {path} HTTP/1.0\r\n{lines}\r\n")
        assert status == 400 and b"two Host headers" in body
    assert raw(server.port, "GET /frame.jpg HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")[0] == 200  # one is fine


def test_a_token_server_refuses_two_host_headers_too():
    with MjpegServer("127.0.0.1:0", token="secret-token") as s:
        status, _, _ = raw(s.port, "GET /?token=secret-token HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n")
        assert status == 400


@pytest.mark.parametrize("path, kind", [("/frame.jpg", "image/jpeg"), ("/", "text/html; charset=utf-8"),
                                        ("/stream.mjpg", "multipart/x-mixed-replace; boundary=sdxsframe"),
                                        ("/nothing", "text/plain; charset=utf-8")])
def test_head_is_answered_as_get_without_a_body(server, path, kind):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("HEAD", path)
    r = conn.getresponse()
    assert r.status == (404 if path == "/nothing" else 200) and r.getheader("Content-Type") == kind
    assert r.read() == b""
    conn.close()
    status, headers, rest = raw(server.port, f"HEAD {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    assert rest == b""  # nothing after the headers on the wire
    if path != "/stream.mjpg":  # the same length a GET's body has
        got = raw(server.port, f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        assert int(headers["Content-Length"]) == len(got[2])
    assert server.clients == 0  # a probe takes no stream slot


def test_the_http_side_uses_only_the_servers_public_interface():
    tree = ast.parse((ROOT / "app/live/serve_http.py").read_text())
    private = sorted({n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                      and n.value.id == "hub" and n.attr.startswith("_")}
                     | {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                        and isinstance(n.value, ast.Attribute) and n.value.attr == "hub" and n.attr.startswith("_")})
    assert private == []
