"""File > Load image to trace..., Open drawing or image as sketch..., Save sketch... and dropped files: the
sketch canvas's files. An OpenRaster drawing (.ora) keeps both layers; an image is traced or becomes the lines.
It tells the window by signals (a status line, an error, the source to switch to)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from app.live.session import Session
from app.ui.canvas.canvas import SketchCanvas
from models.errors import UserError

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.webp)"
DRAWING_FILTER = "Drawings and images (*.ora *.png *.jpg *.jpeg *.bmp *.webp)"  # .ora: both layers (models.openraster)
SAVE_FILTERS = {".ora": "OpenRaster, lines and colour (*.ora)", ".png": "PNG, the lines only (*.png)"}


class SketchFiles(QObject):
    """Opens files onto one canvas and saves its drawing."""

    said = Signal(str, int)  # a status line and how long it stays (ms)
    error = Signal(str)  # a one-line error
    sourceRequested = Signal(str)  # switch to this source spec (sketch before a drawing opens; a dropped video)

    def __init__(self, canvas: SketchCanvas, session: Session, host: QWidget):
        super().__init__(host)
        self.canvas, self.session, self.host = canvas, session, host  # host: the dialogs' parent

    def load_image(self, trace: bool) -> None:
        from models.imageio import read_rgb

        path, _ = QFileDialog.getOpenFileName(self.host, "Trace an image" if trace else "Open a drawing or an image as the sketch",
                                              "", IMAGE_FILTER if trace else DRAWING_FILTER)
        if not path:
            return
        try:
            if not trace and Path(path).suffix.lower() == ".ora":
                self.open_drawing(path)
                return
            img = read_rgb(path)
        except UserError as e:
            self.error.emit(str(e))
            return
        self.sourceRequested.emit("sketch")
        if trace:
            self.canvas.set_trace(img)
        else:
            self.canvas.set_drawing(img)

    def open_drawing(self, path: str) -> None:
        """An OpenRaster drawing onto the canvas: both layers, or a file made elsewhere as the line layer."""
        from models.openraster import read_drawing

        drawing = read_drawing(path)
        self.sourceRequested.emit("sketch")
        if drawing.colour is None:
            self.canvas.set_drawing(drawing.lines)
        else:
            self.canvas.set_layers(drawing.lines, drawing.colour)
        self.said.emit(f"Opened {Path(path).name}", 8000)

    def open_path(self, path: str) -> None:
        """A dropped file: a video becomes the source; an image is traced on the canvas, or becomes the source
        when a camera, video or image is the source."""
        from app.live.source_spec import VIDEO_EXTS
        from models.imageio import read_rgb

        try:
            if Path(path).suffix.lower() in VIDEO_EXTS:
                self.sourceRequested.emit(f"video:{path}")
            elif Path(path).suffix.lower() == ".ora":
                self.open_drawing(path)
            elif self.session.source == "sketch":
                self.canvas.set_trace(read_rgb(path))
                self.said.emit(f"Tracing {Path(path).name} (Edit > Remove tracing image hides it)", 8000)
            else:
                self.sourceRequested.emit(f"image:{path}")
        except UserError as e:
            self.error.emit(str(e))

    def save_sketch(self) -> None:
        """Save the drawing: as OpenRaster (.ora) both layers, which Load opens again (and Krita, GIMP, MyPaint);
        as PNG the line layer only. The colour layer, once painted, makes .ora the first choice."""
        suffix = ".ora" if (self.canvas.colour_frame() != 255).any() else ".png"
        order = [SAVE_FILTERS[suffix], *(f for f in SAVE_FILTERS.values() if f != SAVE_FILTERS[suffix])]
        path, chosen = QFileDialog.getSaveFileName(self.host, "Save the sketch", f"sketch{suffix}", ";;".join(order))
        if path:
            if not Path(path).suffix:  # the name without an ending: the chosen type's
                path += next((k for k, f in SAVE_FILTERS.items() if f == chosen), suffix)
            self.save_drawing(path)

    def save_drawing(self, path: str) -> None:
        from models.imageio import write_rgb
        from models.openraster import write_drawing

        c = self.canvas
        try:
            if Path(path).suffix.lower() == ".ora":
                done = write_drawing(path, c.frame(), c.colour_layer())
                self.said.emit(f"Saved the drawing (lines and colour) to {done}", 8000)
                return
            done = write_rgb(path, c.frame())
            painted = (c.colour_frame() != 255).any()
            self.said.emit(f"Saved the lines to {done}" + (" (a PNG holds no colour layer: save as .ora to "
                                                                          "keep it)" if painted else ""), 10000)
        except UserError as e:
            self.error.emit(str(e))
