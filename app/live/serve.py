"""The output as a local MJPEG stream over HTTP, for OBS (Media Source or Browser Source), VLC and browsers.

    http://127.0.0.1:8765/stream.mjpg   multipart/x-mixed-replace, one JPEG per engine frame
    http://127.0.0.1:8765/frame.jpg     the newest frame
    http://127.0.0.1:8765/              a page showing the stream (an OBS Browser Source can open it)

publish() only stores a reference to the frame: the engine never waits for a client. Each frame is JPEG-encoded
once, by the first client thread that wants it, and every client sends the newest encoded frame when it is
ready for one, so a slow client skips frames and a stalled one (its socket buffer full) blocks only its own
thread until its send times out. At most max_clients streams at a time; the next gets a one-line 503.

It listens on loopback by default. Any other address reaches other machines, so it needs a token, which
every URL must then carry as ?token=...; without one the server refuses to start.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from models.errors import UserError

log = logging.getLogger(__name__)
BOUNDARY = "sdxsframe"
PAGE = "<!doctype html><title>SDXS Live</title><body style='margin:0;background:#000'>" \
       "<img src='/stream.mjpg{q}' style='width:100vw;height:100vh;object-fit:contain'></body>"


def parse_address(text: str, default_port: int = 8765) -> tuple[str, int]:
    """HOST:PORT, :PORT, PORT or HOST (a bracketed IPv6 host works too) -> (host, port)."""
    t = (text or "").strip()
    host, port = "127.0.0.1", default_port
    if t.isdigit():
        port = int(t)
    elif t.startswith("["):
        host, bracket, rest = t[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else (default_port if not rest else -1)
        port = port if bracket else -1
    elif ":" in t:
        host, _, p = t.rpartition(":")
        port = int(p) if p.isdigit() else -1
        host = host or "127.0.0.1"
    elif t:
        host = t
    if not 0 <= port <= 65535:  # 0: any free port (the URL printed at start names it)
        raise UserError(f"--serve {text!r}: use HOST:PORT with a port from 1 to 65535, like 127.0.0.1:8765")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MjpegServer:
    """Serves the newest published frame to up to max_clients MJPEG clients; start() binds, stop() joins.

    token: required in every URL as ?token=...; needed for any address that is not loopback ("auto" makes one)."""

    label = "the MJPEG stream"  # its name in a sink's one-line failure (app.live.sinks)

    def __init__(self, address: str = "127.0.0.1:8765", token: str | None = None, max_clients: int = 8,
                 quality: int = 85, send_timeout: float = 5.0):
        self.host, self.port = parse_address(address)
        if token == "auto":
            token = secrets.token_urlsafe(16)
        if not is_loopback(self.host) and not token:
            raise UserError(f"--serve {address!r} would let other computers watch: add --serve-token auto (a token "
                            "every URL must carry), or serve on 127.0.0.1")
        self.token = token or None  # None: loopback without a token
        self.max_clients = int(max_clients)  # streams at a time; more get 503
        self.quality = int(quality)  # JPEG quality, 1..100
        self.send_timeout = float(send_timeout)  # seconds a client may stall before it is dropped
        self.frames_published = 0
        self.encodes = 0  # JPEG encodings done: one per published frame that some client wanted
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] | None = None  # (seq, bytes) of the newest encoded frame
        self._clients: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- the engine's side --------------------------------------------------------------------------

    def publish(self, rgb: np.ndarray) -> None:
        """Offer a new output frame (uint8 RGB). Cheap and never blocks on clients."""
        with self._cond:
            same = rgb is self._frame  # the live loop reused its last output (a still scene): no new encoding
            self._frame = rgb
            self._seq += 1
            self.frames_published += 1
            if same and self._jpeg is not None and self._jpeg[0] == self._seq - 1:
                self._jpeg = (self._seq, self._jpeg[1])
            self._cond.notify_all()

    send = publish  # the sink interface stream uses: send(frame) and close()

    @property
    def clients(self) -> int:
        with self._cond:
            return len(self._clients)

    def url(self, path: str = "/stream.mjpg") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}" + (f"?token={self.token}" if self.token else "")

    def start(self) -> MjpegServer:
        server = self

        class Handler(_Handler):
            hub = server

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        httpd_class = type("Httpd", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": False,
                                                             "block_on_close": True})
        try:
            self._httpd = httpd_class((self.host, self.port), Handler)
        except OSError as e:
            why = "the port is in use by another program" if e.errno in (98, 48, 10048) else (e.strerror or str(e))
            raise UserError(f"cannot serve on {self.host}:{self.port}: {why}; choose another, like --serve "
                            f"{self.host}:{self.port + 1}") from None
        self.port = self._httpd.server_address[1]  # port 0 picks a free one
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="mjpeg-server", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, end every client's stream and join all threads."""
        if self._httpd is None:
            return
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
            for sock in list(self._clients):  # a client stalled inside sendall wakes up with an error
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._httpd.shutdown()
        self._httpd.server_close()  # block_on_close: joins the handler threads
        self._thread.join(timeout)
        self._httpd = None

    close = stop

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- the clients' side --------------------------------------------------------------------------

    def _wait_jpeg(self, after: int, timeout: float = 0.5) -> tuple[int, bytes] | None:
        """The newest frame as JPEG once it is newer than seq `after` (None on timeout or stop)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > after or self._stopping.is_set(), timeout):
                return None
            if self._stopping.is_set():
                return None
            seq, frame = self._seq, self._frame
        with self._encode_lock:  # outside _cond: publish() never waits for an encoding
            if self._jpeg is None or self._jpeg[0] < seq:
                bgr = cv2.cvtColor(np.ascontiguousarray(frame[:, :, :3]), cv2.COLOR_RGB2BGR)
                ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
                self.encodes += 1
                self._jpeg = (seq, buf.tobytes())
            return self._jpeg

    def _admit(self, sock: socket.socket) -> bool:
        with self._cond:
            if len(self._clients) >= self.max_clients:
                return False
            self._clients.add(sock)
            return True

    def _leave(self, sock: socket.socket) -> None:
        with self._cond:
            self._clients.discard(sock)


class _Handler(BaseHTTPRequestHandler):
    hub: MjpegServer
    server_version = "SDXSLive"

    def log_message(self, format: str, *args) -> None:  # keep the terminal for our own lines
        log.debug("%s " + format, self.address_string(), *args)

    def _plain(self, code: int, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        hub = self.hub
        url = urlsplit(self.path)
        if hub.token:
            given = parse_qs(url.query).get("token", [""])[0]
            if not hmac.compare_digest(given.encode(), hub.token.encode()):
                return self._plain(403, "wrong or missing token: add ?token=... as printed when the server started")
        self.connection.settimeout(hub.send_timeout)
        # a small send buffer: a stalled client holds little memory and is noticed after a frame or two
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        if url.path in ("/", "/index.html"):
            body = PAGE.format(q=f"?token={hub.token}" if hub.token else "").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif url.path == "/frame.jpg":
            got = hub._wait_jpeg(0, timeout=5.0)
            if got is None:
                return self._plain(503, "no frame yet: the engine has not produced one")
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(got[1])))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(got[1])
        elif url.path == "/stream.mjpg":
            self._stream()
        else:
            self._plain(404, "not found: use /stream.mjpg or /frame.jpg")

    def _stream(self) -> None:
        hub = self.hub
        if not hub._admit(self.connection):
            return self._plain(503, f"too many clients: this server streams to at most {hub.max_clients} at a time")
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            seen = 0
            while not hub._stopping.is_set():
                got = hub._wait_jpeg(seen)
                if got is None:
                    if _peer_closed(self.connection):  # no frame came: notice a client that left meanwhile
                        break
                    continue
                seen, jpeg = got
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                                 + jpeg + b"\r\n")
                self.wfile.flush()
        except (OSError, ValueError):  # the client went away, stalled past the timeout, or we are stopping
            pass
        finally:
            hub._leave(self.connection)
            self.close_connection = True


def _peer_closed(sock: socket.socket) -> bool:
    """True when the client has closed its end (readable with nothing to read)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True
