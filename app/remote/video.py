"""The remote engine's video tracks: camera, video and screen frames up, their pictures back (app/remote/server.py,
client.py), and how a picture on a track is matched to the frame it was made from.

NewestTrack is an aiortc MediaStreamTrack fed by put(): newest wins (a frame put before the encoder took the one
before replaces it), so no queue grows at the sending end. Each frame gets a presentation timestamp (pts, in
RTP's 90 kHz clock) from the sender's clock, strictly increasing.

aiortc's receiver hands a video frame on only when the first packet of the next frame arrives (its jitter buffer
ends a frame at a new RTP timestamp; it does not read the marker bit), so a lone frame would wait for the next
one. NewestTrack therefore follows each frame, when nothing newer is waiting, with a REPEAT: the same picture
again at pts + HALF (half a millisecond later; frames' own pts are whole milliseconds apart; VP8 codes an
unchanged picture in about 24 bytes), which pushes the frame out at the far end. A receiver drops a frame whose
pts is HALF after the previous one's (is_repeat); a repeat whose frame was lost is that frame's picture, found
by PtsMatcher one HALF step back.

RTP carries the pts through to the receiver, shifted: aiortc's receiver counts pts from the first frame it got,
so the receiver sees pts - (the pts of the first frame that arrived), 0 when no frame was lost before it.
PtsMatcher learns that shift from the frames seen against the pts the sender announced (the server sends a
small `picture` message on the data channel per picture when its encoder takes it, naming its pts and the pts of
the frame it was made from), so a picture on a track is matched to its frame by timestamps, not by order.
Before two frames settle the shift, the first frame seen is taken to be the first one sent (nothing lost before
it: always so on loopback); a wrong guess shows as three frames in a row that map to nothing, and the shift is
learnt anew. TrackLink is a client's side of it for one connection (app/remote/client.py).
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import numpy as np

CLOCK = 90_000  # RTP's video clock: ticks per second
TIME_BASE = fractions.Fraction(1, CLOCK)
HALF = 45  # ticks (0.5 ms): a repeat's pts is its frame's + HALF; frames' pts are multiples of 2 * HALF
SLACK = 3  # ticks a pts may move on the way (libvpx rounds some timestamps by one tick)


def even(rgb: np.ndarray) -> np.ndarray:
    """The picture cropped to even sides (VP8 codes 4:2:0 chroma, half the size each way)."""
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2, :3])


def is_repeat(pts: int, previous: int | None) -> bool:
    """A frame half a millisecond after the previous one is NewestTrack's repeat of it."""
    return previous is not None and abs(pts - previous - HALF) <= SLACK


def _track_base() -> type:
    from aiortc.mediastreams import MediaStreamTrack

    return MediaStreamTrack


class NewestTrack(_track_base()):
    """A video track of the newest picture put into it (uint8 RGB), each followed by a repeat (see the module)."""

    kind = "video"

    def __init__(self, on_sent: Callable[[int, Any], None] | None = None) -> None:
        super().__init__()
        self.on_sent = on_sent  # (pts, tag) of each picture the encoder takes (not of a replaced one, nor a repeat)
        self._start: float | None = None  # the clock at the first put (its pts is 0)
        self._last_pts = -2 * HALF  # the newest pts given out by put()
        self._waiting: tuple[np.ndarray, int, Any] | None = None  # the newest picture not yet taken, its pts and tag
        self._repeat: tuple[np.ndarray, int] | None = None  # the frame just sent, to repeat at pts + HALF
        self._event = asyncio.Event()
        self.replaced = 0  # pictures replaced before the encoder took them
        self.sent = 0  # pictures taken by the encoder (repeats not counted)

    def put(self, rgb: np.ndarray, tag: Any = None) -> int:
        """Queue a picture (replacing one not yet sent); its pts. on_sent gets the tag when the encoder takes it.
        Call on the track's event loop."""
        now = time.monotonic()
        self._start = now if self._start is None else self._start
        pts = max(self._last_pts + 2 * HALF, round((now - self._start) * CLOCK / (2 * HALF)) * 2 * HALF)
        self._last_pts = pts
        if self._waiting is not None:
            self.replaced += 1
        self._waiting = (even(rgb), pts, tag)
        self._event.set()
        return pts

    async def recv(self) -> Any:
        from av import VideoFrame

        if self._waiting is None and self._repeat is not None:
            rgb, pts = self._repeat
            self._repeat = None
            pts += HALF
        else:
            while self._waiting is None:
                self._event.clear()
                await self._event.wait()
                if self.readyState != "live":
                    from aiortc.mediastreams import MediaStreamError

                    raise MediaStreamError
            (rgb, pts, tag), self._waiting = self._waiting, None
            self._repeat = (rgb, pts)
            self.sent += 1
            if self.on_sent is not None:
                self.on_sent(pts, tag)
        frame = VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = pts, TIME_BASE
        return frame

    def stop(self) -> None:
        super().stop()
        self._event.set()


