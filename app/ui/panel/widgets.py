"""Small widget builders the panel and the dialogs share."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QMouseEvent, QValidator
from PySide6.QtWidgets import (
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QInputDialog,
    QPushButton,
    QSlider,
    QToolButton,
    QWidget,
)

from app.ui.session.bindings import Binding, SessionBridge
from models.bounds import check_seed
from models.errors import UserError


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


class SeedBox(QAbstractSpinBox):
    """A number box for a seed: any whole number (a QSpinBox stops at 2**31 - 1), shown taken modulo 2**64 as
    the engine uses it, all 20 digits in view; the wheel and the arrow keys step by one, typing is taken on Enter or when focus leaves."""

    valueChanged = Signal(object)  # the new seed, a Python int (Qt's int signals are 32-bit)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._value = 0
        self.lineEdit().setText("0")
        self.setButtonSymbols(QAbstractSpinBox.ButtonSymbols.NoButtons)  # the room goes to the digits; wheel and keys step
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("9" * 20) + 14)  # 2**64 - 1 shown whole
        self.editingFinished.connect(self._typed)

    def value(self) -> int:
        return self._value

    def setValue(self, value: int) -> None:
        value = check_seed(value)
        if value != self._value or self.lineEdit().text() != str(value):
            changed = value != self._value
            self._value = value
            self.lineEdit().setText(str(value))
            if changed:
                self.valueChanged.emit(value)

    def _typed(self) -> None:
        try:
            self.setValue(check_seed(self.lineEdit().text()))
        except UserError:
            self.lineEdit().setText(str(self._value))

    def validate(self, text: str, pos: int) -> QValidator.State:
        t = text.strip()
        if t in ("", "-", "+"):
            return QValidator.State.Intermediate
        try:
            int(t)
        except ValueError:
            return QValidator.State.Invalid
        return QValidator.State.Acceptable

    def fixup(self, text: str) -> str:
        return str(self._value)

    def stepBy(self, steps: int) -> None:
        self.setValue(self._value + steps)
        self.selectAll()

    def stepEnabled(self) -> QAbstractSpinBox.StepEnabledFlag:
        return QAbstractSpinBox.StepEnabledFlag.StepUpEnabled | QAbstractSpinBox.StepEnabledFlag.StepDownEnabled


class ValueRow(QWidget):
    """One loaded adapter or LoRA in its list: a slider and a number (SliderNumber), a remove button, and their
    binding to this row's entry of a dict field of the session (LiveSettings.adapters by name, .loras by spec):
    the row writes the dict with its value in it, and shows the entry whoever writes it. The caller lays the
    widgets out (with its own label)."""

    moved = Signal()  # the user moved the value (the session has it)
    removeRequested = Signal(str)  # this row's key

    def __init__(self, bridge: SessionBridge, field: str, key: str, low: float, high: float, slider_tip: str,
                 number_tip: str, remove_tip: str):
        super().__init__()
        self.key, self.session = key, bridge.session
        self.pair = SliderNumber(low, high, self.moved.emit, slider_tip, number_tip)
        self.slider, self.number = self.pair.slider, self.pair.number
        self.remove = QToolButton(text="\u2715")
        self.remove.setToolTip(remove_tip)
        self.remove.clicked.connect(lambda: self.removeRequested.emit(self.key))
        # equal when the row shows the session's entry; a dict without this key leaves the row as it is
        Binding(bridge, field, self.slider, self.moved, lambda: {**self.session.get(field), key: self.value},
                lambda values: self.pair.show(values[key]) if key in values else None)

    @property
    def value(self) -> float:
        return self.pair.value
