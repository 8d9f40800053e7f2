"""Frame sources without Qt: a camera or a video file read in its own thread, or a still image.

A Capture thread reads as fast as the source gives frames and keeps only the newest one, and wakes the frame
path (app.live.framepath, through on_frame), which takes whatever is newest when it is ready for the next frame,
so a slow model never builds a backlog and nothing polls.
A camera that cannot be opened or stops sending frames puts the capture in the "failed" state with a
message; it never raises into the caller's thread and never blocks it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np

from app.live.loop import Frame
from app.live.source_spec import SourceSpec
from models.errors import UserError
from models.imageio import check_pixels, read_rgb

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # OpenCV's own warnings repeat our messages


def list_cameras(sysfs: str = "/sys/class/video4linux") -> list[tuple[int, str]]:
    """(index, name) of the video devices Linux lists, without opening them (opening can be slow or busy);
    empty where there is no sysfs (other systems: cameras are still opened by index)."""
    root = Path(sysfs)
    found = []
    for dev in sorted(root.glob("video*")) if root.is_dir() else []:
        if dev.name[5:].isdigit():
            try:
                name = (dev / "name").read_text().strip()
            except OSError:
                name = dev.name
            found.append((int(dev.name[5:]), name))
    return sorted(found)


class FrameThread:
    """A source read in its own daemon thread that keeps only the newest frame (camera, video file, screen).

    state: "opening", "running", "failed" (error says why and what to do) or "stopped". The thread and
    stop() change it under one lock, and "stopped" and "failed" are final: after stop() it never reads
    "running" again, however late the thread gets there. Subclasses write _run()."""

    def __init__(self, spec: SourceSpec, name: str):
        self.spec = spec
        self.state = "opening"
        self.error = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._seq = 0
        self.on_frame = None  # called (no arguments, on this thread) after each new frame or state change: app.live.framepath
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def latest(self) -> Frame | None:
        """The newest frame (its seq grows with every frame read), or None before the first one."""
        with self._lock:
            return self._frame

    def stop(self, timeout: float = 1.5) -> bool:
        """Ask the thread to end and wait for it; True when it has ended."""
        self._stop.set()
        self._set_state("stopped")
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _set_state(self, state: str, error: str = "") -> None:
        with self._lock:
            if self.state in ("stopped", "failed"):
                return
            self.state, self.error = state, error
        self._woken()

    def _woken(self) -> None:
        wake = self.on_frame
        if wake is not None:
            wake()

    def _fail(self, message: str) -> None:
        self._set_state("failed", message)

    def _publish(self, rgb: np.ndarray) -> None:
        with self._lock:
            self._seq += 1
            self._frame = Frame(rgb, time.perf_counter(), False, self._seq)
        self._woken()

    def _pace(self, next_due: float, period: float) -> float:
        """Wait until next_due + period (the stop flag wakes it); a source that fell behind starts afresh."""
        next_due += period
        delay = next_due - time.perf_counter()
        if delay > 0:
            self._stop.wait(delay)
            return next_due
        return time.perf_counter()

    def _run(self) -> None:
        raise NotImplementedError


class Capture(FrameThread):
    """Reads a camera (by index) or a video file (looping), keeping the newest frame.

    realtime: for files, pace reading at the file's frame rate; otherwise read as fast as possible.
    """

    def __init__(self, spec: SourceSpec, loop: bool = True, realtime: bool = True, stall_seconds: float = 2.0):
        if spec.kind not in ("camera", "video"):
            raise UserError(f"cannot capture from {spec}: only camera:N and video:PATH are captured")
        super().__init__(spec, f"capture-{spec.kind}")
        self.loop = loop
        self.realtime = realtime
        self.stall_seconds = stall_seconds  # a camera sending nothing this long counts as unplugged
        self.fps = 0.0  # the source's nominal rate (0 when unknown)
        self.loops = 0  # times a video file wrapped around

    # ---- the thread ---------------------------------------------------------------------------------

    def _open(self) -> cv2.VideoCapture | None:
        """The capture, or None when it cannot be opened; a UserError when it declares frames too big to read."""
        target = self.spec.index if self.spec.kind == "camera" else self.spec.target
        cap = cv2.VideoCapture(target)
        if cap.isOpened():
            check_frame_size(cap, str(self.spec))
            return cap
        cap.release()
        return None

    def _run(self) -> None:
        try:
            cap = self._open()
        except UserError as e:
            self._fail(str(e))
            return
        if cap is None:
            if self.spec.kind == "camera":
                self._fail(f"camera {self.spec.index} could not be opened: it is unplugged, missing or busy in another "
                           "app; plug it in or close the other app, then retry (or choose another camera)")
            else:
                self._fail(f"video {self.spec.target!r} could not be opened: use an MP4, AVI, MKV or WebM file")
            return
        try:
            self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            if not 1 <= self.fps <= 240:
                self.fps = 0.0
            self._set_state("running")
            self._read_loop(cap)
        finally:
            cap.release()

    def _read_loop(self, cap: cv2.VideoCapture) -> None:
        period = 1.0 / self.fps if (self.realtime and self.fps and self.spec.kind == "video") else 0.0
        next_due = time.perf_counter()
        last_ok = time.perf_counter()
        while not self._stop.is_set():
            ok, bgr = cap.read()
            if not ok or bgr is None:
                if self.spec.kind == "video":
                    if not self.loop:
                        self._set_state("stopped")
                        return
                    cap.release()  # reopen rather than seek: seeking is unreliable for some codecs
                    cap = self._open()
                    if cap is None or (self._seq == 0 and self.loops > 0):
                        self._fail(f"video {self.spec.target!r} has no readable frames")
                        return
                    self.loops += 1
                    continue
                if time.perf_counter() - last_ok > self.stall_seconds:
                    self._fail(f"camera {self.spec.index} stopped sending frames (unplugged?): reconnect it and retry")
                    return
                self._stop.wait(0.02)
                continue
            last_ok = time.perf_counter()
            self._publish(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            if period:
                next_due = self._pace(next_due, period)


class StillImage:
    """An image file as a source: the same frame every time (the loop's change check skips re-rendering)."""

    def __init__(self, spec: SourceSpec):
        self.spec = spec
        self.image = read_rgb(spec.target)
        self.state = "running"
        self.error = ""
        self._frame = Frame(self.image, time.perf_counter(), False, 1)

    def latest(self) -> Frame:
        return Frame(self._frame.image, time.perf_counter(), False, 1)

    def start(self) -> StillImage:
        return self

    def stop(self, timeout: float = 0.0) -> bool:
        return True

    alive = False


def check_frame_size(cap: cv2.VideoCapture, where: str) -> None:
    """A UserError, and the capture released, when its frames declare more pixels than an image may have
    (models.imageio.MAX_IMAGE_PIXELS): read from the header before any frame is decoded."""
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    try:
        check_pixels(w, h, f"each frame of {where}")
    except UserError:
        cap.release()
        raise


def read_video(path: str, max_frames: int | None = None):
    """Every frame of a video file in order (for stream over a file: no frame dropped), as uint8 RGB."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise UserError(f"video {path!r} could not be opened: use an MP4, AVI, MKV or WebM file")
    check_frame_size(cap, f"video {path!r}")
    try:
        n = 0
        while max_frames is None or n < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            n += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def video_fps(path: str, default: float = 30.0) -> float:
    cap = cv2.VideoCapture(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()
    return fps if 1 <= fps <= 240 else default
