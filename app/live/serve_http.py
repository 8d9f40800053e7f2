"""The MJPEG server's HTTP side (app.live.serve): one thread per connection, each registered with the hub
(MjpegServer, through its public interface), which caps them, gives each a deadline for its request, and shuts
them all down on stop(); the request handler answers GET and HEAD (the same headers, no body: players probe
with it) for /, /frame.jpg and /stream.mjpg after the token and Host checks (two Host headers are refused)."""

from __future__ import annotations

import logging
import select
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from app.live.serve import MjpegServer

log = logging.getLogger(__name__)
BOUNDARY = "sdxsframe"
# the picture fills the window, letterboxed, without scrollbars (a block image in a body that cannot scroll)
PAGE = "<!doctype html><title>SDXS Live</title><style>html,body{{margin:0;width:100%;height:100%;overflow:hidden;" \
       "background:#000}}img{{display:block;width:100%;height:100%;object-fit:contain}}</style>" \
       "<img src='/stream.mjpg{q}' alt=''>"


class ConnectionServer(ThreadingHTTPServer):
    """One thread per connection, each registered with the hub: capped, given a deadline, shut down by stop()."""

    hub: MjpegServer
    daemon_threads = True  # stop() joins them itself, within its timeout
    block_on_close = False
    request_queue_size = 64  # a burst of connections waits in the kernel's queue, not a second for a SYN retry

    def process_request(self, request, client_address) -> None:
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                  name="mjpeg-client", daemon=True)
        if not self.hub.connection_opened(request, thread):  # full: closed at once, no thread
            self.shutdown_request(request)
            return
        thread.start()

    def shutdown_request(self, request) -> None:
        self.hub.connection_closed(request)
        super().shutdown_request(request)

    def service_actions(self) -> None:  # serve_forever calls it every poll_interval
        self.hub.drop_late()

    def handle_error(self, request, client_address) -> None:  # a client that went away mid-reply: no traceback
        log.debug("client %s: %s", client_address, sys.exc_info()[1])


class RequestHandler(BaseHTTPRequestHandler):
    hub: MjpegServer
    server_version = "SDXSLive"

    def log_message(self, format: str, *args) -> None:  # keep the terminal for our own lines
        log.debug("%s " + format, self.address_string(), *args)

    head = False  # a HEAD request: every answer's headers, no body

    def _body(self, data: bytes) -> None:
        if not self.head:
            self.wfile.write(data)

    def _plain(self, code: int, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._body(body)

    def do_HEAD(self) -> None:
        self.head = True
        self.do_GET()

    def do_GET(self) -> None:
        hub = self.hub
        hub.headers_in(self.connection)  # the request line and headers are in: no more header deadline
        url = urlsplit(self.path)
        if not hub.token_ok(url.query, self.headers):
            return self._plain(403, "wrong or missing token: add ?token=... (or an X-SDXS-Token header) as printed "
                               "when the server started")
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1:
            self.close_connection = True
            return self._plain(400, "two Host headers: a request names one host")
        if not hub.host_ok(hosts):
            return self._plain(403, f"this server answers only to http://127.0.0.1:{hub.port}/ or "
                               f"http://localhost:{hub.port}/ (Host {hosts[0][:80]!r})")
        self.connection.settimeout(hub.send_timeout)
        # a small send buffer: a stalled client holds little memory and is noticed after a frame or two
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        if url.path in ("/", "/index.html"):
            body = PAGE.format(q=f"?token={quote(hub.token, safe='')}" if hub.token else "").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self._body(body)
        elif url.path == "/frame.jpg":
            got = hub.next_jpeg(0, timeout=5.0)
            if got is None:
                return self._plain(503, "no frame yet: the engine has not produced one")
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(got[1])))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self._body(got[1])
        elif url.path == "/stream.mjpg":
            self._stream()
        else:
            self._plain(404, "not found: use /stream.mjpg or /frame.jpg")

    def _stream(self) -> None:
        hub = self.hub
        if self.head:  # what a GET would start with; no client slot is taken
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            return
        if not hub.admit(self.connection):
            return self._plain(503, f"too many clients: this server streams to at most {hub.max_clients} at a time")
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(f"--{BOUNDARY}\r\n".encode())
            self.wfile.flush()
            seen, jpeg = 0, None
            while not hub.stopping:
                got = hub.next_jpeg(seen, timeout=hub.repeat_after)
                if got is None:  # nothing new: notice a client that left, else send the newest frame again
                    if hub.stopping or _peer_closed(self.connection):
                        break
                    if jpeg is None:
                        continue
                else:
                    seen, jpeg = got
                # the part, then at once the next boundary: a reader shows a part when that boundary arrives
                self.wfile.write(f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                                 + jpeg + f"\r\n--{BOUNDARY}\r\n".encode())
                self.wfile.flush()
        except (OSError, ValueError):  # the client went away, stalled past the timeout, or we are stopping
            pass
        finally:
            hub.leave(self.connection)
            self.close_connection = True


def _peer_closed(sock: socket.socket) -> bool:
    """True when the client has closed its end (readable with nothing to read)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def shut(sock: socket.socket) -> None:
    """End a connection from our side: its thread's read or send returns at once."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
