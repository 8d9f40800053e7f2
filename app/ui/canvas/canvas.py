"""The sketch canvas: a line layer (black strokes on white) and a colour layer over it, brush and eraser,
undo and redo per layer, a tracing picture.

Each layer is a square QImage at a fixed resolution; the widget shows them composited and scaled to fit.
The line layer is the sketch a sketch adapter sees (frame()); the colour layer is transparent where nothing
is painted and goes to a colour-hint adapter as RGB on white (layers()["colour"]). The eraser, undo, redo
and clear act on the active layer (the one the current tool draws on); clear_all() clears both.
Every change emits `changed`. Painting stays cheap (a line segment per mouse move, two scaled blits per
repaint) so the canvas keeps up with the pen while the engine is busy on another thread.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QTabletEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.ui.outputs.qimage import from_rgb, from_rgba, to_rgb, to_rgba

UNDO_LIMIT = 60  # drawings kept for undo per layer (512 x 512 x 4 bytes each at most)
LINES, COLOUR = "lines", "colour"  # the layers, bottom to top
COLOUR_OPACITY = 0.8  # how the colour layer shows over the lines (multiplied: black lines stay black)


def _blank(layer: str, resolution: int) -> QImage:
    if layer == LINES:
        img = QImage(resolution, resolution, QImage.Format.Format_RGB888)
        img.fill(Qt.GlobalColor.white)
    else:
        img = QImage(resolution, resolution, QImage.Format.Format_ARGB32_Premultiplied)
        img.fill(Qt.GlobalColor.transparent)
    return img


class SketchCanvas(QWidget):
    """A square drawing surface of two layers; the view letterboxes it inside the widget."""

    changed = Signal()  # the drawing changed (a stroke segment, clear, undo, redo, load)
    painted = Signal(float)  # emitted after each repaint with its time.perf_counter(), for the ui benchmark
    layerChanged = Signal(str)  # the active layer is now this one (lines or colour)
    colourPicked = Signal(QColor)  # Ctrl+click: the colour under the pointer (the colour layer's, else the trace's)

    def __init__(self, resolution: int = 512, parent: QWidget | None = None):
        super().__init__(parent)
        self.resolution = resolution
        self.images = {name: _blank(name, resolution) for name in (LINES, COLOUR)}  # the layers
        self.active = LINES  # the layer the tools act on
        self.colour = QColor(220, 40, 40)  # the colour brush's colour
        self.trace: QImage | None = None  # a faint picture under the drawing, not part of it
        self.trace_opacity = 0.35
        self.brushes = {LINES: 6.0, COLOUR: 24.0}  # brush width in drawing pixels, per layer
        self.eraser = False
        self.undo_stacks: dict[str, list[QImage]] = {LINES: [], COLOUR: []}
        self.redo_stacks: dict[str, list[QImage]] = {LINES: [], COLOUR: []}
        self.last_change = time.perf_counter()  # when the drawing last changed (end-to-end latency starts here)
        self._last: QPointF | None = None
        self._colour_rgb: np.ndarray | None = None  # colour_frame() until the colour layer changes (read-only)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 160)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # a click takes focus from the prompt: Ctrl+Z undoes strokes
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setToolTip("Draw with the left button; B lines, C colour, E eraser, [ and ] brush size; "
                        "Ctrl+click takes the colour under the pointer")

    # ---- state --------------------------------------------------------------------------------------

    @property
    def image(self) -> QImage:
        """The line layer (the sketch)."""
        return self.images[LINES]

    @property
    def brush(self) -> float:
        """The line brush's width (remembered between runs)."""
        return self.brushes[LINES]

    def set_layer(self, layer: str) -> None:
        """Draw on this layer from now on (lines or colour)."""
        if layer not in self.images:
            raise ValueError(f"no layer {layer!r}")
        self._last = None
        if layer != self.active:
            self.active = layer
            self.layerChanged.emit(layer)

    def set_colour(self, colour: QColor) -> None:
        self.colour = QColor(colour)

    def set_brush(self, width: float, layer: str | None = None) -> None:
        """The brush width of a layer (the line layer's when none is named)."""
        self.brushes[layer or LINES] = float(min(max(width, 1.0), 80.0))

    # ---- geometry -----------------------------------------------------------------------------------

    def target_rect(self) -> QRectF:
        side = min(self.width(), self.height())
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def to_image(self, pos: QPointF) -> QPointF:
        r = self.target_rect()
        k = self.resolution / max(r.width(), 1.0)
        return QPointF((pos.x() - r.x()) * k, (pos.y() - r.y()) * k)

    # ---- editing ------------------------------------------------------------------------------------

    def _push_undo(self, layer: str | None = None) -> None:
        layer = layer or self.active
        stack = self.undo_stacks[layer]
        stack.append(self.images[layer].copy())
        del stack[:-UNDO_LIMIT]
        self.redo_stacks[layer].clear()

    def _touch(self) -> None:
        if self.active == COLOUR:
            self._colour_rgb = None
        self.last_change = time.perf_counter()
        self.update()
        self.changed.emit()

    def stroke_to(self, p: QPointF, start: bool = False, pressure: float = 1.0) -> None:
        """Draw from the last point to p (in drawing pixels) on the active layer; start=True begins a new
        stroke (one undo step)."""
        if start:
            self._push_undo()
            self._last = p
        if self._last is None:
            return
        layer = self.active
        painter = QPainter(self.images[layer])
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        width = self.brushes[layer] * (3.0 if self.eraser and layer == LINES else 1.0) * max(0.2, pressure)
        if layer == LINES:
            color = QColor(Qt.GlobalColor.white if self.eraser else Qt.GlobalColor.black)
        elif self.eraser:  # the colour layer erases to transparent: the lines show again
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
            color = QColor(Qt.GlobalColor.black)
        else:
            color = self.colour
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
        """Clear the active layer (undoable)."""
        self._push_undo()
        self.images[self.active] = _blank(self.active, self.resolution)
        self._touch()

    def clear_all(self) -> None:
        """Clear both layers (one undo step on each)."""
        for layer in self.images:
            self._push_undo(layer)
            self.images[layer] = _blank(layer, self.resolution)
        self._colour_rgb = None
        self._touch()

    def undo(self) -> bool:
        return self._step_back(self.undo_stacks[self.active], self.redo_stacks[self.active])

    def redo(self) -> bool:
        return self._step_back(self.redo_stacks[self.active], self.undo_stacks[self.active])

    def _step_back(self, take: list[QImage], keep: list[QImage]) -> bool:
        """The active layer on top of `take` comes back; the current one goes onto `keep` (undo and redo mirrored)."""
        if not take:
            return False
        keep.append(self.images[self.active])
        self.images[self.active] = take.pop()
        self._touch()
        return True

    def set_drawing(self, rgb: np.ndarray) -> None:
        """Use a picture as the line layer itself (cropped square, scaled to the canvas); undoable."""
        from models.conditions import fit_square

        self._push_undo(LINES)
        self.images[LINES] = from_rgb(fit_square(rgb, self.resolution))
        self._touch()

    def set_layers(self, lines: np.ndarray, colour: np.ndarray) -> None:
        """Both layers from a saved drawing (uint8 RGB lines, uint8 RGBA colour of one size), cropped square and
        scaled to the canvas as set_drawing does; one undo step on each layer."""
        from models.conditions import fit_square

        h, w = colour.shape[:2]
        s = min(h, w)
        layer = from_rgba(colour).copy((w - s) // 2, (h - s) // 2, s, s)
        if s != self.resolution:
            layer = layer.scaled(self.resolution, self.resolution, Qt.AspectRatioMode.IgnoreAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
        for name in self.images:
            self._push_undo(name)
        self.images[LINES] = from_rgb(fit_square(lines, self.resolution))
        self.images[COLOUR] = layer.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
        self._colour_rgb = None
        self._touch()

    def colour_layer(self) -> np.ndarray:
        """The colour layer as uint8 RGBA, straight alpha (transparent where nothing is painted): what is saved."""
        return to_rgba(self.images[COLOUR])

    def set_trace(self, rgb: np.ndarray | None) -> None:
        """Show a picture faintly under the drawing to trace over (None removes it)."""
        from models.conditions import fit_square

        self.trace = from_rgb(fit_square(rgb, self.resolution)) if rgb is not None else None
        self.update()

    def frame(self) -> np.ndarray:
        """The line layer as a uint8 RGB numpy array (a copy, safe to hand to another thread)."""
        return to_rgb(self.images[LINES])

    def colour_frame(self) -> np.ndarray:
        """The colour layer as uint8 RGB on white (white: no hint): read-only, made again only after the colour
        layer changed (a line stroke costs no composite), safe to hand to another thread."""
        if self._colour_rgb is None:
            out = QImage(self.resolution, self.resolution, QImage.Format.Format_RGB888)
            out.fill(Qt.GlobalColor.white)
            painter = QPainter(out)
            painter.drawImage(0, 0, self.images[COLOUR])
            painter.end()
            self._colour_rgb = to_rgb(out)
            self._colour_rgb.setflags(write=False)
        return self._colour_rgb

    def colour_at(self, p: QPointF) -> QColor | None:
        """The colour painted at p (drawing pixels), else the trace picture's there; None over bare paper."""
        x, y = int(p.x()), int(p.y())
        if not (0 <= x < self.resolution and 0 <= y < self.resolution):
            return None
        painted = self.images[COLOUR].pixelColor(x, y)
        if painted.alpha() > 0:
            painted.setAlpha(255)
            return painted
        return self.trace.pixelColor(x, y) if self.trace is not None else None

    def layers(self) -> dict[str, np.ndarray]:
        """Frame.layers: the layers other than the lines, by name (colour: RGB on white)."""
        return {COLOUR: self.colour_frame()}

    # ---- events -------------------------------------------------------------------------------------

    def _press(self, p: QPointF, modifiers: Qt.KeyboardModifier, pressure: float = 1.0) -> None:
        """A stroke starts at p, or with Ctrl held the eyedropper takes the colour there (as in Krita)."""
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            colour = self.colour_at(p)
            if colour is not None:
                self.colourPicked.emit(colour)
            return
        self.stroke_to(p, start=True, pressure=pressure)

    def mousePressEvent(self, e: QMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self._press(self.to_image(e.position()), e.modifiers())

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
            self._press(p, e.modifiers(), e.pressure())
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
        painter.drawImage(r, self.images[LINES])
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Multiply)  # colour tints, lines stay black
        painter.setOpacity(COLOUR_OPACITY)
        painter.drawImage(r, self.images[COLOUR])
        if self.trace is not None:
            painter.setOpacity(self.trace_opacity)
            painter.drawImage(r, self.trace)
        painter.end()
        self.painted.emit(time.perf_counter())
