"""The output as a virtual camera (pyvirtualcam), for video calls and OBS: v4l2loopback on Linux, the OBS
Virtual Camera on Windows and macOS (Unity Capture too on Windows).

Where no backend exists, opening raises one UserError line that says what to install on this platform.
send(rgb) only hands the picture over: the camera is an app.live.sinkthread.SinkThread whose own thread resizes
(frames of another size than the camera's) and sends the newest picture (newest wins); the engine's own pace
sets the rate (no sleeping here).
"""

from __future__ import annotations

import logging
import sys

import cv2
import numpy as np

from app.live.sinkthread import SinkThread
from models.errors import UserError, first_line

log = logging.getLogger(__name__)


def install_hint(platform: str | None = None) -> str:
    """What to install for a virtual camera on this platform, in one sentence."""
    platform = platform or sys.platform
    if platform.startswith("linux"):
        return ("install v4l2loopback and load it: sudo apt install v4l2loopback-dkms && "
                "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=\"SDXS Live\"")
    if platform == "darwin":
        return "install OBS Studio 30 or newer and start its Virtual Camera once (Tools > Start Virtual Camera)"
    return "install OBS Studio 26 or newer (its Virtual Camera) or Unity Capture"


class VirtualCamera(SinkThread):
    """A pyvirtualcam camera of width x height; send(frame) and close() like the other sinks."""

    label = "the virtual camera"  # its name in a sink's one-line failure (app.live.sinks)

    def __init__(self, width: int, height: int, fps: float = 30.0, device: str | None = None, backend: str | None = None):
        try:
            import pyvirtualcam
        except ImportError:
            raise UserError("--virtual-camera needs the pyvirtualcam package: pip install pyvirtualcam==0.15.0") from None
        super().__init__("virtual-camera", slots=1)
        self.width, self.height = int(width), int(height)
        self.frames = 0  # frames the camera was sent
        try:
            self._cam = pyvirtualcam.Camera(self.width, self.height, float(fps), device=device, backend=backend)
        except Exception as e:  # pyvirtualcam raises RuntimeError with several lines per backend it tried
            log.debug("pyvirtualcam: %s", e)
            raise UserError(f"no virtual camera is available ({first_line(e).rstrip('.')}): {install_hint()}") from None
        self.device = self._cam.device  # e.g. /dev/video10, "OBS Virtual Camera"
        log.info("virtual camera %s, %dx%d", self.device, self.width, self.height)

    def work(self, rgb: np.ndarray, at: float) -> None:
        frame = np.ascontiguousarray(rgb[:, :, :3])
        if frame.shape[:2] != (self.height, self.width):
            frame = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_AREA)
        self._cam.send(frame)
        self.frames += 1

    def finish(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None
