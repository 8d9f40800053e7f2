"""The control panel (pytest-qt, offscreen): the mouse wheel scrolls the panel past its sliders, number boxes
and lists without changing them, and changes one only once it was clicked (it has the focus)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from app.live.session import Session
from app.ui.panel.panel import ControlPanel
from app.ui.panel.widgets import SliderNumber
from app.ui.session.bindings import SessionBridge


def wheel(widget, notches: int = -1) -> bool:
    """A wheel event (one notch down) over the widget's middle; whether the widget kept it (accepted). Qt offers
    the mouse's own wheel events that a widget leaves to its parents in turn, up to the panel's scroll area (a
    synthesized one it does not pass on, so the scrolling itself is checked by hand under Xvfb)."""
    pos = QPointF(widget.rect().center())
    event = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120 * notches),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def test_the_wheel_passes_sliders_numbers_and_lists_by_until_one_is_clicked(qtbot):
    panel = ControlPanel(SessionBridge(Session()))
    qtbot.addWidget(panel)
    panel.resize(380, 260)  # far shorter than its groups: it scrolls
    pair = SliderNumber(0.0, 2.0, lambda: None)  # an adapter's or a LoRA's strength row
    panel.widget().layout().insertWidget(0, pair.slider)
    panel.widget().layout().insertWidget(1, pair.number)
    pair.show(1.0)
    panel.show()
    panel.activateWindow()
    qtbot.waitUntil(lambda: panel.isActiveWindow() and pair.number.isVisible())
    value = lambda w: w.currentIndex() if hasattr(w, "currentIndex") else w.value()  # noqa: E731
    for w in (pair.slider, pair.number, panel.keep_strength, panel.seed, panel.size, panel.preset):
        before = value(w)
        assert not wheel(w), w  # left to the parents: the panel scrolls
        assert not wheel(w, 1), w
        assert value(w) == before, w
        assert w.focusPolicy() == Qt.FocusPolicy.StrongFocus  # the wheel does not hand it the focus
    qtbot.mouseClick(pair.number.lineEdit(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(pair.number.hasFocus)
    assert wheel(pair.number, 1)  # clicked (focused): the wheel is the value's again
    assert pair.number.value() > 1.0
    qtbot.mouseClick(panel.seed.lineEdit(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(panel.seed.hasFocus)
    before = panel.seed.value()
    assert wheel(panel.seed, 1) and panel.seed.value() == before + 1
