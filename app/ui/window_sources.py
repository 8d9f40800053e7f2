"""The main window's sources: the sketch canvas or a capture (camera, video, image, screen, NDI) feeding the
frame path, newest frame first. A capture wakes the frame path itself (no timer polls it here); the canvas
offers its drawing as a value. The GUI only shows what the path posts (_on_input). A mixin of
app.ui.window.MainWindow, which owns the widgets and the state used here (canvas, feed, stack, panel,
pipeline, capture, source_spec, paused, live)."""

from __future__ import annotations

from PySide6.QtCore import Slot

from app.live.loop import Frame
from app.ui.outputs.qimage import from_rgb
from models.errors import UserError


class SourcesMixin:
    """Switching, polling and offering the window's source."""

    @Slot(str)
    def _source_requested(self, spec: str) -> None:
        try:
            self.set_source(spec or self.source_spec)
        except UserError as e:
            self.show_error(str(e))
            self.panel.show_source(self.source_spec.split(":")[0])

    def set_source(self, spec: str) -> None:
        """Switch to sketch, camera:N, video:PATH, image:PATH or screen:N[@X,Y,W,H] (raises UserError for a bad spec)."""
        from app.live.capture import open_capture
        from app.live.source_spec import parse_source

        parsed = parse_source(spec)
        self.stop_capture()
        self.pipeline.new_source()  # the stabiliser starts afresh
        self.source_spec = str(parsed)
        self.panel.show_source(parsed.kind)
        self.panel.set_feed_controls(parsed.kind != "sketch")
        self.feed.set_failed("")
        self.feed.inset = None
        self.output.inset = None  # the canvas's colour hints (window._colour_inset) until a frame says again
        if parsed.kind == "sketch":
            self.stack.setCurrentWidget(self.canvas_page)
            self.offer_canvas()
            return
        self.stack.setCurrentWidget(self.feed)
        self.feed.set_image(None)
        if parsed.kind == "camera":
            self.panel.set_camera(parsed.index)
        self.capture = open_capture(parsed)
        self.own_windows.set_capture(self.capture)  # a screen capture learns where our windows are
        self.feed.placeholder = f"Opening {parsed}..."
        self.pipeline.set_capture(self.capture)  # the capture wakes the frame path with each new frame

    @Slot()
    def retry_source(self) -> None:
        self._source_requested(self.source_spec)

    def stop_capture(self, wait: float = 1.5) -> None:
        self.pipeline.set_capture(None)
        if self.capture is not None:
            self.capture.stop(wait)
            self.capture = None
            self.own_windows.set_capture(None)

    @Slot(object)
    def _on_input(self, posted) -> None:
        """The frame path's newest input (an app.live.framepath.Posted), at most once per screen update: the feed
        shows it, or the capture's failure."""
        cap = self.capture
        if cap is None or self.source_spec == "sketch":
            return
        if cap.state == "failed":
            if self.feed.message != cap.error:
                self.feed.set_failed(cap.error)
                self.statusBar().showMessage(cap.error, 15000)
            return
        frame, result = posted.frame, posted.result
        if frame is None or frame.drawn:
            return
        self.feed.set_image(from_rgb(result.source if result is not None else self.live.condition.orient(frame.image)))

    @Slot()
    def offer_canvas(self) -> None:
        if self.source_spec == "sketch" and not self.paused:
            self.pipeline.offer(self.canvas_frame())

    def canvas_frame(self) -> Frame:
        """The drawing for the worker: the line layer as the image (the sketch), the colour layer in layers."""
        c = self.canvas
        return Frame(c.frame(), c.last_change, True, layers=c.layers())

    def offer_current(self) -> None:
        """Render the current input again (after a settings change), whatever the source."""
        if self.source_spec == "sketch":
            self.offer_canvas()
        elif self.capture is not None and not self.paused:
            self.pipeline.refresh()  # the capture's newest frame again, with its capture time (latency "--")
