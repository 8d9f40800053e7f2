"""An NDI source as the live input (ndi:NAME): TouchDesigner, Resolume, OBS (DistroAV) or another SDXS Live
sending over NDI. Read like a camera: a thread receives frames (cyndilib) and keeps only the newest.

NAME is the source's own name ("SDXS Live") or its full name as receivers list it ("HOST (SDXS Live)").
"""

from __future__ import annotations

import time

import numpy as np

from app.live.ndi import _cyndilib, check_name
from app.live.source_spec import SourceSpec
from app.live.sources import FrameThread
from models.errors import first_line


def matches(full: str, name: str) -> bool:
    """Whether a listed source ("HOST (NAME)") is the one asked for (by NAME or by its full name)."""
    return full == name or full.endswith(f"({name})")


def list_sources(seconds: float = 2.0) -> list[str]:
    """The NDI sources seen within `seconds` (full names)."""
    _cyndilib()
    from cyndilib.finder import Finder

    finder = Finder()
    finder.open()
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            finder.wait_for_sources(min(0.2, max(0.0, end - time.monotonic())))
        return sorted(finder.get_source_names())
    finally:
        finder.close()


POLL = 0.004  # seconds between two asks for a frame (250 a second: under any sender's rate)


class NdiCapture(FrameThread):
    """Receives the NDI source spec.target, keeping the newest frame as uint8 RGB."""

    def __init__(self, spec: SourceSpec, find_seconds: float = 10.0):
        _cyndilib()  # one line naming what to install, before the thread starts
        super().__init__(spec, "capture-ndi")
        self.name = check_name(spec.target, "ndi:")
        self.find_seconds = float(find_seconds)  # how long to look for the source before giving up
        self.source_name = ""  # its full name, once found

    def _run(self) -> None:
        from cyndilib.finder import Finder

        finder = Finder()
        try:
            finder.open()
            source, end = None, time.monotonic() + self.find_seconds
            while source is None and time.monotonic() < end and not self._stop.is_set():
                finder.wait_for_sources(0.2)
                source = next((s for s in finder.iter_sources() if matches(s.name, self.name)), None)
            if self._stop.is_set():
                return
            if source is None:
                seen = ", ".join(finder.get_source_names()) or "none"
                return self._fail(f"no NDI source named {self.name!r} found in {self.find_seconds:g} s (seen: {seen}); "
                                  "check the name and that both computers are on the same network")
            self.source_name = source.name
            self._receive(source)
        except Exception as e:
            self._fail(f"NDI input {self.name!r} failed: {first_line(e)}")
        finally:
            finder.close()

    def _receive(self, source) -> None:
        from cyndilib.receiver import ReceiveFrameType, Receiver
        from cyndilib.video_frame import VideoRecvFrame
        from cyndilib.wrapper.ndi_recv import RecvBandwidth, RecvColorFormat

        receiver = Receiver(color_format=RecvColorFormat.RGBX_RGBA, bandwidth=RecvBandwidth.highest)
        frame = VideoRecvFrame()
        receiver.set_video_frame(frame)
        receiver.set_source(source)
        try:
            while not self._stop.is_set():
                # cyndilib's receive keeps the GIL while it waits: a long timeout starved every other thread (a model
                # load in the window took minutes). Ask with a 1 ms wait, and wait here, where the GIL is free.
                if not receiver.receive(ReceiveFrameType.recv_video, 1) & ReceiveFrameType.recv_video:
                    self._stop.wait(POLL)
                    continue
                w, h = frame.get_resolution()
                data = np.empty(frame.get_data_size(), np.uint8)
                frame.fill_p_data(data)
                rgba = data.reshape(h, w, -1)
                self._publish(np.ascontiguousarray(rgba[:, :, :3]))
                self._set_state("running")
        finally:
            receiver.disconnect()
