"""RemoteEngine: a LiveLoop on another machine (app/remote/server.py), behind one call: step(frame, settings) -> Picture.

    engine = RemoteEngine("http://gpu-box:8770", token).connect()   # UserError in one line: wrong token, busy, unreachable
    picture = engine.step(frame, settings)                          # app.live.loop.Frame, LiveSettings -> Picture
    engine.close()

aiortc runs in the client's own thread with its own event loop; step() is a plain blocking call from any one
thread. One frame is in flight: step() sends the frame with the settings when they changed, and waits for the
picture made from it. A drawing (Frame.drawn) goes as PNG over the data channel (lossless: video codecs smear
thin lines) and its picture comes back there as JPEG; a camera, video or screen frame goes on the client's video
track (VP8) and its picture comes back on the server's video track, matched to the frame by the pts the server
names in a `picture` message (app/remote/video.py). A server that answers without a video track gets camera
frames as JPEG over the data channel. Every second a ping measures the
round trip (rtt_ms) and proves the link alive; when nothing comes back for `idle` seconds, or the connection
fails, the link is lost: one log line, then reconnects with backoff (0.5 s doubling to 8 s) for up to
`give_up` seconds (one line when it is back), the frame in flight sent again; after that step() raises a
UserError in one line. Nothing waits forever.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.live.loop import Frame
from app.live.settings import LiveSettings
from app.remote.messages import (
    FRAME,
    PICTURE,
    SNAPSHOT,
    Message,
    Reassembler,
    decode_image,
    decode_text,
    encode_image,
    pack,
    quiet_webrtc,
    settings_message,
)
from app.remote.signalling import offer_answer
from app.remote.video import TrackLink, even
from models.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class Picture:
    """What step() gives back: the picture made from the frame, and how it went."""

    image: np.ndarray  # uint8 RGB, the engine's size
    seq: int  # the frame it was made from
    latency_ms: float  # from the frame's capture (Frame.captured) to the picture decoded here
    engine_ms: float  # the server's LiveLoop.process
    server_ms: float  # from the frame's arrival at the server to the picture encoded
    reused: bool  # the server's loop reused its last output (the frame was unchanged)
    frames: int  # frames the server's engine has rendered
    bytes_out: int  # bytes this frame took to the server (0 for a video-track frame: RTP's, not counted per frame)
    bytes_in: int  # bytes the picture took back (0 for a picture on the video track)
    track: bool = False  # the frame went, and the picture came back, on the video tracks


class RemoteEngine:
    """A connection to an engine server (see the module's docstring); `state` says how the link is."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 20.0, idle: float = 5.0,
                 give_up: float = 30.0, quality: int = 85, say: Callable[[str], None] | None = None):
        quiet_webrtc()
        self.url = url.rstrip("/")  # http(s)://HOST:PORT of serve-engine
        self.token = token  # the server's --token (None on loopback without one)
        self.timeout = timeout  # seconds one frame may take before step() gives the link up as lost
        self.idle = idle  # seconds of silence after which the link counts as lost
        self.give_up = give_up  # seconds of reconnecting before step() raises
        self.quality = quality  # JPEG quality of camera frames sent
        self.say = say or log.warning  # the one-line notices: link lost, back
        self.state = "new"  # new, live, reconnecting, gone, closed
        self.hello: dict = {}  # the server's hello: size, adapters, loras, styles, settings
        self.rtt_ms = 0.0  # the newest ping's round trip
        self.bytes_out = self.bytes_in = self.frames = 0
        self.last_error = ""  # the server's latest error line
        self._cv = threading.Condition()
        self._picture: tuple[dict, bytes, int] | None = None  # header, payload, bytes
        self._snapshot: bytes | None = None
        self._failed: tuple[int, str] | None = None  # (seq, the server's line) of a frame that failed there
        self._generation = 0  # counts connections: a frame sent on an older one is sent again
        self._sent_settings: Any = None
        self._seq = 0
        self._msg_id = 0
        self._aio = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._aio.run_forever, name="sdxs-remote-client", daemon=True)
        self._pc: Any = None
        self._channel: Any = None
        self._last_heard = 0.0
        self._tasks: list[asyncio.Task] = []
        self._lost_at = 0.0
        self.video_link = False  # the server answered the client's video track with one of its own
        self._tracks: TrackLink | None = None  # this connection's video tracks
        self._video: tuple[int, dict, Any] | None = None  # (seq, picture message, av.VideoFrame): the newest matched
        self._video_ms = 0.0  # the newest video picture's latency

    # the blocking API

    def connect(self) -> RemoteEngine:
        """Connect once; a wrong token, a busy or unreachable server is a UserError in one line."""
        self._thread.start()
        try:
            self._call(self._connect(), self.timeout + 5)
            self._tasks.append(self._call(self._start_tasks(), 5))
        except BaseException:
            self.close()  # no thread or event loop left behind
            raise
        return self

    @property
    def video_unmatched(self) -> int:
        """Pictures on this connection's track that matched no frame we sent."""
        return self._tracks.unknown if self._tracks is not None else 0

    @property
    def size(self) -> int:
        return int(self.hello.get("size", 0))

    @property
    def adapters(self) -> dict[str, float]:
        return dict(self.hello.get("adapters", {}))

    @property
    def loras(self) -> dict[str, float]:
        return dict(self.hello.get("loras", {}))

    @property
    def adapter_conditions(self) -> dict[str, str]:
        """adapter name -> what it follows (sketch, canny, colour-hints, ...), as the server's hello says."""
        return {str(k): str(v) for k, v in self.hello.get("conditions", {}).items()}

    @property
    def adapter_strengths(self) -> dict[str, float]:
        return self.adapters

    @property
    def lora_weights(self) -> dict[str, float]:
        return self.loras

    @property
    def lora_specs(self) -> dict[str, str]:
        """name -> name: a client names LoRAs, never paths (the server maps a name to its spec)."""
        return {name: name for name in self.loras}

    def step(self, frame: Frame, settings: LiveSettings | None = None) -> Picture:
        """The picture made from this frame with these settings (None: as they were). A drawing goes over the
        data channel; another frame on the video track, put there again when its picture does not come in
        max(2 s, 3 x the last one's latency) (lost on the way)."""
        track = not frame.drawn and self.video_link
        self._seq += 1
        seq = self._seq
        if track:
            rgb, data = even(frame.image), b""
            send: Callable[[], None] = lambda: self._push_video(settings, seq, rgb)  # noqa: E731
        else:
            data = encode_image(frame.image, "png" if frame.drawn else "jpeg", self.quality)
            header = {"seq": seq, "drawn": frame.drawn}
            send = lambda: self._send_frame(settings, header, data)  # noqa: E731
        deadline = time.monotonic() + self.timeout
        generation, sent = -1, 0.0
        while True:
            with self._cv:
                if self.state in ("gone", "closed"):
                    raise UserError(f"engine at {self.url} went away ({self.last_error or 'the link is lost'}): "
                                    "start serve-engine again, or use the local engine")
                live, gen = self.state == "live", self._generation
                if track:
                    got = self._video if self._video is not None and self._video[0] >= seq else None
                else:
                    got = self._picture if self._picture is not None and self._picture[0].get("seq", 0) >= seq else None
                failed = self._failed if self._failed is not None and self._failed[0] >= seq else None
            if failed is not None:
                raise UserError(f"engine at {self.url}: {failed[1]}")
            if got is not None:
                break
            now = time.monotonic()
            if live and (gen != generation or (track and now - sent > max(2.0, 3 * self._video_ms / 1000))):
                if gen != generation:  # (re)send on this connection, settings first
                    deadline = now + self.timeout
                generation, sent = gen, now
                self._aio.call_soon_threadsafe(send)
            elif live and now > deadline:
                self._aio.call_soon_threadsafe(self._lose, f"no picture in {self.timeout:g} s")
            with self._cv:
                self._cv.wait(0.05)
        if track:
            _, head, video = got
            image, size = video.to_ndarray(format="rgb24"), 0
        else:
            head, payload, size = got
            image = decode_image(payload)
        self.frames += 1
        latency = 1000 * (time.perf_counter() - frame.captured)
        if track:
            self._video_ms = latency
        return Picture(image=image, seq=seq, latency_ms=latency, engine_ms=float(head.get("engine_ms", 0)),
                       server_ms=float(head.get("server_ms", 0)), reused=bool(head.get("reused")),
                       frames=int(head.get("frames", 0)), bytes_out=len(data), bytes_in=size, track=track)

    def send(self, message: Message) -> None:
        """A text message (pause, settings) on the live link; dropped while the link is down."""
        self._aio.call_soon_threadsafe(self._send_text, message)

    def snapshot(self, wait: float = 5.0) -> np.ndarray:
        """The newest picture, lossless (PNG), from the server."""
        with self._cv:
            self._snapshot = None
        self.send(Message(type="snapshot"))
        with self._cv:
            self._cv.wait_for(lambda: self._snapshot is not None or self.state in ("gone", "closed"), wait)
            if self._snapshot is None:
                raise UserError(f"engine at {self.url} sent no snapshot in {wait:g} s")
            return decode_image(self._snapshot)

    def close(self) -> None:
        if self.state == "closed" or not self._thread.is_alive():
            self.state = "closed"
            return
        with self._cv:
            self.state = "closed"
            self._cv.notify_all()
        try:
            self._call(self._shutdown(), 10)
        finally:
            self._aio.call_soon_threadsafe(self._aio.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._aio.close()

    def __enter__(self) -> RemoteEngine:
        return self.connect()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, coro: Any, wait: float) -> Any:
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._aio).result(wait)
        except TimeoutError:
            raise UserError(f"engine at {self.url} did not answer in {wait:g} s") from None

    # the event loop's side

    async def _connect(self) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        channel = pc.createDataChannel("sdxs")
        tracks = TrackLink(pc, self._on_video)  # camera, video and screen frames; the server answers with a track
        hello: asyncio.Future = asyncio.get_running_loop().create_future()
        parts, got = Reassembler(), [0]

        @channel.on("message")
        def on_message(data: Any) -> None:
            self._last_heard = time.monotonic()
            if isinstance(data, str):
                self._on_text(data, hello)
            else:
                self.bytes_in += len(data)
                got[0] += len(data)
                whole = parts.add(data)
                if whole is not None:
                    self._on_picture(*whole, got[0])
                    got[0] = 0

        @channel.on("close")
        def on_close() -> None:
            if self._channel is channel:
                self._lose("the server closed the channel")

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "failed" and self._pc is pc:
                self._lose("the connection failed")

        try:
            await offer_answer(pc, self.url, self.token, self.timeout)
            self.hello = await asyncio.wait_for(hello, self.timeout)
        except BaseException as e:
            await pc.close()
            if isinstance(e, asyncio.TimeoutError):  # no hello
                raise UserError(f"cannot reach the engine at {self.url}: {type(e).__name__} {e}".strip()) from None
            raise
        self._pc, self._channel, self._last_heard = pc, channel, time.monotonic()
        self._tracks, self.video_link = tracks, tracks.live
        self._tasks = [t for t in self._tasks if not t.done()]  # an older link's track reader has ended
        if tracks.live:
            self._tasks.append(asyncio.ensure_future(tracks.read()))
        with self._cv:
            if self.state != "closed":
                self.state = "live"
            self._generation += 1
            self._sent_settings = None  # a new session starts from the server's defaults
            self._cv.notify_all()

    async def _start_tasks(self) -> asyncio.Task:
        return asyncio.ensure_future(self._keepalive())

    async def _keepalive(self) -> None:
        """Ping every second; silence for `idle` seconds loses the link; a lost link reconnects with backoff."""
        while self.state != "closed":
            await asyncio.sleep(1.0 if self.state == "live" else 0.05)
            if self.state == "live":
                self._send_text(Message(type="ping", fields={"t": time.perf_counter()}))
                if time.monotonic() - self._last_heard > self.idle:
                    self._lose(f"nothing heard for {self.idle:g} s")
            if self.state == "reconnecting":
                await self._reconnect()

    def _lose(self, why: str) -> None:
        if self.state != "live":
            return
        with self._cv:
            self.state, self._lost_at = "reconnecting", time.monotonic()
            self._cv.notify_all()
        self.say(f"engine link lost ({why}): reconnecting to {self.url} with backoff, up to {self.give_up:g} s")
        old, self._pc, self._channel = self._pc, None, None
        if self._tracks is not None:
            self._tracks.stop()
        if old is not None:
            asyncio.ensure_future(old.close())

    async def _reconnect(self) -> None:
        delay = 0.5
        while self.state == "reconnecting":
            left = self._lost_at + self.give_up - time.monotonic()
            if left <= 0:
                with self._cv:
                    self.state = "gone"
                    self._cv.notify_all()
                self.say(f"engine at {self.url} is gone ({self.last_error or 'no answer'}): gave up after {self.give_up:g} s")
                return
            try:
                await self._connect()
            except UserError as e:
                self.last_error = str(e)
                await asyncio.sleep(min(delay, max(0.0, left)))
                delay = min(8.0, delay * 2)
                continue
            self.say(f"engine link back after {time.monotonic() - self._lost_at:.1f} s")

    def _send_text(self, message: Message) -> None:
        ch = self._channel
        if ch is not None and ch.readyState == "open":
            ch.send(message.encode())

    def _send_frame(self, settings: LiveSettings | None, header: dict, data: bytes) -> None:
        ch = self._channel
        if ch is None or ch.readyState != "open":
            return
        if settings is not None and settings != self._sent_settings:
            ch.send(settings_message(settings).encode())
            self._sent_settings = settings
        self._msg_id += 1
        header = {**header, "t": time.perf_counter()}
        for chunk in pack(FRAME, header, data, self._msg_id):
            ch.send(chunk)
            self.bytes_out += len(chunk)

    def _on_text(self, text: str, hello: asyncio.Future) -> None:
        try:
            msg = decode_text(text)
        except UserError as e:
            log.debug("engine sent a message we cannot read: %s", e)
            return
        if msg.type == "hello" and not hello.done():
            hello.set_result(msg.fields)
        elif msg.type == "picture" and self._tracks is not None:
            self._tracks.message(msg.fields)
        elif msg.type == "pong" and isinstance(msg.fields.get("t"), float):
            self.rtt_ms = 1000 * (time.perf_counter() - msg.fields["t"])
        elif msg.type == "error":
            self.last_error = str(msg.fields.get("text", ""))
            seq = msg.fields.get("seq")
            if isinstance(msg.fields.get("in"), int):  # a video frame failed: the one in flight
                seq = self._seq
            if isinstance(seq, int) and not isinstance(seq, bool):
                with self._cv:
                    self._failed = (seq, self.last_error)  # that frame's step() raises it
                    self._cv.notify_all()
            else:
                log.warning("engine: %s", self.last_error)

    def _push_video(self, settings: LiveSettings | None, seq: int, rgb: np.ndarray) -> None:
        ch, tracks = self._channel, self._tracks
        if ch is None or ch.readyState != "open" or tracks is None:
            return
        if settings is not None and settings != self._sent_settings:
            ch.send(settings_message(settings).encode())
            self._sent_settings = settings
        tracks.put(rgb, seq)

    def _on_video(self, seq: int, head: dict, frame: Any) -> None:
        """A picture from the server's track, matched to the frame of this seq: the newest is kept for step()."""
        self._last_heard = time.monotonic()
        with self._cv:
            if self._video is None or seq >= self._video[0]:
                self._video = (seq, head, frame)
                self._cv.notify_all()

    def _on_picture(self, kind: bytes, header: dict, payload: bytes, size: int) -> None:
        with self._cv:
            if kind == PICTURE:
                self._picture = (header, payload, size)
            elif kind == SNAPSHOT:
                self._snapshot = payload
            self._cv.notify_all()

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._pc is not None:
            await self._pc.close()
        if self._tracks is not None:
            self._tracks.stop()
