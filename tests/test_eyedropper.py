"""The eyedropper (pytest-qt, offscreen): Ctrl+click on the canvas, the output or the camera feed takes the colour
under the pointer for the colour brush, draws nothing, and shows the colour on the picker button; over bare paper
or off the picture it changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor

from app.ui.canvas.canvas import COLOUR, LINES, SketchCanvas
from app.ui.canvas.canvas_tools import PALETTE, CanvasPage
from app.ui.outputs.qimage import from_rgb
from app.ui.outputs.views import ImageView

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def page(qtbot):
    p = CanvasPage(SketchCanvas(128))
    qtbot.addWidget(p)
    p.resize(600, 500)
    p.show()
    return p


def at(view, x: float, y: float, size: int) -> QPoint:
    """The widget point over picture pixel (x, y) of a size x size picture."""
    r = view.target_rect()
    return QPoint(round(r.x() + (x + 0.5) * r.width() / size), round(r.y() + (y + 0.5) * r.height() / size))


def test_ctrl_click_on_the_canvas_takes_a_painted_colour_and_draws_nothing(page, qtbot):
    c = page.canvas
    page.pick_colour(QColor(30, 160, 90))  # not a palette colour
    c.set_brush(30, COLOUR)
    c.stroke_to(c.to_image(at(c, 40, 40, 128).toPointF()), start=True)
    c.end_stroke()
    page.pick_colour(QColor(*PALETTE[0][1]))
    page.set_tool(LINES)
    lines, colour, undo = c.frame(), c.colour_frame().copy(), [len(s) for s in c.undo_stacks.values()]
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, CTRL, at(c, 40, 40, 128))
    assert c.colour.getRgb()[:3] == (30, 160, 90) and c.active == COLOUR  # the colour brush, with that colour
    assert np.array_equal(c.frame(), lines) and np.array_equal(c.colour_frame(), colour)  # no stroke, no dot
    assert [len(s) for s in c.undo_stacks.values()] == undo
    assert "rgb(30, 160, 90)" in page.picker.styleSheet()  # the picker shows a colour of one's own
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, CTRL, at(c, 110, 110, 128))  # bare paper: nothing to take
    assert c.colour.getRgb()[:3] == (30, 160, 90)
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=at(c, 110, 110, 128))  # without Ctrl a click paints
    assert not np.array_equal(c.colour_frame(), colour)


def test_ctrl_click_takes_the_trace_pictures_colour_where_nothing_is_painted(page, qtbot):
    c = page.canvas
    reference = np.zeros((128, 128, 3), np.uint8)
    reference[:, :64] = (200, 120, 40)
    reference[:, 64:] = (50, 60, 170)
    c.set_trace(reference)
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, CTRL, at(c, 100, 64, 128))
    assert c.colour.getRgb()[:3] == (50, 60, 170) and c.frame().min() == 255


def test_ctrl_click_on_a_picture_view_sends_its_colour_and_a_plain_click_does_not(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(400, 300)  # letterboxed: bars left and right of the square picture
    view.show()
    picture = np.full((64, 64, 3), 255, np.uint8)
    picture[:, 32:] = (240, 200, 20)
    view.set_image(from_rgb(picture))
    got: list[QColor] = []
    view.colourPicked.connect(got.append)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=at(view, 50, 10, 64))
    assert got == []
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, CTRL, at(view, 50, 10, 64))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, CTRL, QPoint(5, 150))  # on the bar, off the picture
    assert [c.getRgb()[:3] for c in got] == [(240, 200, 20)]


def test_in_the_window_ctrl_click_on_the_output_gives_the_colour_brush_the_pictures_colour(qtbot, tmp_path):
    from tests.test_window_adapters import Loader, open_window, settle

    w = open_window(qtbot, tmp_path / "s.ini", Loader())
    settle(qtbot, w, lambda: w.output.image is not None and w.canvas_page.colour_button.isEnabled())
    w.set_paused(True)  # the picture holds still while it is sampled
    image = w.output.image.copy()
    w.output.image = image
    size = image.width()
    x, y = size // 3, size // 2
    point = at(w.output, x, y, size)
    want = image.pixelColor(x, y).getRgb()[:3]
    assert want != w.canvas.colour.getRgb()[:3]  # so taking it is a change
    qtbot.mouseClick(w.output, Qt.MouseButton.LeftButton, CTRL, point)
    assert w.canvas.colour.getRgb()[:3] == want and w.canvas.active == COLOUR
    w.close()
