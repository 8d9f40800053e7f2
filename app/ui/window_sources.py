"""The main window's sources: the sketch canvas or a capture (camera, video, image, screen, NDI) feeding the
pipeline, newest frame first. A mixin of app.ui.window.MainWindow, which owns the widgets and the state used
here (canvas, feed, stack, panel, pipeline, capture, source_spec, paused, live, _poll)."""

from __future__ import annotations

from PySide6.QtCore import Slot

from app.live.loop import Frame
from app.ui.qimage import from_rgb
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
        self.own_windows.update()  # a screen capture learns where our windows are
        self._seen = 0
        self.feed.placeholder = f"Opening {parsed}..."
        self._poll.start()

    @Slot()
    def retry_source(self) -> None:
        self._source_requested(self.source_spec)

    def stop_capture(self, wait: float = 1.5) -> None:
        self._poll.stop() if hasattr(self, "_poll") else None
        if self.capture is not None:
            self.capture.stop(wait)
            self.capture = None

    @Slot()
    def _poll_capture(self) -> None:
        cap = self.capture
        if cap is None:
            return
        if cap.state == "failed":
            self._poll.stop()
            self.feed.set_failed(cap.error)
            self.statusBar().showMessage(cap.error, 15000)
            return
        frame = cap.latest()
        if frame is None or frame.seq == self._seen:
            return
        self._seen = frame.seq
        self.feed.set_image(from_rgb(self.live.condition.orient(frame.image)))
        if not self.paused:
            self.pipeline.offer(frame)

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
            frame = self.capture.latest()
            if frame is not None:  # with its capture time: rendering it again is no input change (latency "--")
                self.pipeline.offer(frame)
