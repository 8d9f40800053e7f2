"""The output as a local MJPEG stream over HTTP, for OBS (Media Source or Browser Source), VLC and browsers.

    http://127.0.0.1:8765/stream.mjpg   multipart/x-mixed-replace, one JPEG per engine frame
    http://127.0.0.1:8765/frame.jpg     the newest frame
    http://127.0.0.1:8765/              a page showing the stream (an OBS Browser Source can open it)

publish() only stores a reference to the frame: the engine never waits for a client. Each frame is JPEG-encoded
once, by the first client thread that wants it, and every client sends the newest encoded frame when it is
ready for one, so a slow client skips frames and a stalled one (its socket buffer full) blocks only its own
thread until its send times out. Each part ends with the next boundary at once (browsers and OBS show a part
when the next boundary arrives), and the newest frame is sent again every repeat_after seconds while nothing
new comes, so a still picture stays a live stream (ffmpeg and OBS keep reading, a late browser shows it).

No client can hang it: the request line and headers must arrive within header_timeout seconds (counted from
the connection, not per byte), at most max_connections connections are open at a time (one thread each; when
full, the oldest one still sending its headers makes room, or the new one is closed), at most max_clients of
them streams (the next gets a one-line 503), and stop() shuts every connection down, so an idle or stalled
client never delays it.

It listens on loopback by default. Any other address reaches other machines, so it needs a token, which
every request must then carry: ?token=... in the URL (URL-encoded), or an `Authorization: Bearer ...` or
`X-SDXS-Token: ...` header; without one the server refuses to start. A loopback server without a token
answers only requests whose Host names a loopback address (a web page using DNS rebinding cannot read it).
check_serve() checks the address, the token and the port before a model loads.
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import logging
import math
import secrets
import socket
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, quote

import cv2
import numpy as np

from app.live.serve_http import ConnectionServer, RequestHandler, shut
from models.errors import UserError

log = logging.getLogger(__name__)
TOKEN_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))  # printable ASCII without spaces: fits a header and a URL


def parse_address(text: str, default_port: int = 8765) -> tuple[str, int]:
    """HOST:PORT, :PORT, PORT or HOST (a bracketed IPv6 host works too) -> (host, port)."""
    t = (text or "").strip()
    host, port = "127.0.0.1", default_port
    if _digits(t):
        port = int(t)
    elif t.startswith("["):
        host, bracket, rest = t[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and _digits(rest[1:]) else (default_port if not rest else -1)
        port = port if bracket else -1
    elif ":" in t:
        host, _, p = t.rpartition(":")
        port = int(p) if _digits(p) else -1
        host = host or "127.0.0.1"
    elif t:
        host = t
    if not 0 <= port <= 65535:  # 0: any free port (the URL printed at start names it)
        raise UserError(f"--serve {text!r}: use HOST:PORT with a port from 1 to 65535, like 127.0.0.1:8765")
    return host, port


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # '²' is a digit to isdigit(), not to int()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(token: str | None) -> str | None:
    """--serve-token as typed -> the token (None for none; "auto" makes a random one); UserError when it is
    too short to guard anything or holds characters a URL or a header cannot carry as they are."""
    if token is None or token == "":
        return None
    if token == "auto":
        return secrets.token_urlsafe(16)
    if not 8 <= len(token) <= 256 or not set(token) <= TOKEN_CHARS:
        raise UserError("--serve-token: use 8 to 256 letters, digits or punctuation without spaces, or "
                        "--serve-token auto for a random one")
    return token


def check_serve(address: str | None, token: str | None) -> None:
    """--serve ADDR and --serve-token T, checked as stream and the window take them, before any model loads:
    the address parses, the token is well-formed, another address than loopback has one, and the port is free
    now (UserError in one line otherwise). No --serve: nothing to check, unless a token came without it."""
    if not address:
        if token:
            raise UserError("--serve-token needs --serve ADDR, like --serve 0.0.0.0:8765 --serve-token auto")
        return
    server = MjpegServer(address, token)
    family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds (a closed port is free)
        try:
            probe.bind((server.host, server.port))
        except (OSError, UnicodeError, ValueError) as e:  # a name too long or with a NUL: UnicodeError, ValueError
            raise _bind_error(server.host, server.port, e) from None


def _bind_error(host: str, port: int, e: Exception) -> UserError:
    errno_ = getattr(e, "errno", None)
    if errno_ in (errno.EADDRINUSE, 48, 10048):
        why = "the port is in use by another program"
    elif errno_ == errno.EADDRNOTAVAIL or isinstance(e, (socket.gaierror, UnicodeError, ValueError)):
        why = "that address is not one of this computer's"
    elif errno_ == errno.EACCES:
        why = "ports below 1024 need administrator rights"
    else:
        why = getattr(e, "strerror", None) or str(e)
    return UserError(f"cannot serve on {host!r} port {port}: {why}; choose another, like --serve "
                     f"127.0.0.1:{port + 1 if 0 < port < 65535 else 8765}")


class MjpegServer:
    """Serves the newest published frame to up to max_clients MJPEG clients; start() binds, stop() joins.

    token: required in every request (?token=... or a header); needed for any address that is not loopback
    ("auto" makes one)."""

    label = "the MJPEG stream"  # its name in a sink's one-line failure (app.live.sinks)

    def __init__(self, address: str = "127.0.0.1:8765", token: str | None = None, max_clients: int = 8,
                 quality: int = 85, send_timeout: float = 5.0, header_timeout: float = 3.0,
                 max_connections: int | None = None, repeat_after: float = 0.5):
        self.host, self.port = parse_address(address)
        token = check_token(token)
        if not is_loopback(self.host) and not token:
            raise UserError(f"--serve {address!r} would let other computers watch: add --serve-token auto (a token "
                            "every URL must carry), or serve on 127.0.0.1")
        self.token = token  # None: loopback without a token
        self.max_clients = int(max_clients)  # streams at a time; more get 503
        self.quality = int(quality)  # JPEG quality, 1..100
        self.send_timeout = float(send_timeout)  # seconds a client may stall before it is dropped
        self.header_timeout = float(header_timeout)  # seconds from connecting to the end of the request's headers
        self.max_connections = int(max_connections or self.max_clients + 16)  # open connections (threads) at a time
        self.repeat_after = float(repeat_after)  # seconds without a new frame before a stream sends the newest again
        self.frames_published = 0
        self.encodes = 0  # JPEG encodings done: one per published frame that some client wanted
        self.refused = 0  # connections closed at once because max_connections were open
        self.on_output: Callable[[np.ndarray], None] | None = None  # called after each JPEG encoding (a bench's clock)
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] | None = None  # (seq, bytes) of the newest encoded frame
        self._clients: set[socket.socket] = set()
        # every open connection -> the time its headers must be in by (inf once they are, 0 once it was dropped)
        self._conns: dict[socket.socket, float] = {}
        self._threads: list[threading.Thread] = []
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
        return f"http://{host}:{self.port}{path}" + (f"?token={quote(self.token, safe='')}" if self.token else "")

    def start(self) -> MjpegServer:
        server = self

        class Handler(RequestHandler):
            hub = server
            timeout = server.header_timeout  # per read while the request comes in (the whole of it: drop_late)

        httpd_class = type("Httpd", (ConnectionServer,), {"address_family": socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                                                "hub": server})
        try:
            self._httpd = httpd_class((self.host, self.port), Handler)
        except (OSError, UnicodeError, ValueError) as e:
            raise _bind_error(self.host, self.port, e) from None
        self.port = self._httpd.server_address[1]  # port 0 picks a free one
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="mjpeg-server", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop listening, end every connection (streaming, idle or half-sent) and join all threads."""
        if self._httpd is None:
            return
        end = time.monotonic() + timeout
        self._stopping.set()
        self._httpd.shutdown()  # no new connections (serve_forever polls every 0.1 s)
        with self._cond:
            self._cond.notify_all()
            for sock in self._conns:  # a client stalled in sendall or silent in readline wakes up with an error
                shut(sock)
            threads = list(self._threads)
        self._httpd.server_close()
        for t in threads + [self._thread]:
            t.join(max(0.0, end - time.monotonic()))
        self._httpd = None

    close = stop

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- the HTTP side's interface (app.live.serve_http calls these, from its connection threads) -----

    @property
    def stopping(self) -> bool:
        """True once stop() began: every stream ends."""
        return self._stopping.is_set()

    def next_jpeg(self, after: int, timeout: float = 0.5) -> tuple[int, bytes] | None:
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
                if self.on_output is not None:
                    self.on_output(frame)
            return self._jpeg

    def admit(self, sock: socket.socket) -> bool:
        with self._cond:
            if len(self._clients) >= self.max_clients:
                return False
            self._clients.add(sock)
            return True

    def leave(self, sock: socket.socket) -> None:
        with self._cond:
            self._clients.discard(sock)

    def connection_opened(self, sock: socket.socket, thread: threading.Thread) -> bool:
        """A new connection: admit it (its headers due within header_timeout) or say no when max_connections are
        open and none of them is still sending its headers (else the oldest such one is dropped for it)."""
        with self._cond:
            if self._stopping.is_set():
                return False
            live = [s for s, due in self._conns.items() if due > 0]
            if len(live) >= self.max_connections:
                waiting = [s for s in live if self._conns[s] < math.inf]
                if not waiting or len(self._conns) >= 2 * self.max_connections:
                    self.refused += 1
                    return False
                oldest = min(waiting, key=self._conns.__getitem__)
                self._conns[oldest] = 0.0
                shut(oldest)
            self._conns[sock] = time.monotonic() + self.header_timeout
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            return True

    def headers_in(self, sock: socket.socket) -> None:
        with self._cond:
            if self._conns.get(sock, 0.0) > 0:
                self._conns[sock] = math.inf

    def connection_closed(self, sock: socket.socket) -> None:
        with self._cond:
            self._conns.pop(sock, None)

    def drop_late(self) -> None:
        """Shut down every connection whose request line and headers did not arrive in time (slowloris)."""
        now = time.monotonic()
        with self._cond:
            for sock, due in self._conns.items():
                if 0 < due < now:
                    self._conns[sock] = 0.0
                    shut(sock)

    @property
    def connections(self) -> int:
        with self._cond:
            return len(self._conns)

    def host_ok(self, hosts: list[str]) -> bool:
        """The request's Host headers (all of them): one at most (two are refused, as HTTP/1.1 says, whatever
        the first one names), and a loopback server without a token answers only to a loopback Host (no DNS
        rebinding)."""
        if len(hosts) > 1:
            return False
        if self.token is not None or not hosts:  # a token guards it; HTTP/1.0 tools send no Host
            return True
        name = hosts[0].strip().lower()
        if name.startswith("["):
            name = name[1:].partition("]")[0]
        elif name.count(":") == 1:
            name = name.partition(":")[0]
        return name in ("localhost", self.host.lower()) or is_loopback(name)

    def token_ok(self, query: str, headers) -> bool:
        if self.token is None:
            return True
        bearer = (headers.get("Authorization") or "").strip()
        given = [parse_qs(query).get("token", [""])[0], headers.get("X-SDXS-Token") or "",
                 bearer[7:].strip() if bearer[:7].lower() == "bearer " else ""]
        want = self.token.encode()
        return any(hmac.compare_digest(g.encode("utf-8", "replace"), want) for g in given)
