"""The canvas's two layers (pytest-qt, offscreen): lines and colour, each with its own eraser, undo, redo and
clear; Clear all; Load fills the lines; the palette and the colour brush that is off without a colour adapter."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor

from app.ui.canvas.canvas import COLOUR, LINES, SketchCanvas
from app.ui.canvas.canvas_tools import NO_COLOUR_ADAPTER, PALETTE, CanvasPage


def draw(canvas, points):
    canvas.stroke_to(QPointF(*points[0]), start=True)
    for p in points[1:]:
        canvas.stroke_to(QPointF(*p))
    canvas.end_stroke()


@pytest.fixture
def page(qtbot):
    c = SketchCanvas(128)
    p = CanvasPage(c)
    qtbot.addWidget(p)
    p.resize(600, 500)
    p.show()
    return p


def test_a_colour_stroke_changes_only_the_colour_layer(page):
    c = page.canvas
    draw(c, [(10, 64), (118, 64)])  # a black line first
    lines = c.frame()
    assert (lines < 64).all(axis=2).sum() > 100 and c.colour_frame().min() == 255
    page.pick_colour(QColor(*PALETTE[7][1]))  # blue: the colour brush is the tool now
    assert c.active == COLOUR and page.colour_button.isChecked() and not page.brush_button.isChecked()
    draw(c, [(64, 10), (64, 118)])
    assert np.array_equal(c.frame(), lines)  # the sketch the adapter sees is unchanged
    colour = c.layers()["colour"]
    painted = (colour != 255).any(axis=2)
    assert colour.shape == (128, 128, 3) and 300 < painted.sum() < 128 * 128 // 2
    blue = colour[64, 64].astype(int)
    assert abs(blue - np.array(PALETTE[7][1])).max() <= 2  # flat colour on white, where painted
    assert (colour[~painted] == 255).all()
    assert painted[64, 64] and not painted[5, 5]


def test_eraser_undo_redo_and_clear_act_on_the_layer_being_drawn(page):
    c = page.canvas
    draw(c, [(10, 30), (118, 30)])
    lines = c.frame()
    page.set_tool(COLOUR)
    draw(c, [(10, 90), (118, 90)])
    colour = c.colour_frame()
    page.set_eraser(True)  # erases colour, not lines
    draw(c, [(10, 90), (118, 90), (10, 30), (118, 30)])
    assert np.array_equal(c.frame(), lines)
    assert (c.colour_frame() != 255).any(axis=2).sum() < (colour != 255).any(axis=2).sum() // 4
    assert c.undo() and np.array_equal(c.colour_frame(), colour) and np.array_equal(c.frame(), lines)
    assert c.undo() and c.colour_frame().min() == 255  # the colour stroke undone; the lines stay
    assert np.array_equal(c.frame(), lines)
    assert not c.undo()  # the colour layer's history is empty: the line is not undone from here
    assert c.redo() and np.array_equal(c.colour_frame(), colour)
    c.clear()  # the colour layer only
    assert c.colour_frame().min() == 255 and np.array_equal(c.frame(), lines)
    assert c.undo() and np.array_equal(c.colour_frame(), colour)
    page.set_tool(LINES)
    assert not c.eraser and c.active == LINES
    c.clear()  # the lines only
    assert c.frame().min() == 255 and np.array_equal(c.colour_frame(), colour)
    assert c.undo() and np.array_equal(c.frame(), lines)
    page.set_eraser(True)  # erases lines to white, leaves the colour
    draw(c, [(10, 30), (118, 30)])
    assert c.frame().min() > 0 and np.array_equal(c.colour_frame(), colour)


def test_clear_all_clears_both_and_each_comes_back_with_its_undo(page):
    c = page.canvas
    draw(c, [(10, 30), (118, 30)])
    page.set_tool(COLOUR)
    draw(c, [(10, 90), (118, 90)])
    lines, colour = c.frame(), c.colour_frame()
    c.clear_all()
    assert c.frame().min() == 255 and c.colour_frame().min() == 255
    assert c.undo() and np.array_equal(c.colour_frame(), colour) and c.frame().min() == 255
    page.set_tool(LINES)
    assert c.undo() and np.array_equal(c.frame(), lines)


def test_load_fills_the_line_layer_and_trace_is_shown_not_sent(page):
    c = page.canvas
    page.set_tool(COLOUR)
    draw(c, [(10, 90), (118, 90)])
    colour = c.colour_frame()
    picture = np.zeros((50, 80, 3), np.uint8)
    picture[:, 40:] = 200
    c.set_drawing(picture)  # while the colour brush is the tool: the picture is still the sketch
    assert c.frame()[:, :20].max() == 0 and np.array_equal(c.colour_frame(), colour)
    c.set_trace(np.zeros((40, 40, 3), np.uint8))
    assert c.frame()[:, :20].max() == 0 and np.array_equal(c.colour_frame(), colour)
    page.set_tool(LINES)
    assert c.undo() and c.frame().min() == 255  # the load is a step of the line layer


def test_the_view_shows_colour_over_lines_and_the_lines_stay_black(page, qtbot):
    c = page.canvas
    draw(c, [(10, 64), (118, 64)])
    page.pick_colour(QColor(*PALETTE[0][1]))
    c.set_brush(40, COLOUR)
    draw(c, [(64, 20), (64, 108)])
    shot = c.grab().toImage()
    r = c.target_rect()
    k = r.width() / 128

    def at(x, y):
        return QColor(shot.pixel(QPoint(round(r.x() + x * k), round(r.y() + y * k)))).getRgb()[:3]

    assert max(at(64, 64)) < 60  # a line under the colour stays dark
    red = at(64, 35)
    assert red[0] > 150 and red[1] < 130 and red[2] < 130  # the colour shows where there is no line
    assert min(at(20, 20)) > 240  # white elsewhere


def test_mouse_strokes_and_the_size_slider_follow_the_layer(page, qtbot):
    c = page.canvas
    page.brush_slider.setValue(10)
    assert c.brushes[LINES] == 10
    page.set_tool(COLOUR)
    assert page.brush_slider.value() == round(c.brushes[COLOUR])
    page.brush_slider.setValue(30)
    assert c.brushes == {LINES: 10, COLOUR: 30}
    r = c.target_rect()
    a, b = QPoint(round(r.x() + r.width() * 0.2), round(r.center().y())), QPoint(round(r.x() + r.width() * 0.8), round(r.center().y()))
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(c, b)
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=b)
    assert (c.colour_frame() != 255).any() and c.frame().min() == 255
    page.set_tool(LINES)
    assert page.brush_slider.value() == 10


def test_the_colour_brush_is_off_without_a_colour_adapter_and_says_why(page):
    c = page.canvas
    page.set_tool(COLOUR)
    page.set_colour_available(False)
    assert c.active == LINES and not page.colour_button.isEnabled()
    assert NO_COLOUR_ADAPTER in page.colour_button.toolTip() and page.colour_note.isVisible()
    assert NO_COLOUR_ADAPTER in page.colour_note.text()
    assert not any(b.isVisible() for b in page.swatches)
    page.set_tool(COLOUR)  # the shortcut while off: nothing changes layer
    assert c.active == LINES
    page.set_colour_available(True)
    assert page.colour_button.isEnabled() and not page.colour_note.isVisible() and all(b.isVisible() for b in page.swatches)
    page.set_tool(COLOUR)
    assert c.active == COLOUR
