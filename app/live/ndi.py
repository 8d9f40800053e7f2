"""The output as an NDI source (cyndilib, whose wheel ships the NDI runtime), for OBS's NDI plugin,
TouchDesigner's NDI In TOP, Resolume, vMix and other machines on the network.

send(rgb) only stores the newest frame (the engine never waits): the sender is an app.live.sinkthread.SinkThread
whose own thread hands the newest picture to NDI (newest wins: a picture NDI had no time for is skipped), and
sends the last one again every `resend` seconds while nothing changes, so a receiver that connects to a
still picture gets it at once. A frame of another size reopens the sender at that size (same name).

NDI listens on every network interface, whatever MJPEG and OSC do (they stay on 127.0.0.1 unless told
otherwise): one source opened TCP 0.0.0.0:5960 and 0.0.0.0:5961 (measured with `ss -tlnp`, cyndilib 0.1.3's
runtime). Its config file's "adapters": {"allowed": "127.0.0.1"} was tried: the runtime reads the file (its
"machinename" from the same file took effect) but still listens on 0.0.0.0, so there is no way here to keep NDI
to this machine; REACH says so wherever NDI is offered. Use the MJPEG server for a local-only output, or a
firewall rule for ports 5960 and up.

NDI finds sources by mDNS. Where multicast does not reach (containers, some Wi-Fi), NDI's own config file
lists the machines to ask: ~/.ndi/ndi-config.v1.json (or $NDI_CONFIG_DIR/ndi-config.v1.json) with
{"ndi": {"networks": {"ips": "127.0.0.1,192.168.1.20"}}}.
"""

from __future__ import annotations

import logging
from fractions import Fraction

import numpy as np

from app.live.sinkthread import SinkThread
from models.errors import UserError, first_line

log = logging.getLogger(__name__)
REACH = ("NDI listens on every network interface (TCP 5960 and up): other computers on the network can watch it; "
         "NDI has no setting that keeps it to this machine (MJPEG on 127.0.0.1 does)")
INSTALL = "pip install cyndilib==0.1.3 (its wheel ships the NDI runtime; for Linux x86-64 and ARM64, Windows x64 and macOS on Apple silicon)"


def check_name(name: str, flag: str = "--ndi") -> str:
    """An NDI source name: printable, without the parentheses NDI puts around it ("HOST (NAME)")."""
    text = (name or "").strip()
    if not text or len(text) > 100 or any(c in text for c in "()\\") or not text.isprintable():
        example = f'{flag} "SDXS Live"' if flag.startswith("--") else f'"{flag}SDXS Live"'
        raise UserError(f"{flag} {name!r}: use a short name without parentheses, like {example}")
    return text


def _cyndilib():
    try:
        import cyndilib  # noqa: F401  (loads the NDI runtime)
        from cyndilib.sender import Sender
        from cyndilib.video_frame import VideoSendFrame
        from cyndilib.wrapper.ndi_structs import FourCC
    except ImportError:
        raise UserError(f"NDI output needs the cyndilib package: {INSTALL}") from None
    except OSError as e:  # the runtime library did not load
        raise UserError(f"the NDI runtime did not load ({first_line(e)}): reinstall cyndilib: {INSTALL}") from None
    return Sender, VideoSendFrame, FourCC


class NdiSender(SinkThread):
    """An NDI video source called `name`; send(frame) and close() like the other sinks (app.live.sinks)."""

    def __init__(self, name: str = "SDXS Live", fps: float = 30.0, resend: float = 1.0):
        self.name = check_name(name)
        self._classes = _cyndilib()
        super().__init__("ndi-sender", slots=1, idle_every=float(resend))
        self.label = f"NDI {self.name!r}"
        self.fps = float(min(max(fps, 1.0), 120.0))  # the frame rate NDI announces (frames go out as made)
        self.resend = float(resend)  # seconds between repeats of a still picture
        self.frames_sent = 0  # frames handed to NDI, repeats included
        self._given: np.ndarray | None = None  # the newest picture sent to this sink
        self._last: np.ndarray | None = None  # the last picture handed to NDI (the thread's)
        self._sender = None
        self._size: tuple[int, int] | None = None

    @property
    def source_name(self) -> str | None:
        """The full name receivers list ("HOST (NAME)"), once the first frame opened the sender."""
        sender = self._sender
        return sender.name if sender is not None else None

    def send(self, rgb: np.ndarray) -> None:
        """Offer the newest frame (uint8 RGB); raises the sending thread's error once it has failed."""
        if rgb is self._given:  # the live loop reused its last output: the still picture is re-sent anyway
            return
        self._given = rgb
        super().send(rgb)

    # ---- the sending thread ---------------------------------------------------------------------------

    def work(self, rgb: np.ndarray, at: float) -> None:
        self._write(rgb)
        self._last = rgb

    def idle(self) -> None:
        if self._last is not None:
            self._write(self._last)

    def finish(self) -> None:
        self._close_sender()

    def _write(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        if self._size != (w, h):
            self._open(w, h)
        rgba = np.empty((h, w, 4), np.uint8)
        rgba[:, :, :3] = rgb[:, :, :3]
        rgba[:, :, 3] = 255
        if not self._sender.write_video(rgba.ravel()):
            raise RuntimeError("NDI refused the frame")
        self.frames_sent += 1

    def _open(self, width: int, height: int) -> None:
        Sender, VideoSendFrame, FourCC = self._classes
        self._close_sender()
        vf = VideoSendFrame()
        vf.set_resolution(width, height)
        vf.set_frame_rate(Fraction(round(self.fps * 1000), 1000))
        vf.set_fourcc(FourCC.RGBA)
        sender = Sender(self.name, clock_video=False)  # frames go out as the engine makes them
        sender.set_video_frame(vf)
        sender.open()
        self._sender, self._size = sender, (width, height)
        log.info("NDI source %r, %dx%d (%s)", self.name, width, height, REACH)

    def _close_sender(self) -> None:
        sender, self._sender, self._size = self._sender, None, None
        if sender is not None:
            sender.close()
