"""One connected client of the engine server (app/remote/server.py): its peer connection, data channel, settings
and counters; what it does with each message, drawn frame and video-track frame it sends."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from app.live.settings import PRESETS
from app.remote.messages import (
    FRAME,
    PICTURE,
    SNAPSHOT,
    Message,
    Reassembler,
    decode_text,
    encode_image,
    pack,
    to_changes,
    with_changes,
)
from app.remote.video import is_repeat
from app.remote.worker import Job
from models.errors import UserError

MAX_BUFFERED = 512 * 1024  # bytes waiting in the data channel above which a picture is skipped (newest wins)


class Session:
    """One connected client. server: the EngineServer (its defaults, worker, offered names)."""

    def __init__(self, server: Any, pc: Any, peer: str):
        self.server, self.pc, self.peer = server, pc, peer
        self.settings = server.defaults  # LiveSettings: the server's start values, then the client's changes
        self.channel: Any = None
        self.parts = Reassembler()
        self.paused = False
        self.opened = time.monotonic()
        self.last_seen = time.monotonic()
        self.last_picture: Any = None  # the newest picture, uint8 RGB (for a snapshot)
        self.tasks: list[asyncio.Task] = []
        self.closed = False
        self.msg_id = 0
        self.out_track: Any = None  # video.NewestTrack: pictures of the client's video track go back on it
        self._last_in_pts: int | None = None  # the client's track's previous frame (its repeats are dropped)
        self.bytes_in = self.bytes_out = self.frames_in = self.pictures_out = 0

    def send_text(self, message: Message) -> None:
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(message.encode())

    def send_picture(self, kind: bytes, header: dict, data: bytes) -> None:
        ch = self.channel
        if self.closed or ch is None or ch.readyState != "open":
            return
        if kind == PICTURE and ch.bufferedAmount > MAX_BUFFERED:
            return  # the link is behind: skip this picture, the next one is newer anyway
        self.msg_id += 1
        for chunk in pack(kind, header, data, self.msg_id):
            ch.send(chunk)
            self.bytes_out += len(chunk)
        self.pictures_out += kind == PICTURE

    def deliver(self, header: dict, data: bytes | None, rgb: Any, error: str | None) -> None:
        """A job's outcome, on the event loop: a drawing's picture over the data channel, a video frame's on the
        video track with a `picture` message naming its pts and the frame's."""
        if error is not None:
            self.send_text(Message(type="error", fields={"text": error, "seq": header.get("seq")}))
        elif header.get("track") and rgb is not None:
            self.last_picture = rgb
            if self.closed or self.out_track is None:
                return
            fields = {"in": header.get("in"), **{k: header[k] for k in ("engine_ms", "server_ms", "frames", "reused",
                                                                       "paused") if k in header}}
            self.out_track.put(rgb, fields)  # its `picture` message goes when the encoder takes it (sent_on_track)
        elif data is not None:
            self.last_picture = rgb
            self.send_picture(PICTURE, header, data)

    def sent_on_track(self, pts: int, fields: dict) -> None:
        """A picture the video track's encoder took: its `picture` message (pts, the frame's pts, timings)."""
        self.pictures_out += 1
        self.send_text(Message(type="picture", fields={"pts": pts, **fields}))

    def on_text(self, text: str) -> None:
        try:
            msg = decode_text(text)
            if msg.type == "ping":
                self.send_text(Message(type="pong", fields={"t": msg.fields.get("t")}))
            elif msg.type == "settings":
                self.settings = with_changes(self.settings, to_changes(msg), self.server.lora_names, list(PRESETS),
                                             self.server.adapter_names)
            elif msg.type == "pause":
                self.paused = to_changes(msg)["pause"]
            elif msg.type == "snapshot":
                if self.last_picture is None:
                    raise UserError("snapshot: no picture yet")
                self.send_picture(SNAPSHOT, {}, encode_image(self.last_picture, "png"))
            elif msg.type == "record":
                raise UserError("record: the client records what it receives (stream --out, the window's Record); "
                                "the engine server keeps no files")
        except UserError as e:
            self.send_text(Message(type="error", fields={"text": str(e)}))

    def on_binary(self, data: bytes) -> None:
        self.bytes_in += len(data)
        try:
            whole = self.parts.add(data)
        except UserError as e:
            self.send_text(Message(type="error", fields={"text": str(e)}))
            return
        if whole is None or whole[0] != FRAME:
            return
        _, header, payload = whole
        self.frames_in += 1
        if not self.paused:
            self.submit(payload, bool(header.get("drawn", True)), header)
        elif self.last_picture is not None:  # paused: the held picture again, so a waiting client goes on
            echo = {k: header[k] for k in ("seq", "t") if k in header}
            self.send_picture(PICTURE, {**echo, "reused": True, "paused": True}, encode_image(self.last_picture, "jpeg", 85))
        else:
            self.send_text(Message(type="error", fields={"text": "paused before the first picture", "seq": header.get("seq")}))

    def submit(self, payload: Any, drawn: bool, header: dict) -> None:
        fmt = "raw" if header.get("track") else "png" if header.get("reply") == "png" else "jpeg"
        echo = {k: header[k] for k in ("seq", "t", "in", "track") if k in header}
        loop = asyncio.get_running_loop()

        def done(h: dict, data: bytes | None, rgb: Any, error: str | None) -> None:
            try:
                loop.call_soon_threadsafe(self.deliver, h, data, rgb, error)
            except RuntimeError:  # the event loop is closed: the server stopped while this frame was painted
                pass  # nobody to send it to

        self.server.worker.submit(Job(owner=self, settings=self.settings, payload=payload, drawn=drawn, header=echo,
                                      received=time.perf_counter(), done=done, fmt=fmt))

    async def read_track(self, track: Any) -> None:
        """A camera, video or screen as a video track: each decoded frame goes to the engine, newest wins (a
        repeat, video.is_repeat, is not rendered again); its picture goes back on out_track. Paused: the held
        picture goes back instead."""
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await track.recv()
                pts = int(frame.pts or 0)
                repeat = is_repeat(pts, self._last_in_pts)
                self._last_in_pts = pts
                self.last_seen = time.monotonic()
                if repeat:
                    continue
                self.frames_in += 1
                self.server.track_frames += 1
                header = {"in": pts, "track": True}
                if not self.paused:
                    self.submit(frame, False, header)
                elif self.last_picture is not None:
                    self.deliver({**header, "reused": True, "paused": True}, None, self.last_picture, None)
        except MediaStreamError:
            return
