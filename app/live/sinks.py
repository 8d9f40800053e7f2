"""Where output frames go besides the window: the MJPEG server, the virtual camera, NDI and an MP4 recording.

Every sink has send(rgb) and close(), and a label that names it in one line. send is cheap: no sink encodes on
the frame path's thread. NDI, the virtual camera and the recording are SinkThreads (app.live.sinkthread): send
puts the picture in the sink's mailbox and the sink's own thread encodes it; a live output's mailbox holds one
picture (newest wins), the recording's a few, stamped with the time they came (see RecorderSink). The MJPEG
server keeps the newest picture and its clients' threads encode it, once per picture a client wants.

A SinkSet holds the open ones: send(result) gives each its picture, and a sink that raises, or whose thread
fails, is closed, dropped and reported in one line (a log warning, and the on_failure callback: the window's
status bar) while the others keep going. There is one SinkSet per frame path (app.live.framepath), fed on the
path's thread: `stream` opens its sinks from its options with open_sinks; the window's Output menu and its
recording add and remove the same objects (MjpegServer, VirtualCamera, NdiSender, RecorderSink) from the GUI or
the worker thread, each with its own on_failure. add, remove and send hold one lock, so a sink is never closed
while it is being sent a frame; remove and close() wait until a sink's thread has worked every picture it holds
(a recording's last frames reach the file).
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from app.live.sinkthread import SinkThread
from models.errors import first_line

log = logging.getLogger(__name__)


class Sink(Protocol):
    def send(self, rgb: np.ndarray) -> None: ...
    def close(self) -> None: ...


def label(sink: Sink) -> str:
    """The sink's name in a message: its label, else its class name."""
    return str(getattr(sink, "label", "") or type(sink).__name__)


RECORD_SLOTS = 8  # pictures a recording's mailbox holds while its encoder is busy (512 px: 6 MB)


class RecorderSink(SinkThread):
    """An app.live.recorder.Recorder as a sink: every new output frame (the input beside it when asked), encoded on
    the sink's own thread. Each picture keeps the time it was sent, so the video keeps real time however late the
    encoder gets to it. The mailbox holds RECORD_SLOTS pictures: when the encoder falls behind, the oldest waiting
    one is left out (the video holds the picture before it longer; memory does not grow) and the count is logged
    when the recording closes. A recording of a video file (not real time: frame i at i / fps) must keep every
    frame: send waits for room instead. close() encodes every waiting picture before the file is finished."""

    def __init__(self, recorder: Any, side_by_side: bool = False, skip_reused: bool = False):
        super().__init__("recorder", slots=RECORD_SLOTS, wait=not recorder.real_time, join_timeout=None)
        self.recorder = recorder  # app.live.recorder.Recorder
        self.side_by_side = side_by_side  # record the input next to the output
        self.skip_reused = skip_reused  # leave out reused outputs (a window's still picture); stream keeps a video's every frame
        self.label = f"the recording {recorder.path.name}"
        self.path = None  # where the finished file went (set by close, or by a failure that kept the frames)
        self.error = None  # the RecordingError that stopped it (a full disk): the recorder already finished itself
        self.sent = 0  # pictures handed to it (the encoder may have left some out: dropped)

    def picture(self, result: Any) -> np.ndarray | None:
        from app.live.recorder import side_by_side

        if self.skip_reused and result.reused and self.sent:  # the recorder repeats a still picture itself
            return None
        return side_by_side(result.source, result.output) if self.side_by_side else result.output

    def send(self, rgb: np.ndarray) -> None:
        super().send(rgb)
        self.sent += 1

    def work(self, rgb: np.ndarray, at: float) -> None:
        from app.live.recorder import RecordingError

        try:
            self.recorder.write(rgb, at)
        except RecordingError as e:  # it stopped and kept a playable file of the frames so far, or nothing
            self.error, self.path = e, e.kept
            raise

    def finish(self) -> None:
        if self.dropped:
            log.warning("%s: %d of the %d pictures sent were left out, the encoder being behind (the video holds "
                        "the picture before each of them longer)", self.label, self.dropped, self.sent)
        if self.error is None:
            self.path = self.recorder.close()

    def discard(self) -> None:
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
        for sink in self.sinks:
            self._watch(sink)

    def __iter__(self):
        return iter(list(self.sinks))

    def __len__(self) -> int:
        return len(self.sinks)

    def add(self, sink: Sink, on_failure: Callable[[Sink, str], None] | None = None, first: Any = None) -> Sink:
        """Add a sink; `first` (a Result), when given, goes to it alone at once: a recording started over a still
        picture begins with that picture rather than waiting for the next change."""
        with self._lock:
            self.sinks.append(sink)
            self._watch(sink)
            if on_failure is not None:
                self._owners[id(sink)] = on_failure
            if first is not None:
                self._send(first, [sink])
        return sink

    def _watch(self, sink: Sink) -> None:
        """A sink with its own thread tells this set of its failure at once (not at the next frame, which a
        still picture may never send)."""
        if isinstance(sink, SinkThread):
            sink.on_error = lambda error, sink=sink: self.fail(sink, error)

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

    def fail(self, sink: Sink, error: BaseException) -> bool:
        """Drop a sink that failed: closed (a recording is discarded), one line, the others go on. False (nothing
        done) when the sink is no longer in the set: removed already, its close() then raises the failure."""
        with self._lock:
            if sink not in self.sinks:
                return False
            self.sinks.remove(sink)
        try:
            getattr(sink, "abort", sink.close)()
        except Exception as e:  # already broken: its close may fail too
            log.debug("closing %s after its failure: %s", label(sink), e)
        self._report(sink, f"{label(sink)} stopped: {first_line(error)}")
        self._owners.pop(id(sink), None)
        return True

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
