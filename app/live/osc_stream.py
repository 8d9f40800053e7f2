"""`stream`'s side of OSC (app.live.osc): before each frame the newest changes are written to the session
by OSC's one interpreter (app.live.osc_session, the window's too), and the session's live settings go
through LiveLoop.apply, the same path as a schedule's cues, so a new prompt or seed glides over --transition.

/sdxs/pause 1 holds the stream before its next frame (a video waits where it is; the MJPEG stream and NDI
keep showing the last picture) until /sdxs/pause 0, /sdxs/snapshot writes
sdxs-TIME.png next to --out (or into the current folder), and /sdxs/record 0 / 1 finishes the recording /
starts a new one, sdxs-TIME.mp4 in the same folder.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from app.live.osc import OscControl
from app.live.osc_session import apply_osc
from app.live.session import LoadedLora, Session
from app.live.sinks import RecorderSink, SinkSet
from models.errors import UserError

log = logging.getLogger(__name__)


class StreamControl:
    """Applies an OscControl's changes to a session, and the session to a live loop and its sinks, between frames."""

    def __init__(self, osc: OscControl, loop: Any, sinks: SinkSet, folder: Path, fps: float, side_by_side: bool = False,
                 session: Session | None = None):
        self.osc = osc
        self.loop = loop  # app.live.loop.LiveLoop
        self.sinks = sinks
        self.folder = folder  # where snapshots and new recordings go
        self.fps = fps  # a new recording's frame rate
        self.side_by_side = side_by_side  # a new recording has the input beside the output
        self.session = session or Session(live=loop.settings)  # what stream plays (a schedule writes it too)
        self.snapshots: list[Path] = []  # written so far
        self._snapshots = self.session.get("snapshots")  # the session's count this stream has answered
        self.session.set(loras_loaded=tuple(LoadedLora(name=n, spec=s, weight=w) for n, s, w in _loaded(loop.engine)),
                         recording=bool(self.recorders()))
        osc.fps = lambda: self.session.fps  # /sdxs/fps replies: a value, published after each frame

    @property
    def paused(self) -> bool:
        return bool(self.session.paused)

    def poll(self) -> None:
        """Take the changes that arrived since the last frame, write them to the session and apply it."""
        changes = self.osc.take()
        if changes:
            was = self.paused
            apply_osc(self.session, changes)
            if self.paused != was:
                _say("paused" if self.paused else "resumed")
        if self.session.live != self.loop.settings:
            try:
                self.loop.apply(self.session.live)
            except UserError as e:
                log.warning("OSC: %s", e)
        if self.session.recording != bool(self.recorders()):
            self.record(bool(self.session.recording))

    def hold(self, step: float = 0.05) -> None:
        """While paused: wait, taking OSC messages (Ctrl+C still stops the stream)."""
        while self.paused:
            time.sleep(step)
            self.poll()

    def after(self, output) -> None:
        """After a frame: publish the frame rate, and write the snapshot asked for, if any (output: uint8 RGB)."""
        self.session.set(fps=float(self.loop.fps))
        asked = self.session.get("snapshots")
        if asked == self._snapshots or output is None:
            return
        from models.imageio import write_rgb

        self._snapshots = asked
        try:
            path = write_rgb(self.folder / time.strftime("sdxs-%Y%m%d-%H%M%S.png"), output)
        except (UserError, OSError) as e:
            log.warning("OSC snapshot: %s", e)
            return
        self.snapshots.append(path)
        _say(f"saved {path}")

    def recorders(self) -> list[RecorderSink]:
        return [s for s in self.sinks if isinstance(s, RecorderSink)]

    def record(self, on: bool) -> None:
        from app.live.recorder import Recorder

        running = self.recorders()
        if not on:
            for sink in running:
                self.sinks.remove(sink)  # finishes the file
                _say(f"recorded {sink.recorder.frames} frames to {sink.path or 'nothing (no frame came)'}")
            return
        if running:
            return
        try:
            rec = Recorder(self.folder / time.strftime("sdxs-%Y%m%d-%H%M%S.mp4"), self.fps)
        except UserError as e:
            log.warning("OSC record: %s", e)
            self.session.set(recording=False)
            return
        self.sinks.add(RecorderSink(rec, self.side_by_side))
        _say(f"recording to {rec.path}")


def _loaded(engine: Any) -> list[tuple[str, str, float]]:
    from app.live.styles import loaded

    return loaded(engine)


def _say(text: str) -> None:
    log.info("  OSC: %s", text)


def open_osc(address: str | None, allow: str | None = None) -> OscControl | None:
    """The OSC server that --osc [ADDR:]PORT and --osc-allow HOST[,HOST...] ask for (None without an address)."""
    if not address:
        return None
    return OscControl(address, allow=[h for h in (allow or "").split(",") if h.strip()])
