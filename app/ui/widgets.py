"""Small widget builders the panel and the dialogs share."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QInputDialog,
    QPushButton,
    QSlider,
    QWidget,
)


def row(*widgets: QWidget, stretch: int | None = None) -> QWidget:
    """Widgets side by side without margins (stretch: the index of the one that takes the spare width)."""
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    for i, x in enumerate(widgets):
        lay.addWidget(x, 1 if i == stretch else 0)
    return w


def button(text: str, tip: str, slot) -> QPushButton:
    b = QPushButton(text)
    b.setToolTip(tip)
    b.clicked.connect(slot)
    return b


def ask_spec(parent: QWidget, title: str, label: str, example: str) -> str:
    """Ask for a hub id, folder or file in a dialog wide enough for one; "" when cancelled."""
    ask = QInputDialog(parent)
    ask.setWindowTitle(title)
    ask.setLabelText(label)
    ask.setTextValue(example)
    ask.resize(480, ask.sizeHint().height())
    return ask.textValue() if ask.exec() else ""


class _WheelGuard(QObject):
    """The wheel over its widget, while that widget has no focus, goes on to the scroll area around it."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Wheel and not obj.hasFocus():
            event.ignore()  # ignored and filtered: Qt offers it to the parents, and the panel scrolls
            return True
        return False


def guard_wheel(*widgets: QWidget) -> None:
    """Sliders, number boxes and lists in a scrolling panel stop taking the wheel until clicked (or reached by
    Tab): scrolling the panel past a strength slider must not move it and change the picture."""
    for w in widgets:
        if isinstance(w, (QAbstractSlider, QAbstractSpinBox, QComboBox)) and w.findChild(_WheelGuard, options=Qt.FindChildOption.FindDirectChildrenOnly) is None:
            w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel does not give it focus either
            w.installEventFilter(_WheelGuard(w))


STEPS = 100  # a value slider's steps per unit: hundredths


class UnitSlider(QSlider):
    """A horizontal slider in hundredths of a value between low and high; a double click puts it back at 1."""

    def __init__(self, low: float, high: float, tip: str = ""):
        super().__init__(Qt.Orientation.Horizontal)
        self.setRange(round(low * STEPS), round(high * STEPS))
        self.setValue(STEPS)
        self.setToolTip(tip)

    def mouseDoubleClickEvent(self, e: QMouseEvent) -> None:
        self.setValue(STEPS)


class SliderNumber:
    """A UnitSlider and a number box that show one value (a LoRA's weight, an adapter's strength): moving
    either moves the other, then changed() is called; show() sets both without calling it."""

    def __init__(self, low: float, high: float, changed: Callable[[], None], slider_tip: str = "", number_tip: str = ""):
        self.slider = UnitSlider(low, high, slider_tip)
        self.number = QDoubleSpinBox()
        self.number.setRange(low, high)
        self.number.setDecimals(2)
        self.number.setSingleStep(0.05)
        self.number.setToolTip(number_tip)
        guard_wheel(self.slider, self.number)  # these rows live in the scrolling panel
        self.slider.valueChanged.connect(lambda v: self._follow(self.number, v / STEPS, changed))
        self.number.valueChanged.connect(lambda v: self._follow(self.slider, round(v * STEPS), changed))

    @property
    def value(self) -> float:
        return round(self.number.value(), 2)

    def show(self, value: float) -> None:
        for w, v in ((self.slider, round(value * STEPS)), (self.number, value)):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)

    @staticmethod
    def _follow(other: QWidget, value, changed: Callable[[], None]) -> None:
        other.blockSignals(True)
        other.setValue(value)
        other.blockSignals(False)
        changed()
