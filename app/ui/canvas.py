"""The sketch canvas: black strokes on white, brush and eraser, undo and redo, a tracing layer.

The drawing is a square QImage (RGB888) at a fixed resolution; the widget shows it scaled to fit.
Every change emits `changed`, and frame() returns the drawing as a numpy copy for the worker.
Painting stays cheap (a line segment per mouse move, a scaled blit per repaint) so the canvas keeps
up with the pen while the engine is busy on another thread.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QTabletEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.ui.qimage import from_rgb, to_rgb

UNDO_LIMIT = 60  # drawings kept for undo (512 x 512 x 3 bytes each)


class SketchCanvas(QWidget):
    """A square drawing surface; the view letterboxes it inside the widget."""

    changed = Signal()  # the drawing changed (a stroke segment, clear, undo, redo, load)
    painted = Signal(float)  # emitted after each repaint with its time.perf_counter(), for the ui benchmark

    def __init__(self, resolution: int = 512, parent: QWidget | None = None):
        super().__init__(parent)
        self.resolution = resolution
        self.image = QImage(resolution, resolution, QImage.Format.Format_RGB888)
        self.image.fill(Qt.GlobalColor.white)
        self.trace: QImage | None = None  # a faint picture under the drawing, not part of it
        self.trace_opacity = 0.35
        self.brush = 6.0  # brush width in drawing pixels
        self.eraser = False
        self.undo_stack: list[QImage] = []
        self.redo_stack: list[QImage] = []
        self.last_change = time.perf_counter()  # when the drawing last changed (end-to-end latency starts here)
        self._last: QPointF | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 160)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # a click takes focus from the prompt: Ctrl+Z undoes strokes
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setToolTip("Draw with the left button; B brush, E eraser, [ and ] brush size")

    # ---- geometry -----------------------------------------------------------------------------------

    def target_rect(self) -> QRectF:
        side = min(self.width(), self.height())
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def to_image(self, pos: QPointF) -> QPointF:
        r = self.target_rect()
        k = self.resolution / max(r.width(), 1.0)
        return QPointF((pos.x() - r.x()) * k, (pos.y() - r.y()) * k)

    # ---- editing ------------------------------------------------------------------------------------

    def _push_undo(self) -> None:
        self.undo_stack.append(self.image.copy())
        del self.undo_stack[:-UNDO_LIMIT]
        self.redo_stack.clear()

    def _touch(self) -> None:
        self.last_change = time.perf_counter()
        self.update()
        self.changed.emit()

    def stroke_to(self, p: QPointF, start: bool = False, pressure: float = 1.0) -> None:
        """Draw from the last point to p (in drawing pixels); start=True begins a new stroke (one undo step)."""
        if start:
            self._push_undo()
            self._last = p
        if self._last is None:
            return
        painter = QPainter(self.image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = QColor(Qt.GlobalColor.white if self.eraser else Qt.GlobalColor.black)
        width = self.brush * (3.0 if self.eraser else 1.0) * max(0.2, pressure)
        painter.setPen(QPen(color, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        if start:
            painter.drawPoint(p)
        else:
            painter.drawLine(self._last, p)
        painter.end()
        self._last = p
        self._touch()

    def end_stroke(self) -> None:
        self._last = None

    def clear(self) -> None:
        self._push_undo()
        self.image.fill(Qt.GlobalColor.white)
        self._touch()

    def undo(self) -> bool:
        return self._step_back(self.undo_stack, self.redo_stack)

    def redo(self) -> bool:
        return self._step_back(self.redo_stack, self.undo_stack)

    def _step_back(self, take: list[QImage], keep: list[QImage]) -> bool:
        """The drawing on top of `take` comes back; the current one goes onto `keep` (undo and redo mirrored)."""
        if not take:
            return False
        keep.append(self.image)
        self.image = take.pop()
        self._touch()
        return True

    def set_drawing(self, rgb: np.ndarray) -> None:
        """Use a picture as the drawing itself (cropped square, scaled to the canvas); undoable."""
        from models.conditions import fit_square

        self._push_undo()
        self.image = from_rgb(fit_square(rgb, self.resolution))
        self._touch()

    def set_trace(self, rgb: np.ndarray | None) -> None:
        """Show a picture faintly under the drawing to trace over (None removes it)."""
        from models.conditions import fit_square

        self.trace = from_rgb(fit_square(rgb, self.resolution)) if rgb is not None else None
        self.update()

    def frame(self) -> np.ndarray:
        """The drawing as a uint8 RGB numpy array (a copy, safe to hand to another thread)."""
        return to_rgb(self.image)

    def set_brush(self, width: float) -> None:
        self.brush = float(min(max(width, 1.0), 80.0))

    # ---- events -------------------------------------------------------------------------------------

    def mousePressEvent(self, e: QMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self.stroke_to(self.to_image(e.position()), start=True)

    def mouseMoveEvent(self, e: QMouseEvent) -> None:
        if e.buttons() & Qt.MouseButton.LeftButton:
            self.stroke_to(self.to_image(e.position()))

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self.end_stroke()

    def tabletEvent(self, e: QTabletEvent) -> None:
        p = self.to_image(e.position())
        kind = e.type()
        if kind == QTabletEvent.Type.TabletPress:
            self.stroke_to(p, start=True, pressure=e.pressure())
        elif kind == QTabletEvent.Type.TabletMove and self._last is not None:
            self.stroke_to(p, pressure=e.pressure())
        elif kind == QTabletEvent.Type.TabletRelease:
            self.end_stroke()
        e.accept()

    def paintEvent(self, e: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(48, 48, 52))
        r = self.target_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(r, self.image)
        if self.trace is not None:
            painter.setOpacity(self.trace_opacity)
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Multiply)
            painter.drawImage(r, self.trace)
        painter.end()
        self.painted.emit(time.perf_counter())


class CanvasPage(QWidget):
    """The canvas with its tool row: brush, eraser, size, undo, redo, clear, trace, load, save.

    It edits the canvas itself; what needs files or the window (trace, load, save) it asks for by signal."""

    traceRequested = Signal()  # show an image faintly under the sketch
    useRequested = Signal()  # load an image as the sketch itself
    saveRequested = Signal()  # save the sketch as PNG

    def __init__(self, canvas: SketchCanvas, parent: QWidget | None = None):
        from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QToolButton, QVBoxLayout

        super().__init__(parent)
        self.canvas = c = canvas
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()

        def button(text: str, tip: str, slot, checkable: bool = False) -> QToolButton:
            b = QToolButton(text=text)
            b.setToolTip(tip)
            b.setCheckable(checkable)
            b.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # as the canvas: Ctrl+Z then reaches the drawing
            (b.toggled if checkable else b.clicked).connect(slot)
            row.addWidget(b)
            return b

        self.brush_button = button("Brush", "Draw black strokes (B)", lambda on: self.set_eraser(not on), True)
        self.eraser_button = button("Eraser", "Erase to white (E)", self.set_eraser, True)
        self.brush_button.setChecked(True)
        self.brush_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setRange(1, 60)
        self.brush_slider.setValue(int(c.brush))
        self.brush_slider.setMinimumWidth(50)
        self.brush_slider.setMaximumWidth(110)
        self.brush_slider.setToolTip("Brush size ([ and ])")
        self.brush_slider.valueChanged.connect(c.set_brush)
        row.addWidget(QLabel("Size"))
        row.addWidget(self.brush_slider)
        button("\u21b6", "Undo (Ctrl+Z)", c.undo)
        button("\u21b7", "Redo (Ctrl+Shift+Z)", c.redo)
        button("Clear", "Clear the sketch (Ctrl+Backspace)", c.clear)
        button("Trace", "Show an image faintly under the sketch to trace over it (Ctrl+O)", self.traceRequested)
        button("Load", "Use an image as the sketch itself", self.useRequested)
        button("Save", "Save the sketch as PNG (Ctrl+Shift+S)", self.saveRequested)
        row.addStretch(1)
        col.addLayout(row)
        col.addWidget(c, 1)

    def set_eraser(self, on: bool) -> None:
        self.canvas.eraser = on
        self.eraser_button.setChecked(on)
        self.brush_button.setChecked(not on)

    def grow_brush(self, step: int) -> None:
        self.brush_slider.setValue(self.brush_slider.value() + step)
