"""The one frame path: a plain thread that takes the newest input, runs the live loop, feeds every sink and
posts the newest result for a display. The window and `stream` both run it; neither's GUI or main thread is on it.

    capture thread (wakes it) | canvas / caller (offers a frame value, newest wins)
      -> FramePath thread: before(frame) -> LiveLoop.process (under `lock`) -> SinkSet.send -> after(result)
      -> post: the newest (frame, result) kept for whoever shows it (on_post is called, cheap, on this thread)

Nothing polls: a capture (app.live.sources.FrameThread) calls wake() when it has a new frame or fails; offer()
and refresh() wake it too. Whoever changes the engine (a model load, a LoRA, new settings) holds `lock`, so
changes land between frames. Sinks are added and removed at any time from any thread (SinkSet is locked).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.live.loop import Frame, LiveLoop, Result
from app.live.sinks import SinkSet
from app.live.sources import FrameThread
from models.errors import UserError, first_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Posted:
    """What the path made last, for a display: the input it took and the loop's result (None while paused,
    before a model is loaded, or when the frame failed)."""

    frame: Frame | None  # the newest input taken
    result: Result | None  # its result, or None
    count: int  # grows with every post: a display shows a post once


class EngineLock:
    """The engine's lock: held by the path for each frame and by whoever changes the engine (`with lock:`).

    A change that waits for it goes before the path's next frame: with a plain lock a path that runs frames
    back to back (a transition gliding, a video) takes it again the instant it lets go, and a LoRA load
    starves behind it for as long as frames come. Re-entrant, like the RLock it wraps."""

    def __init__(self):
        self._lock = threading.RLock()
        self._cv = threading.Condition(threading.Lock())
        self._waiting = 0  # changes waiting for the lock: the path lets them go first

    def __enter__(self) -> EngineLock:
        with self._cv:
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._cv:
                self._waiting -= 1
                if not self._waiting:
                    self._cv.notify_all()
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()

    def frame(self) -> threading.RLock:
        """For the path: wait until no change is waiting, then the lock to hold for one frame."""
        with self._cv:
            self._cv.wait_for(lambda: not self._waiting)
        return self._lock


class FramePath:
    """One producer thread from input to every sink. Start it with start(); stop() ends it.

    before(frame): called on the path's thread before each frame (a schedule's cues, OSC's changes).
    after(result): called after the sinks got the result (OSC's snapshot, a frame counter); an exception
    from before/after or from the loop goes to on_error(exc) (the path goes on unless on_error stops it)."""

    def __init__(self, *, sinks: SinkSet | None = None, on_post: Callable[[], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None,
                 before: Callable[[Frame], None] | None = None, after: Callable[[Result], None] | None = None,
                 name: str = "sdxs-frames"):
        self.lock = EngineLock()  # the engine's: held for each frame, and by whoever changes the engine
        self.sinks = sinks if sinks is not None else SinkSet()  # every output but the display
        self.on_post = on_post  # called on the path's thread after each post (a display's cheap wake-up)
        self.on_error = on_error  # called with an exception from a frame; default: log it
        self.before = before
        self.after = after
        self.loop: LiveLoop | None = None  # set with set_loop; None until a model is loaded
        self.paused = False  # inputs are still taken and posted (the feed moves), but nothing renders
        self.dropped = 0  # offered frames replaced by newer ones before the path took them
        self.frames = 0  # frames the path ran through the loop (reused outputs too)
        self._cv = threading.Condition()
        self._capture: Any = None  # a FrameThread, a StillImage, or None (offered frames)
        self._seen = 0  # the capture's seq taken last
        self._failed_seen = False  # the capture's failure was posted
        self._pending: Frame | None = None  # an offered frame (the canvas), newest wins
        self._current: Frame | None = None  # the input taken last, for refresh()
        self._refresh = False
        self._busy = False  # a frame is being made
        self._stopping = False
        self._posted = Posted(None, None, 0)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # ---- inputs (any thread) ----------------------------------------------------------------------------

    def start(self) -> FramePath:
        self._thread.start()
        return self

    def set_capture(self, capture: FrameThread | None) -> None:
        """Take frames from this capture from now on (None: only offered frames); it wakes the path itself."""
        with self._cv:
            old, self._capture = self._capture, capture
            self._seen, self._failed_seen, self._pending, self._current = 0, False, None, None
            self._cv.notify()
        if old is not None:
            old.on_frame = None
        if capture is not None:
            capture.on_frame = self.wake

    def offer(self, frame: Frame, block: bool = False, timeout: float | None = None) -> bool:
        """Hand the path a frame (the canvas's drawing); a frame not yet taken is replaced (newest wins).
        block: wait until the path took the previous one first (a video file's every frame, in order).
        False when block timed out or the path stopped."""
        with self._cv:
            if block and not self._cv.wait_for(lambda: self._pending is None or self._stopping, timeout):
                return False
            if self._stopping:
                return False
            if self._pending is not None:
                self.dropped += 1
            self._pending = frame
            self._cv.notify_all()
        return True

    def refresh(self) -> None:
        """Make the current input again (new settings, a resume, a glide): the newest frame if there is one."""
        with self._cv:
            self._refresh = True
            self._cv.notify_all()

    def wake(self) -> None:
        """A capture has a new frame or changed state (its thread calls this)."""
        with self._cv:
            self._cv.notify_all()

    def set_loop(self, loop: LiveLoop | None) -> None:
        with self.lock:
            self.loop = loop

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if not paused:
            self.refresh()

    # ---- outputs (any thread) ---------------------------------------------------------------------------

    def latest(self) -> Posted:
        """The newest post (a display takes this at its own rate)."""
        return self._posted

    @property
    def busy(self) -> bool:
        """A frame is being made or one waits to be taken."""
        with self._cv:
            return self._busy or self._pending is not None or self._refresh or self._capture_ready()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            if not self.busy:
                return True
            time.sleep(0.002)
        return False

    def stop(self, timeout: float = 1.5) -> bool:
        """End the thread (waiting up to timeout); the sinks stay open (their owner closes them). True if it ended."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._capture is not None:
            self._capture.on_frame = None
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ---- the thread -------------------------------------------------------------------------------------

    def _capture_ready(self) -> bool:
        cap = self._capture
        if cap is None:
            return False
        if cap.state == "failed":
            return not self._failed_seen
        f = cap.latest()
        return f is not None and f.seq != self._seen

    def _take(self) -> tuple[Frame | None, bool]:
        """The next input (under _cv): an offered frame, else the capture's newest, else the current one again.
        (frame, True) when a failed capture is to be posted."""
        if self._pending is not None:
            frame, self._pending = self._pending, None
            self._cv.notify_all()  # a blocked offer() may go on
            self._refresh = False
            return frame, False
        cap = self._capture
        if cap is not None and cap.state == "failed" and not self._failed_seen:
            self._failed_seen = True
            return None, True
        if cap is not None:
            f = cap.latest()
            if f is not None and (f.seq != self._seen or self._refresh):
                self._seen, self._refresh = f.seq, False
                return f, False
        if self._refresh:
            self._refresh = False
            return self._current, False
        return None, False

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and not (self._pending is not None or self._refresh or self._capture_ready()):
                    self._cv.wait()
                if self._stopping:
                    return
                frame, failed = self._take()
                self._busy = frame is not None or failed
            try:
                if failed:
                    self._post(None, None)  # the display reads the capture's error
                elif frame is not None:
                    self._current = frame
                    self._step(frame)
            finally:
                with self._cv:
                    self._busy = False

    def _step(self, frame: Frame) -> None:
        result = None
        try:
            if self.before is not None:
                self.before(frame)
            if not self.paused:
                with self.lock.frame():
                    loop = self.loop
                    result = loop.process(frame) if loop is not None else None
            if result is not None:
                self.frames += 1
                self.sinks.send(result)
                if self.after is not None:
                    self.after(result)
        except BaseException as e:  # one frame's failure never ends the path (on_error may stop it)
            self._error(e)
            if not isinstance(e, Exception):
                raise
        self._post(frame, result)

    def _error(self, e: BaseException) -> None:
        if self.on_error is not None:
            self.on_error(e)
        elif isinstance(e, UserError):
            log.warning("%s", e)
        else:
            log.warning("the engine failed on a frame: %s: %s", type(e).__name__, first_line(e))

    def _post(self, frame: Frame | None, result: Result | None) -> None:
        self._posted = Posted(frame, result, self._posted.count + 1)
        if self.on_post is not None:
            self.on_post()
