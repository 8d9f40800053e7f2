"""The canvas's tool rows: line brush, colour brush with its palette and picker, eraser, size, undo, redo,
clear, clear all, trace, load, save. They edit the canvas (app/ui/canvas/canvas.py); what needs files or the
window (trace, load, save) they ask for by signal."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QButtonGroup,
    QColorDialog,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.canvas.canvas import COLOUR, LINES, SketchCanvas

PALETTE = [  # the colour brush's swatches: (name, RGB)
    ("red", (220, 40, 40)), ("orange", (245, 140, 30)), ("yellow", (250, 215, 40)), ("light green", (130, 205, 70)),
    ("green", (30, 130, 60)), ("teal", (40, 175, 180)), ("sky blue", (120, 185, 240)), ("blue", (40, 70, 200)),
    ("purple", (130, 60, 180)), ("pink", (240, 135, 185)), ("brown", (125, 80, 40)), ("skin", (240, 200, 165)),
]
NO_COLOUR_ADAPTER = "load an adapter trained on colour-hints, e.g. the demo's, to paint colour"


def _swatch_style(rgb: tuple[int, int, int], chosen: bool) -> str:
    border = "2px solid #202020" if chosen else "1px solid #909090"
    return f"QToolButton {{ background: rgb{tuple(rgb)}; border: {border}; border-radius: 3px; }}"


class CanvasPage(QWidget):
    """The canvas under its two tool rows."""

    traceRequested = Signal()  # show an image faintly under the sketch
    useRequested = Signal()  # open a drawing (.ora) or an image as the sketch itself
    saveRequested = Signal()  # save the drawing (.ora) or the sketch (PNG)

    def __init__(self, canvas: SketchCanvas, parent: QWidget | None = None):
        super().__init__(parent)
        self.canvas = c = canvas
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(2)
        tools, colours = QHBoxLayout(), QHBoxLayout()

        def button(row: QHBoxLayout, text: str, tip: str, slot, checkable: bool = False) -> QToolButton:
            b = QToolButton(text=text)
            b.setToolTip(tip)
            b.setCheckable(checkable)
            b.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # as the canvas: Ctrl+Z then reaches the drawing
            (b.toggled if checkable else b.clicked).connect(slot)
            row.addWidget(b)
            return b

        self.brush_button = button(tools, "Lines", "Draw black lines on the line layer: the sketch (B)",
                                   lambda: self.set_tool(LINES))
        self.colour_button = button(tools, "Colour", "Paint colour on the colour layer (C)", lambda: self.set_tool(COLOUR))
        layers = QButtonGroup(self)  # clicked (not toggled): a click on the checked one ends erasing
        for b in (self.brush_button, self.colour_button):
            b.setCheckable(True)
        layers.addButton(self.brush_button)
        layers.addButton(self.colour_button)
        self.eraser_button = button(tools, "Eraser", "Erase on the layer being drawn (E)", self.set_eraser, True)
        self.brush_button.setChecked(True)
        self.brush_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setRange(1, 60)
        self.brush_slider.setValue(int(c.brush))
        self.brush_slider.setMinimumWidth(50)
        self.brush_slider.setMaximumWidth(110)
        self.brush_slider.setToolTip("Brush size of the layer being drawn ([ and ])")
        self.brush_slider.valueChanged.connect(lambda v: c.set_brush(v, c.active))
        tools.addWidget(QLabel("Size"))
        tools.addWidget(self.brush_slider)
        button(tools, "\u21b6", "Undo on the layer being drawn (Ctrl+Z)", c.undo)
        button(tools, "\u21b7", "Redo on the layer being drawn (Ctrl+Shift+Z)", c.redo)
        button(tools, "Clear", "Clear the layer being drawn (Ctrl+Backspace)", c.clear)
        button(tools, "Clear all", "Clear the lines and the colour (Ctrl+Shift+Backspace)", c.clear_all)
        tools.addStretch(1)

        self.swatches: list[QToolButton] = []
        for name, rgb in PALETTE:
            b = QToolButton()
            b.setFixedSize(18, 18)
            b.setToolTip(f"Paint {name}")
            b.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
            b.clicked.connect(lambda _=False, x=rgb: self.pick_colour(QColor(*x)))
            colours.addWidget(b)
            self.swatches.append(b)
        self.picker = button(colours, "\u2026", "Choose any colour (or Ctrl+click one on the canvas, the output or "
                             "the camera: the eyedropper)", self._ask_colour)
        self.colour_note = QLabel(f"Colour brush off: {NO_COLOUR_ADAPTER}")
        self.colour_note.setWordWrap(True)
        self.colour_note.setStyleSheet("color: gray; font-size: 8.5pt")
        self.colour_note.hide()
        colours.addStretch(1)
        button(colours, "Trace", "Show an image faintly under the sketch to trace over it (Ctrl+O)", self.traceRequested)
        button(colours, "Load", "Open a saved drawing (.ora: both layers) or an image as the line layer",
               self.useRequested)
        button(colours, "Save", "Save the drawing: .ora keeps lines and colour (Krita opens it as two layers), "
               "PNG the lines (Ctrl+Shift+S)", self.saveRequested)
        col.addLayout(tools)
        col.addLayout(colours)
        col.addWidget(self.colour_note)
        col.addWidget(c, 1)
        self.colour_available = True
        c.layerChanged.connect(self._layer_changed)
        c.colourPicked.connect(self.pick_colour)  # the eyedropper (Ctrl+click); the window adds the output and feed
        self._show_swatches()

    # ---- tools --------------------------------------------------------------------------------------

    def set_tool(self, layer: str) -> None:
        """Draw (not erase) on this layer: lines or colour (ignored for colour while the colour brush is off)."""
        if layer == COLOUR and not self.colour_available:
            layer = LINES
        self.canvas.set_layer(layer)
        self.set_eraser(False)
        self._layer_changed(layer)

    def set_eraser(self, on: bool) -> None:
        self.canvas.eraser = on
        self.eraser_button.setChecked(on)

    def pick_colour(self, colour: QColor) -> None:
        """Paint with this colour (the colour brush becomes the tool)."""
        if colour.isValid():
            self.canvas.set_colour(colour)
            self.set_tool(COLOUR)
            self._show_swatches()

    def _ask_colour(self) -> None:
        self.pick_colour(QColorDialog.getColor(self.canvas.colour, self, "Colour brush"))

    def grow_brush(self, step: int) -> None:
        self.brush_slider.setValue(self.brush_slider.value() + step)

    def sync_brush(self) -> None:
        """The size slider shows the active layer's brush."""
        self.brush_slider.blockSignals(True)
        self.brush_slider.setValue(round(self.canvas.brushes[self.canvas.active]))
        self.brush_slider.blockSignals(False)

    def _layer_changed(self, layer: str) -> None:
        (self.colour_button if layer == COLOUR else self.brush_button).setChecked(True)
        self.sync_brush()
        self._show_swatches()

    def _show_swatches(self) -> None:
        chosen = self.canvas.colour.getRgb()[:3]
        on_colour = self.canvas.active == COLOUR
        for (_, rgb), b in zip(PALETTE, self.swatches, strict=True):
            b.setStyleSheet(_swatch_style(rgb, on_colour and tuple(rgb) == tuple(chosen)))
        own = all(tuple(rgb) != tuple(chosen) for _, rgb in PALETTE)  # a colour of the picker's or the eyedropper's
        self.picker.setStyleSheet(_swatch_style(chosen, on_colour) if own else "")

    def set_colour_available(self, on: bool, reason: str = NO_COLOUR_ADAPTER) -> None:
        """The colour brush works only with a colour-hint adapter loaded; off, it says why."""
        self.colour_available = on
        for b in [self.colour_button, self.picker, *self.swatches]:
            b.setEnabled(on)
            b.setVisible(on or b is self.colour_button)
        self.colour_button.setToolTip("Paint colour on the colour layer (C)" if on else f"Colour brush off: {reason}")
        self.colour_note.setText(f"Colour brush off: {reason}")
        self.colour_note.setVisible(not on)
        if not on and self.canvas.active == COLOUR:
            self.set_tool(LINES)
