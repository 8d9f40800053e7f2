"""A sink that does its work on a thread of its own: the frame path only hands it a picture (app.live.sinks).

    the frame path's thread:  send(rgb)  -> the mailbox: the picture and the monotonic time it came (cheap)
    the sink's own thread:    work(rgb, at) for each picture it takes, idle() when none came for idle_every s,
                              and at the end finish() (close) or discard() (abort)

The mailbox holds `slots` pictures. slots=1 (a live output: NDI, the virtual camera) is newest wins: a picture
still waiting when the next comes is replaced, since a live output wants the newest one. With more slots (a
recording) it is a bounded queue worked in order; when it is full the oldest waiting picture is left out (a
recording stamped with real time then holds the picture before it longer: memory never grows), or, with
wait=True (a video file's recording, which must hold every frame), send() waits for room. Pictures left out are
counted in `dropped`, pictures worked in `delivered`.

close() works every picture still waiting, then finish() runs; abort() drops them and discard() runs; both
end the thread. A failure on the thread (work or idle) stops the work: on_error(exc) is called there at once (a
SinkSet sets it, and drops the sink with one line); a caller not told that way gets it from the next send() or
from close(), which also raises what finish() raised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)


class SinkThread:
    """Base class of a sink with its own thread; subclasses write work() and, where they need them, idle(),
    finish() and discard(). The thread starts with the first picture."""

    label = "a sink"  # its name in a one-line failure (subclasses name themselves)

    def __init__(self, name: str, *, slots: int = 1, wait: bool = False, idle_every: float | None = None,
                 join_timeout: float | None = 5.0):
        self.slots = max(1, int(slots))  # pictures the mailbox holds (1: newest wins)
        self.wait = wait  # a full mailbox makes send() wait for room instead of leaving the oldest picture out
        self.idle_every = idle_every  # seconds without a picture before idle() is called (None: never)
        self.join_timeout = join_timeout  # seconds close() and abort() wait for the thread (None: as long as it takes)
        self.delivered = 0  # pictures worked: the sink's output made (encoded, handed to its library)
        self.dropped = 0  # pictures replaced or left out before the thread took them
        self.failure: BaseException | None = None  # what stopped the thread's work
        # told of a failure on the thread (a SinkSet: it drops the sink); returns True when it reported it
        self.on_error: Callable[[BaseException], bool] | None = None
        self.on_output: Callable[[np.ndarray], None] | None = None  # called on the thread after each picture's work
        self._name = name
        self._q: deque[tuple[np.ndarray, float]] = deque()
        self._cv = threading.Condition()
        self._busy = False
        self._closing = False
        self._aborting = False
        self._ended = False  # close() or abort() was called
        self._told = False  # the failure reached someone (on_error, send or close)
        self._end_error: BaseException | None = None  # raised by finish() or discard() on the thread
        self._thread: threading.Thread | None = None

    # ---- for subclasses -----------------------------------------------------------------------------------

    def work(self, rgb: np.ndarray, at: float) -> None:
        """Make the output of one picture (at: time.monotonic() when it was sent)."""
        raise NotImplementedError

    def idle(self) -> None:
        """Nothing came for idle_every seconds (a still picture is sent again)."""

    def finish(self) -> None:
        """After the last picture was worked (close): finish the file, close the device."""

    def discard(self) -> None:
        """After an abort: drop what was made (a recording is deleted). By default as finish()."""
        self.finish()

    # ---- the sink's side (any thread) ---------------------------------------------------------------------

    def send(self, rgb: np.ndarray) -> None:
        """Hand over a picture; returns at once (with wait, once there is room). Raises the thread's failure."""
        with self._cv:
            self._raise_failure()
            if self._closing or self.failure is not None:
                return
            if len(self._q) >= self.slots:
                if self.wait:
                    self._cv.wait_for(lambda: len(self._q) < self.slots or self.failure is not None or self._closing)
                    self._raise_failure()
                    if self._closing or self.failure is not None:
                        return
                else:
                    self._q.popleft()
                    self.dropped += 1
            self._q.append((rgb, time.monotonic()))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cv.notify_all()

    @property
    def waiting(self) -> int:
        """Pictures in the mailbox, not yet taken by the thread."""
        with self._cv:
            return len(self._q)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every picture handed over was worked (or the work stopped); False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: (not self._q and not self._busy) or self.failure is not None, timeout)

    def close(self) -> None:
        """Work every waiting picture, then finish(); raises a failure nobody was told of yet."""
        self._end(abort=False)
        with self._cv:
            self._raise_failure()
            if self._end_error is not None:
                e, self._end_error = self._end_error, None
                raise e

    def abort(self) -> None:
        """Drop the waiting pictures, then discard(). Safe on the sink's own thread (a SinkSet told of its failure)."""
        self._end(abort=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close() if exc_type is None else self.abort()

    # ---- the thread ---------------------------------------------------------------------------------------

    def _raise_failure(self) -> None:
        if self.failure is not None and not self._told:
            self._told = True
            raise self.failure

    def _end(self, abort: bool) -> None:
        with self._cv:
            if abort:
                self.dropped += len(self._q)
                self._q.clear()
                self._aborting = True
            self._closing = True
            self._cv.notify_all()
            thread, here = self._thread, self._thread is None and not self._ended
            self._ended = True
        if here:  # no thread was started (no picture came): end on this one, once
            self._wrap_up(abort)
        elif thread is not None and thread is not threading.current_thread():
            thread.join(self.join_timeout)
            if thread.is_alive():
                log.warning("%s did not finish within %s s", self.label, self.join_timeout)

    def _run(self) -> None:
        while True:
            with self._cv:
                ready = lambda: (self._q and self.failure is None) or self._closing  # noqa: E731
                if not self._cv.wait_for(ready, self.idle_every if self.failure is None else None):
                    item = None  # nothing came for idle_every seconds
                elif self._q and self.failure is None and not self._aborting:
                    item = self._q.popleft()
                    self._busy = True
                    self._cv.notify_all()  # a waiting send() has room
                else:
                    break  # closing, every picture worked (or dropped)
            try:
                if item is None:
                    self.idle()
                else:
                    self.work(*item)
                    self.delivered += 1
                    if self.on_output is not None:
                        self.on_output(item[0])
            except Exception as e:
                log.debug("%s failed on its thread", self.label, exc_info=True)
                self._failed(e)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
        with self._cv:
            aborting = self._aborting
        self._wrap_up(aborting)

    def _failed(self, e: Exception) -> None:
        with self._cv:
            self.failure = e
            self.dropped += len(self._q)
            self._q.clear()
            self._cv.notify_all()
            report = self.on_error if not self._told else None
            self._told = report is not None  # from now on send() does nothing: the set drops the sink
        if report is not None and not report(e):  # a SinkSet drops the sink (it calls abort(), here on this thread)
            with self._cv:
                self._told = False  # the set had let go of it (a close working off its pictures): close() raises it

    def _wrap_up(self, abort: bool) -> None:
        try:
            self.discard() if abort else self.finish()
        except Exception as e:  # close() raises it to its caller
            log.debug("%s did not end cleanly", self.label, exc_info=True)
            with self._cv:
                self._end_error = e
