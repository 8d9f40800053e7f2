"""The engine server: a LiveLoop behind WebRTC (aiortc), for clients on other machines and the browser page.

    GET  /          the drawing page (app/remote/page: plain HTML and JavaScript)
    POST /offer     {"sdp", "type": "offer"} -> the answer; the token in an X-SDXS-Token (or Authorization:
                    Bearer) header; 401 with one line for a wrong one, 409 with one line while a client is connected

A client opens one data channel (messages.py: settings, pause, snapshot, pings, drawn frames as PNG, their
pictures back as JPEG) and may send a video track (a camera, video or screen); the pictures of a video track's
frames go back on a video track in the same transceiver (video.py; a `picture` message per picture names the
frame it was made from). The newest frame of either wins. One client is
served at a time (the engine holds one set of settings); a second is refused with one line until the first
leaves. A client that sends nothing for `idle` seconds (clients ping every second) is dropped, so a vanished
laptop frees the engine.

Loopback by default. Another address needs a token of at least 128 bits (TOKEN_CHARS characters), compared in
constant time; without TLS (--tls-cert/--tls-key) the token and the pictures cross the network in the clear
for the signalling (WebRTC's media and data are always DTLS-encrypted), which one warning line says. A loopback
server without a token answers only requests whose Host is loopback and whose Origin, if any, is the page's own.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import secrets
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

from app.live.loop import LiveLoop
from app.live.settings import PRESETS
from app.remote.messages import (
    Message,
    quiet_webrtc,
    settings_message,
)
from app.remote.peer import Session
from app.remote.video import NewestTrack
from app.remote.worker import EngineWorker
from models.errors import UserError

log = logging.getLogger(__name__)
PAGE = Path(__file__).resolve().parent / "page"
MIN_TOKEN = 22  # characters: secrets.token_urlsafe(16), 128 bits
TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def parse_listen(text: str, default_port: int = 8770) -> tuple[str, int]:
    """[ADDR:]PORT -> (host, port); a bare port listens on loopback."""
    t = (text or "").strip()
    host, _, port = t.rpartition(":") if ":" in t else ("", "", t)
    host = host.strip("[]") or "127.0.0.1"
    if not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise UserError(f"--listen {text!r}: use PORT or ADDR:PORT with a port from 1 to 65535, like --listen 8770 "
                        "or --listen 0.0.0.0:8770")
    return host, int(port)


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(listen: str, token: str | None, tls_cert: str | None = None, tls_key: str | None = None) -> tuple[str, int, str | None]:
    """--listen, --token, --tls-cert/--tls-key checked before a model loads: (host, port, token). "auto" makes a token;
    another address than loopback needs one of at least 128 bits; the port must be free now."""
    host, port = parse_listen(listen)
    if token == "auto":
        token = secrets.token_urlsafe(24)
    if token is not None and (len(token) < MIN_TOKEN or not set(token) <= TOKEN_CHARS):
        raise UserError(f"--token: use at least {MIN_TOKEN} letters, digits, '-', '_', '.' or '~' (128 bits), or "
                        "--token auto for a random one")
    if not is_loopback(host) and token is None:
        raise UserError(f"--listen {listen!r} reaches other machines: add --token auto (or a token of at least 128 bits)")
    if bool(tls_cert) != bool(tls_key):
        raise UserError("--tls-cert and --tls-key go together: give both files, or neither")
    for path in (tls_cert, tls_key):
        if path and not Path(path).expanduser().is_file():
            raise UserError(f"TLS file {path!r} does not exist")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except (OSError, UnicodeError, ValueError) as e:
            raise UserError(f"cannot listen on {host!r} port {port}: {getattr(e, 'strerror', None) or e}; "
                            "choose another, like --listen 127.0.0.1:8771") from None
    return host, port, token


class EngineServer:
    """Serves one LiveLoop over WebRTC; start() binds and runs the event loop in its own thread, stop() ends it."""

    def __init__(self, loop: LiveLoop, listen: str = "127.0.0.1:8770", token: str | None = None,
                 tls_cert: str | None = None, tls_key: str | None = None, idle: float = 5.0, open_wait: float = 15.0):
        quiet_webrtc()
        self.host, self.port, self.token = check_listen(listen, token, tls_cert, tls_key)
        self.tls = (tls_cert, tls_key) if tls_cert else None
        self.loop = loop  # the engine's LiveLoop; its settings at start are each new session's
        self.defaults = loop.settings
        self.worker = EngineWorker(loop)
        self.idle = idle  # seconds without a message before a client counts as gone
        self.open_wait = open_wait  # seconds a new client has to open its data channel
        self.session: Session | None = None
        self.sessions = 0  # clients served so far
        self.refused = 0  # offers refused (token, busy)
        self.track_frames = 0  # frames that came on clients' video tracks (repeats not counted)
        engine = loop.engine
        self.adapter_names = list(engine.adapter_strengths)
        self.lora_names = dict(engine.lora_specs)  # name -> spec (LiveSettings.loras' key)
        self._aio: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def start(self) -> str:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self._aio = asyncio.new_event_loop()
            try:
                self._aio.run_until_complete(self._start())
            except BaseException as e:  # noqa: BLE001 - reported to start()'s caller
                failure.append(e)
                ready.set()
                return
            ready.set()
            self._aio.run_forever()

        self._thread = threading.Thread(target=run, name="sdxs-remote", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise UserError(f"cannot listen on {self.host}:{self.port}: {failure[0]}")
        if not is_loopback(self.host) and not self.tls:
            log.warning("serve-engine: %s is not encrypted for the signalling (the token travels in clear): use "
                        "--tls-cert/--tls-key or an SSH tunnel (docs/remote.md)", self.url)
        return self.url

    async def _start(self) -> None:
        from aiohttp import web

        app = web.Application(client_max_size=256 * 1024)
        app.router.add_get("/", self._page)
        app.router.add_get("/app.js", self._page)
        app.router.add_post("/offer", self._offer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        context = None
        if self.tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*[str(Path(p).expanduser()) for p in self.tls])
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=context)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp names no public way

    def stop(self) -> None:
        if self._aio is None or self._thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._stop(), self._aio)
        try:
            fut.result(timeout=10)
        finally:
            self._aio.call_soon_threadsafe(self._aio.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._aio.close()
            self.worker.stop()

    async def _stop(self) -> None:
        if self.session is not None:
            await self._close(self.session, "the server stops")
        await self._runner.cleanup()

    async def _page(self, request: Any) -> Any:
        from aiohttp import web

        self._check_origin(request)
        name = "index.html" if request.path == "/" else request.path.lstrip("/")
        kind = "text/html" if name.endswith(".html") else "text/javascript"
        return web.Response(body=(PAGE / name).read_bytes(), content_type=kind, charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    def _check_origin(self, request: Any) -> None:
        """Without a token only a loopback Host, and a page only of this server's own origin, may talk to it."""
        from aiohttp import web

        host = (request.host or "").rpartition(":")[0].strip("[]") or request.host or ""
        if self.token is None and not is_loopback(host):
            raise web.HTTPForbidden(text="this engine server answers only on a loopback address\n")
        origin = request.headers.get("Origin")
        if origin and origin.split("://", 1)[-1] != request.host:
            raise web.HTTPForbidden(text="cross-origin request refused\n")

    def _check_token(self, request: Any) -> None:
        from aiohttp import web

        if self.token is None:
            return
        given = request.headers.get("X-SDXS-Token") or ""
        auth = request.headers.get("Authorization", "")
        if not given and auth.startswith("Bearer "):
            given = auth[7:]
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            self.refused += 1
            log.info("serve-engine: refused %s: wrong or missing token", request.remote)
            raise web.HTTPUnauthorized(text="wrong or missing engine token: give the server's --token\n")

    async def _offer(self, request: Any) -> Any:
        from aiohttp import web
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        self._check_origin(request)
        self._check_token(request)
        if self.session is not None:
            self.refused += 1
            raise web.HTTPConflict(text=f"engine busy: another client ({self.session.peer}) is connected; one client at "
                                   "a time\n")
        try:
            body = await request.json()
            sdp, kind = body["sdp"], body["type"]
            assert isinstance(sdp, str) and kind == "offer"
        except Exception:  # noqa: BLE001 - anything malformed is one line
            raise web.HTTPBadRequest(text="POST /offer takes JSON {\"sdp\": ..., \"type\": \"offer\"}\n") from None
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        session = self.session = Session(self, pc, str(request.remote))
        self.sessions += 1
        self._wire(session)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as e:  # noqa: BLE001 - a bad SDP is the client's problem: one line
            await self._close(session, f"bad offer: {e}")
            raise web.HTTPBadRequest(text=f"the offer's SDP was refused: {e}\n") from None
        session.tasks.append(asyncio.ensure_future(self._watch(session)))
        log.info("serve-engine: client %s connected", session.peer)
        return web.json_response({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type})

    def _wire(self, session: Session) -> None:
        pc = session.pc

        @pc.on("datachannel")
        def on_channel(channel: Any) -> None:
            session.channel = channel
            session.send_text(self._hello(session))

            @channel.on("message")
            def on_message(data: Any) -> None:
                session.last_seen = time.monotonic()
                session.on_text(data) if isinstance(data, str) else session.on_binary(data)

            @channel.on("close")
            def on_close() -> None:
                asyncio.ensure_future(self._close(session, "it closed the channel"))

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "video":  # pictures go back on a video track in the same transceiver (sendrecv)
                session.tasks.append(asyncio.ensure_future(session.read_track(track)))
                if session.out_track is None:
                    session.out_track = NewestTrack(on_sent=session.sent_on_track)
                    pc.addTrack(session.out_track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._close(session, f"connection {pc.connectionState}")

    def _hello(self, session: Session) -> Message:
        engine = self.loop.engine
        return Message(type="hello", fields={
            "size": engine.size, "adapters": dict(engine.adapter_strengths), "loras": dict(engine.lora_weights),
            "conditions": {a.name: a.info.condition for a in engine.adapters},
            "styles": list(PRESETS), "settings": settings_message(session.settings, {v: k for k, v in self.lora_names.items()}).fields})

    async def _watch(self, session: Session) -> None:
        """Drop a client that never opens its channel or goes silent."""
        while not session.closed:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            if session.channel is None and now - session.opened > self.open_wait:
                await self._close(session, "it never opened its data channel")
            elif session.channel is not None and now - session.last_seen > self.idle:
                await self._close(session, f"nothing heard for {self.idle:g} s")

    async def _close(self, session: Session, why: str) -> None:
        if session.closed:
            return
        session.closed = True
        self.worker.cancel(session)
        current = asyncio.current_task()
        for task in session.tasks:
            if task is not current:
                task.cancel()
        await session.pc.close()
        if session.out_track is not None:
            session.out_track.stop()
        if self.session is session:
            self.session = None
        log.info("serve-engine: client %s left (%s): %d frames in, %d pictures out", session.peer, why,
                 session.frames_in, session.pictures_out)
