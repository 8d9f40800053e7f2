"""Where output frames go besides the window: the MJPEG server, the virtual camera, NDI and an MP4 recording.

Every sink has send(rgb) (cheap, never waits for a reader) and close(), and a label that names it in one
line. A SinkSet holds the open ones: send(result) gives each its picture, and a sink that raises is closed,
dropped and reported in one line (a log warning, and the on_failure callback: the window's status bar)
while the others keep going. There is one SinkSet per frame path (app.live.framepath), fed on the path's
thread: `stream` opens its sinks from its options with open_sinks; the window's Output menu and its recording
add and remove the same objects (MjpegServer, VirtualCamera, NdiSender, RecorderSink) from the GUI or the
worker thread, each with its own on_failure. add, remove and send hold one lock, so a sink is never closed
while it is being sent a frame.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from models.errors import first_line

log = logging.getLogger(__name__)


class Sink(Protocol):
    def send(self, rgb: np.ndarray) -> None: ...
    def close(self) -> None: ...


def label(sink: Sink) -> str:
    """The sink's name in a message: its label, else its class name."""
    return str(getattr(sink, "label", "") or type(sink).__name__)


class RecorderSink:
    """An app.live.recorder.Recorder as a sink: every new output frame (the input beside it when asked)."""

    def __init__(self, recorder: Any, side_by_side: bool = False, skip_reused: bool = False):
        self.recorder = recorder  # app.live.recorder.Recorder
        self.side_by_side = side_by_side  # record the input next to the output
        self.skip_reused = skip_reused  # leave out reused outputs (a window's still picture); stream keeps a video's every frame
        self.label = f"the recording {recorder.path.name}"
        self.path = None  # where the finished file went (set by close, or by a failure that kept the frames)
        self.error = None  # the RecordingError that stopped it (a full disk): the recorder already finished itself

    def picture(self, result: Any) -> np.ndarray | None:
        from app.live.recorder import side_by_side

        if self.skip_reused and result.reused and self.recorder.frames:  # the recorder repeats a still picture itself
            return None
        return side_by_side(result.source, result.output) if self.side_by_side else result.output

    def send(self, rgb: np.ndarray) -> None:
        from app.live.recorder import RecordingError

        try:
            self.recorder.write(rgb)
        except RecordingError as e:  # it stopped and kept a playable file of the frames so far, or nothing
            self.error, self.path = e, e.kept
            raise

    def close(self) -> None:
        if self.error is None:
            self.path = self.recorder.close()

    def abort(self) -> None:
        if self.error is None:  # after a RecordingError the kept file is the user's: leave it
            self.recorder.abort()


class SinkSet:
    """The open sinks; one that fails is closed and dropped with one line, and never stops the others.

    on_failure(sink, text): called with the one line after a sink failed (the window shows it); a sink added
    with its own on_failure reports there instead. Called on the thread that found the failure."""

    def __init__(self, sinks: list[Sink] | None = None, on_failure: Callable[[Sink, str], None] | None = None):
        self.sinks: list[Sink] = list(sinks or [])
        self.on_failure = on_failure
        self.failures: list[str] = []  # every failure's line, in order
        self._lock = threading.RLock()  # add, remove and send from any thread; a sink never closes mid-send
        self._owners: dict[int, Callable[[Sink, str], None]] = {}  # id(sink) -> its own on_failure

    def __iter__(self):
        return iter(list(self.sinks))

    def __len__(self) -> int:
        return len(self.sinks)

    def add(self, sink: Sink, on_failure: Callable[[Sink, str], None] | None = None, first: Any = None) -> Sink:
        """Add a sink; `first` (a Result), when given, goes to it alone at once: a recording started over a still
        picture begins with that picture rather than waiting for the next change."""
        with self._lock:
            self.sinks.append(sink)
            if on_failure is not None:
                self._owners[id(sink)] = on_failure
            if first is not None:
                self._send(first, [sink])
        return sink

    def remove(self, sink: Sink) -> None:
        """Take a sink out and close it (a recording is finished); a failing close is one line too."""
        with self._lock:
            if sink not in self.sinks:
                return
            self.sinks.remove(sink)
        try:
            sink.close()
        except Exception as e:
            self._report(sink, f"{label(sink)} did not close cleanly: {first_line(e)}")
        self._owners.pop(id(sink), None)

    def send(self, result: Any) -> None:
        """One output to every sink: an app.live.loop.Result (each sink's picture of it, the output unless the
        sink's picture() says otherwise, None for none) or a bare uint8 RGB frame."""
        with self._lock:
            self._send(result, self.sinks)

    def _send(self, result: Any, sinks: list[Sink]) -> None:
        for sink in list(sinks):
            try:
                pick = getattr(sink, "picture", None)
                rgb = result if isinstance(result, np.ndarray) else (pick(result) if pick else result.output)
                if rgb is not None:
                    sink.send(rgb)
            except Exception as e:
                self.fail(sink, e)

    def fail(self, sink: Sink, error: BaseException) -> None:
        """Drop a sink that failed: closed (a recording is discarded), one line, the others go on."""
        with self._lock:
            if sink in self.sinks:
                self.sinks.remove(sink)
        try:
            getattr(sink, "abort", sink.close)()
        except Exception as e:  # already broken: its close may fail too
            log.debug("closing %s after its failure: %s", label(sink), e)
        self._report(sink, f"{label(sink)} stopped: {first_line(error)}")
        self._owners.pop(id(sink), None)

    def close(self) -> None:
        """Close every sink (each one's failure is one line; the rest still close)."""
        for sink in list(self.sinks):
            self.remove(sink)

    def abort(self) -> None:
        """Something went wrong: close every sink, a recording discarded (nothing half-written stays)."""
        for sink in list(self.sinks):
            with self._lock:
                if sink in self.sinks:
                    self.sinks.remove(sink)
            try:
                getattr(sink, "abort", sink.close)()
            except Exception as e:
                log.debug("closing %s: %s", label(sink), e)

    def _report(self, sink: Sink, text: str) -> None:
        self.failures.append(text)
        log.warning("%s", text)
        report = self._owners.get(id(sink), self.on_failure)
        if report is not None:
            report(sink, text)


def open_sinks(args: argparse.Namespace, size: int, fps: float) -> SinkSet:
    """The sinks that --serve ADDR [--serve-token T], --virtual-camera and --ndi NAME ask for, opened (UserError
    if one cannot be: those opened before it are closed again)."""
    from app.live.serve import MjpegServer
    from app.live.virtualcam import VirtualCamera

    sinks = SinkSet()
    try:
        if getattr(args, "serve", None):
            server = sinks.add(MjpegServer(args.serve, token=getattr(args, "serve_token", None)).start())
            log.info("serving %s (also %s)", server.url(), server.url("/frame.jpg"))
        if getattr(args, "virtual_camera", False):
            sinks.add(VirtualCamera(size, size, fps))  # it logs its device itself
        if getattr(args, "ndi", None):
            from app.live.ndi import NdiSender

            ndi = sinks.add(NdiSender(args.ndi, fps))
            log.info("NDI: sending as %r", ndi.name)
    except BaseException:
        sinks.close()
        raise
    return sinks