class PtsMatcher:
    """Maps the pts a receiver sees to what the sender announced for that pts (see the module's docstring)."""

    def __init__(self, keep: int = 256):
        self.keep = keep  # announced pts kept (the newest)
        self.known: OrderedDict[int, Any] = OrderedDict()  # the sender's pts -> what it announced
        self.seen: deque[int] = deque(maxlen=8)  # the newest pts seen at the receiver, in HALF steps
        self.shift: int | None = None  # the sender's pts minus the receiver's, in HALF steps, once learnt
        self.misses = 0  # frames in a row the shift did not map to an announced pts

    def announce(self, pts: int, value: Any) -> None:
        self.known[round(pts / HALF)] = value
        while len(self.known) > self.keep:
            self.known.popitem(last=False)

    def lookup(self, seen: int) -> Any | None:
        """What was announced for the frame seen at this pts (or for the frame it repeats); None when unknown
        (yet: its announcement may still come, so a caller may ask again)."""
        seen = round(seen / HALF)
        fresh = seen not in self.seen
        if fresh:
            self.seen.append(seen)
        if self.shift is not None:
            value = self._get(seen + self.shift)
            if value is not None:
                self.misses = 0
                return value
            self.misses += fresh
            if self.misses < 3:
                return None
        self.shift = self._learn()
        return None if self.shift is None else self._get(seen + self.shift)

    def _get(self, step: int) -> Any | None:
        value = self.known.get(step)
        return self.known.get(step - 1) if value is None else value  # a repeat: its frame's value

    def _learn(self) -> int | None:
        """The shift that maps the most seen pts exactly onto announced ones (the newest seen may be a frame or
        a repeat), when one is best; 0 (no frame lost before the first that arrived) wins a tie."""
        newest = self.seen[-1]
        scores = {}
        for step in self.known:
            for shift in (step - newest, step + 1 - newest):
                if shift >= 0 and shift not in scores:
                    scores[shift] = sum(s + shift in self.known for s in self.seen)
        if not scores:
            return None
        best = max(scores.values())
        winners = [s for s, n in scores.items() if n == best]
        if 0 in winners:
            return 0
        return winners[0] if len(winners) == 1 else None


class TrackLink:
    """A client's video tracks on one connection: frames go out on a NewestTrack (each announced to `up` with its
    seq when the encoder takes it), the server's pictures come in on its track and are matched to those frames
    (the server's `picture` messages announce theirs to `down`); on_picture(seq, message, av.VideoFrame) gets each
    matched one. Everything runs on the connection's event loop."""

    def __init__(self, pc: Any, on_picture: Callable[[int, dict, Any], None]):
        self.up = PtsMatcher()  # the pts we sent -> seq, learnt against the `in` of picture messages
        self.down = PtsMatcher()  # the server's pts -> its picture message, learnt against the frames received
        self.out = NewestTrack(on_sent=self.up.announce)
        self.on_picture = on_picture
        self.incoming: Any = None  # the server's video track, once its answer names one
        self.unmatched: list[Any] = []  # received frames whose picture message has not come yet (the newest 4)
        self.unknown = 0  # pictures that matched no frame we sent
        pc.addTrack(self.out)  # a sendrecv transceiver in the offer: the server answers on it
        pc.on("track", lambda track: setattr(self, "incoming", track) if track.kind == "video" else None)

    @property
    def live(self) -> bool:
        """The server answered our track with one of its own."""
        return self.incoming is not None

    def put(self, rgb: np.ndarray, seq: int) -> None:
        self.out.put(rgb, seq)

    def message(self, fields: dict) -> None:
        """A `picture` message: announced, and the frames that waited for it matched."""
        if isinstance(fields.get("pts"), int):
            self.down.announce(fields["pts"], fields)
            self.unmatched = [f for f in self.unmatched if not self._match(f)]

    async def read(self) -> None:
        """The server's pictures until its track ends (the connection closed)."""
        from aiortc.mediastreams import MediaStreamError

        previous = None
        try:
            while True:
                frame = await self.incoming.recv()
                pts = int(frame.pts or 0)
                repeat, previous = is_repeat(pts, previous), pts
                if not repeat and not self._match(frame):
                    self.unmatched = [*self.unmatched[-3:], frame]
        except MediaStreamError:
            return

    def _match(self, frame: Any) -> bool:
        """False while the picture's message has not come."""
        head = self.down.lookup(int(frame.pts or 0))
        if head is None:
            return False
        seq = self.up.lookup(head["in"]) if isinstance(head.get("in"), int) else None
        if seq is None:
            self.unknown += 1
        else:
            self.on_picture(seq, head, frame)
        return True

    def stop(self) -> None:
        self.out.stop()
