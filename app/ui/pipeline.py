"""The Pipeline: the GUI thread's handle on the frame path (app.live.framepath) and the Worker (app/ui/worker.py)
on its QThread. See app/ui/worker.py's docstring for how the threads share the work.
"""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.live.framepath import FramePath, Posted
from app.live.loop import Frame, Loader
from app.live.session import ModelRequest
from app.live.settings import LiveSettings
from app.ui.qtapp import GuiThreadCollector
from app.ui.worker import Worker
from models.errors import UserError, first_line

_UNFINISHED: list = []  # pipelines whose thread was still loading at shutdown (Qt aborts if one is destroyed)


def finish_all(timeout_ms: int = 120000) -> None:
    """At exit: wait for threads still finishing a model load, then finalize their recordings."""
    for p in _UNFINISHED:
        if p.thread.wait(timeout_ms):
            p.worker.stop_recording()


class Pipeline(QObject):
    """The GUI thread's handle on the frame path and the worker: input, settings, loading, recording, shutdown."""

    resultReady = Signal(object)  # a new app.live.loop.Result for the window (the newest; older ones are skipped)
    inputShown = Signal(object)  # an app.live.framepath.Posted: the newest input taken (the feed shows it)
    loaded = Signal(object)
    busy = Signal(str)
    failed = Signal(str)
    progress = Signal(str, float, float)
    recorded = Signal(str, int)
    lorasLoaded = Signal(object)  # [(name, spec, weight)]
    adaptersLoaded = Signal(object)  # [app.ui.panel.adapters.LoadedAdapter]
    said = Signal(str)  # the remote link's notices (link lost, back), for the status bar
    _posted = Signal()  # from the frame path's thread: a new post waits (at most one of these is queued)
    # to the worker (queued: they run on its thread, in order, between frames)
    _configure = Signal(object)
    _load = Signal(object)
    _start_rec = Signal(str, float, bool)
    _stop_rec = Signal()
    _new_source = Signal()
    _add_lora = Signal(str, float)
    _remove_lora = Signal(str)
    _add_adapter = Signal(str)
    _remove_adapter = Signal(str)
    _connect_remote = Signal(str, str)

    def __init__(self, loader: Loader | None = None, parent: QObject | None = None):
        super().__init__(parent)
        GuiThreadCollector.acquire()  # no collection on the worker's thread (see app/ui/qtapp.py)
        self._collector = True
        self._post_waiting = threading.Event()  # a _posted signal is queued and not yet taken
        self._shown: Posted = Posted(None, None, 0)  # the post shown last
        self._shown_output = None  # the output array shown last (a reused result carries the same one)
        self.path = FramePath(on_post=self._on_post, on_error=self._on_frame_error).start()
        self._posted.connect(self._take_post)
        self.thread = QThread()
        self.thread.setObjectName("sdxs-worker")
        self.worker = Worker(loader, self.path)
        self.worker.moveToThread(self.thread)
        self._configure.connect(self.worker.configure)
        self._load.connect(self.worker.load)
        self._start_rec.connect(self.worker.start_recording)
        self._stop_rec.connect(self.worker.stop_recording)
        self._new_source.connect(self.worker.new_source)
        self._add_lora.connect(self.worker.add_lora)
        self._remove_lora.connect(self.worker.remove_lora)
        self.worker.lorasLoaded.connect(self.lorasLoaded)
        self._add_adapter.connect(self.worker.add_adapter)
        self._remove_adapter.connect(self.worker.remove_adapter)
        self.worker.adaptersLoaded.connect(self._on_adapters)
        self._connect_remote.connect(self.worker.connect_remote)
        self.worker.remoteSaid.connect(self.said)  # emitted on the client's thread: queued to this (GUI) thread
        self.worker.loaded.connect(self._on_loaded)
        self.worker.busy.connect(self._on_busy)
        self.worker.failed.connect(self.failed)  # signal to signal: re-emitted on this (GUI) thread
        self.worker.progress.connect(self.progress)
        self.worker.recorded.connect(self._on_recorded)
        self.worker.recordingFailed.connect(self._on_recording_failed)
        self.sent = 0  # frames offered to the frame path
        self.is_busy = ""
        self.info: dict = {}
        self.recording = False
        self.thread.start()

    def offer(self, frame: Frame) -> None:
        """Give the frame path this frame (the canvas's drawing); one it has not taken yet is replaced."""
        self.sent += 1
        self.path.offer(frame)

    def set_capture(self, capture) -> None:
        """Frames from this capture (None: only offered frames); the capture wakes the path itself."""
        self.path.set_capture(capture)

    def refresh(self) -> None:
        """Make the current input again (a resume, a glide)."""
        self.path.refresh()

    def set_paused(self, paused: bool) -> None:
        self.path.set_paused(paused)

    def configure(self, settings: LiveSettings) -> None:
        self._configure.emit(settings)

    def load(self, req: ModelRequest) -> None:
        self.is_busy = "Loading..."
        self._load.emit(req)

    def add_lora(self, spec: str, weight: float) -> None:
        self.is_busy = "Loading LoRA..."
        self._add_lora.emit(spec, weight)

    def remove_lora(self, spec: str) -> None:
        self._remove_lora.emit(spec)

    def add_adapter(self, arg: str) -> None:
        self.is_busy = "Loading adapter..."
        self._add_adapter.emit(arg)

    def remove_adapter(self, name: str) -> None:
        self._remove_adapter.emit(name)

    def connect_remote(self, url: str, token: str) -> None:
        """Run the frames on the engine server at url (app.remote); a failure is one line through `failed`."""
        self.is_busy = "Connecting..."
        self._connect_remote.emit(url, token)

    @property
    def shown_output(self):
        """The output picture (an RGB array) shown last, or None before the first (GUI thread)."""
        return self._shown_output

    @property
    def remote(self):
        """The app.remote.client.RemoteEngine in use, or None (the local engine)."""
        return self.worker.remote

    def cancel(self) -> None:
        self.worker.cancel.set()

    def new_source(self) -> None:
        """The source changed: the worker resets its stabiliser before the next frame."""
        self._new_source.emit()

    def start_recording(self, path: str, fps: float, side_by_side: bool) -> None:
        self.recording = True
        self._start_rec.emit(path, fps, side_by_side)

    def stop_recording(self) -> None:
        self.recording = False
        self._stop_rec.emit()

    @property
    def frames(self) -> int:
        loop = self.worker.loop
        return loop.frames if loop is not None else 0

    def stop(self, timeout_ms: int = 1800) -> bool:
        """Stop the worker thread (waiting up to timeout_ms) and finalize any recording. True if it ended."""
        end = time.perf_counter() + timeout_ms / 1000
        if self.worker.remote is not None:
            self.worker.remote.close()  # a frame waiting on the link ends now
        self.path.stop(timeout_ms / 1000)  # a frame in flight finishes; none starts
        self.cancel()
        self.thread.quit()
        ended = self.thread.wait(max(0, int(1000 * (end - time.perf_counter()))))
        if ended:
            self.worker.stop_recording()  # its thread has ended, so calling it here is safe
            if self._collector:
                self._collector = False
                GuiThreadCollector.release()
        else:  # a model load cannot be interrupted: keep the thread object alive until it ends
            _UNFINISHED.append(self)
        return ended

    def _on_post(self) -> None:
        """On the frame path's thread: wake the GUI once however many posts arrive before it looks."""
        if not self._post_waiting.is_set():
            self._post_waiting.set()
            self._posted.emit()

    def _on_frame_error(self, err: BaseException) -> None:
        """On the frame path's thread: a frame failed; one line for the status bar (a queued signal)."""
        if isinstance(err, UserError):
            self.failed.emit(str(err))
        else:
            self.failed.emit(f"the engine failed on a frame: {type(err).__name__}: {first_line(err)}")

    @Slot()
    def _take_post(self) -> None:
        """On the GUI thread: show the newest post (older ones were never shown: newest wins)."""
        self._post_waiting.clear()
        posted = self.path.latest()
        if posted.count == self._shown.count:
            return
        self._shown = posted
        self.inputShown.emit(posted)
        result = posted.result
        if result is not None and result.output is not self._shown_output:
            self._shown_output = result.output
            self.resultReady.emit(result)

    @Slot(object)
    def _on_loaded(self, info: dict) -> None:
        self.info = info
        self.loaded.emit(info)

    @Slot(object)
    def _on_adapters(self, loaded: list) -> None:
        if self.info:  # the first adapter is the one the overlay and the Train dialog name
            self.info["controlnet"] = loaded[0].spec if loaded else None
            self.info["adapters"] = tuple(a.spec for a in loaded)
            self.info["conditions"] = [a.condition for a in loaded]
            self.info["condition"] = loaded[0].condition if loaded else ""
        self.adaptersLoaded.emit(loaded)

    @Slot(str)
    def _on_busy(self, text: str) -> None:
        self.is_busy = text
        self.busy.emit(text)

    @Slot()
    def _on_recording_failed(self) -> None:
        self.recording = False
        self.recorded.emit("", 0)

    @Slot(str, int)
    def _on_recorded(self, path: str, frames: int) -> None:
        self.recording = False  # stopped by the user, or by the recorder itself (a full disk)
        self.recorded.emit(path, frames)


def wait_idle(pipeline: Pipeline, timeout: float = 10.0) -> bool:
    """For tests and benchmarks: process Qt events until the frame path and the worker have nothing in flight
    and the newest post was shown."""
    from PySide6.QtCore import QCoreApplication

    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        QCoreApplication.processEvents()
        if not pipeline.path.busy and not pipeline.is_busy and not pipeline._post_waiting.is_set():
            return True
        time.sleep(0.002)
    return False
