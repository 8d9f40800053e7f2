"""Open any parsed --source (app.live.source_spec): the one place that knows every source kind's capture."""

from __future__ import annotations

from app.live.screen import ScreenCapture
from app.live.source_spec import SourceSpec
from app.live.sources import Capture, StillImage


def open_capture(spec: SourceSpec):
    """The capture for a parsed source, started: ScreenCapture, StillImage, NdiCapture or Capture (a camera or a
    video).
    The sketch canvas is not a capture: the window draws it."""
    if spec.kind == "screen":
        return ScreenCapture(spec).start()
    if spec.kind == "image":
        return StillImage(spec)
    if spec.kind == "ndi":  # an NDI sender on the network (app.live.ndi_in; cyndilib is optional)
        from app.live.ndi_in import NdiCapture

        return NdiCapture(spec).start()
    return Capture(spec).start()
