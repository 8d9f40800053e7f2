"""Where output frames go besides the window and an MP4: the MJPEG server and the virtual camera.

Every sink has send(rgb) (cheap, never waits for a reader) and close(). `stream` opens them from its options;
the window's Output menu opens the same objects (MjpegServer, VirtualCamera) and sends each output frame.
"""

from __future__ import annotations

import argparse
import logging
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


class Sink(Protocol):
    def send(self, rgb: np.ndarray) -> None: ...
    def close(self) -> None: ...


def open_sinks(args: argparse.Namespace, size: int, fps: float) -> list[Sink]:
    """The sinks that --serve ADDR [--serve-token T] and --virtual-camera ask for, opened (UserError if one cannot be)."""
    from app.live.serve import MjpegServer
    from app.live.virtualcam import VirtualCamera

    sinks: list[Sink] = []
    try:
        if getattr(args, "serve", None):
            server = MjpegServer(args.serve, token=getattr(args, "serve_token", None)).start()
            sinks.append(server)
            log.info("serving %s (also %s)", server.url(), server.url("/frame.jpg"))
        if getattr(args, "virtual_camera", False):
            cam = VirtualCamera(size, size, fps)
            sinks.append(cam)  # it logs its device itself
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks
