"""Widgets bound to the session (app.live.session) both ways: a widget the user moves writes its session
field; a field written by anyone (OSC, MIDI, a schedule, restored settings, another widget) moves the widget.

The session tells its observers on the writer's thread; SessionBridge turns that into one Qt signal on the
GUI thread (direct when the writer is the GUI thread, queued from OSC's and MIDI's threads), so a binding
only ever touches its widget on the GUI thread. A binding that moves its widget does not write back.
Bounded fields take the widget's range from models.bounds (bound_range).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractButton, QComboBox, QDoubleSpinBox, QLineEdit, QSlider, QSpinBox, QWidget

from app.live.session import BOUNDED, Session
from models.bounds import BOUNDS, Bound
from models.errors import UserError

log = logging.getLogger(__name__)


class SessionBridge(QObject):
    """The session's changes as a signal on the GUI thread, and the bindings' pending (debounced) writes."""

    changed = Signal(object)  # frozenset of the names that changed, on the GUI thread
    _relay = Signal(object)

    def __init__(self, session: Session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.pending: list[QTimer] = []  # debounced writes not made yet (flush() makes them now)
        self._relay.connect(self._deliver, Qt.ConnectionType.AutoConnection)  # queued from another thread
        self._unsubscribe = session.subscribe(self._from_session)
        self.destroyed.connect(self._unsubscribe)  # the session outlives the window: it must not call a deleted one

    def _from_session(self, names: frozenset[str]) -> None:  # any thread
        if shiboken6.isValid(self):
            self._relay.emit(names)

    @Slot(object)
    def _deliver(self, names: frozenset[str]) -> None:
        self.changed.emit(names)

    def flush(self) -> None:
        """Make every debounced write now (before the settings are saved or a load starts)."""
        self.pending = [t for t in self.pending if shiboken6.isValid(t)]  # a row's binding goes with its row
        for timer in list(self.pending):
            if timer.isActive():
                timer.stop()
                timer.timeout.emit()

    def close(self) -> None:
        self._unsubscribe()


def bound_range(widget: QWidget, b: Bound) -> None:
    """A widget's range from a bound of models.bounds: a slider in steps of 10**-decimals (whole: 1), a spin box
    with the bound's decimals and unit."""
    low, high = b.low, b.high
    if isinstance(widget, QSlider):
        widget.setRange(round(low * b.scale), round(high * b.scale))
    elif isinstance(widget, QDoubleSpinBox):
        widget.setDecimals(b.decimals)
        widget.setRange(low, high)
        widget.setSuffix(f" {b.unit}" if b.unit else "")
    elif isinstance(widget, QSpinBox):
        widget.setRange(int(low), int(high))


class Binding(QObject):
    """One widget and one session field: get() reads the widget as a field value, put(value) shows a value."""

    def __init__(self, bridge: SessionBridge, name: str, widget: QObject, signal: Any, get: Callable[[], Any],
                 put: Callable[[Any], None], write: Callable[[Any], Any] | None = None, debounce_ms: int = 0):
        super().__init__(widget)
        self.bridge, self.name, self.get, self.put = bridge, name, get, put
        self.write = write or (lambda v: bridge.session.set({name: v}))
        self.showing = False  # put() is moving the widget: its signal is no user's move
        self.timer: QTimer | None = None
        if debounce_ms:
            self.timer = QTimer(self, singleShot=True, interval=debounce_ms)
            self.timer.timeout.connect(self.commit)
            bridge.pending.append(self.timer)
        signal.connect(self._moved)
        bridge.changed.connect(self._changed)
        self.show()

    @Slot()
    def _moved(self, *_: Any) -> None:
        if self.showing:
            return
        if self.timer is not None:
            self.timer.start()
        else:
            self.commit()

    @Slot()
    def commit(self) -> None:
        try:
            self.write(self.get())
        except UserError as e:  # a value the field does not take: one line, and the widget shows the field again
            log.warning("%s", e)
            self.show()

    @Slot(object)
    def _changed(self, names: frozenset[str]) -> None:
        if self.name in names and not (self.timer is not None and self.timer.isActive()):
            self.show()

    def show(self) -> None:
        value = self.bridge.session.get(self.name)
        if self.get() == value:
            return
        self.showing = True
        try:
            self.put(value)
        finally:
            self.showing = False


def bind_number(bridge: SessionBridge, name: str, widget: QSlider | QSpinBox | QDoubleSpinBox,
                scale: float | None = None, debounce_ms: int = 0) -> Binding:
    """A slider or number box on a number field; a bounded field's range (and scale) come from models.bounds."""
    b = BOUNDS[BOUNDED[name]] if name in BOUNDED else None
    if b is not None:
        bound_range(widget, b)
    k = scale if scale is not None else (b.scale if b is not None and isinstance(widget, QSlider) else 1)
    whole = k == 1 and (isinstance(widget, (QSlider, QSpinBox)) or (b is not None and b.whole))  # exact: a seed is 64-bit

    def get() -> Any:
        v = widget.value()
        return v if whole else round(v / k, 6)

    return Binding(bridge, name, widget, widget.valueChanged, get, lambda v: widget.setValue(round(v * k) if not
                   isinstance(widget, QDoubleSpinBox) else v), debounce_ms=debounce_ms)


def bind_check(bridge: SessionBridge, name: str, box: QAbstractButton | QAction) -> Binding:
    """A check box (or a checkable menu action) on a true/false field."""
    return Binding(bridge, name, box, box.toggled, box.isChecked, box.setChecked)


def bind_text(bridge: SessionBridge, name: str, edit: QLineEdit, debounce_ms: int = 0) -> Binding:
    """A line edit on a text field; typing is written debounce_ms after the last key (0: at once)."""
    return Binding(bridge, name, edit, edit.textChanged, edit.text, edit.setText, debounce_ms=debounce_ms)


def bind_request(bridge: SessionBridge, field: str, combo: QComboBox) -> Binding:
    """A picker of one field of the session's model request (app.live.session.ModelRequest: model, device,
    dtype, backend): its text is that field; the rest of the request stays."""
    session = bridge.session
    return Binding(bridge, "request", combo, combo.currentTextChanged,
                   lambda: replace(session.request, **{field: combo.currentText().strip()}),
                   lambda request: combo.setCurrentText(getattr(request, field)))


def bind_data(bridge: SessionBridge, name: str, combo: QComboBox) -> Binding:
    """A combo box whose items carry the field's values as their data (the condition mode)."""
    return Binding(bridge, name, combo, combo.currentIndexChanged, combo.currentData,
                   lambda v: combo.setCurrentIndex(max(0, combo.findData(v))))
