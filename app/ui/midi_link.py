"""The window's side of MIDI learn (app.live.midi): right-click a slider (strength, transition, Keep colours,
a LoRA's weight, an adapter's strength) > Learn MIDI, move a knob or fader, and it moves the slider; the MIDI menu learns pads or keys for
New seed, Snapshot and Record. Bindings show in those menus, can be forgotten, and are remembered.

mido calls back from its own thread; the messages wait in a deque and one queued signal brings them to the
GUI thread, where a knob's burst of values is one move (the newest per control) before the slider moves.
"""

from __future__ import annotations

import collections
import logging

from PySide6.QtCore import QObject, QPoint, Qt, Signal, Slot
from PySide6.QtWidgets import QMenu, QWidget

from app.live.midi import TRIGGERS, MidiMap, is_trigger, on_range

log = logging.getLogger(__name__)


class MidiLink(QObject):
    """MIDI learn for one main window: its bindings, the open input ports and the context menus."""

    arrived = Signal()  # emitted from mido's thread; queued to the GUI thread

    def __init__(self, window):
        super().__init__(window)
        self.w = window
        self.map = MidiMap.from_json(window.saved.midi)
        self.ports: list = []  # open mido input ports
        self.why = "MIDI inputs are opened when the app starts"  # why there is no input ("" once one is open)
        self._queue: collections.deque = collections.deque(maxlen=10000)
        self.arrived.connect(self._drain, Qt.ConnectionType.QueuedConnection)
        panel = window.panel
        self.sliders: dict[str, QWidget] = {"strength": panel.strength, "transition": panel.transition,
                                            "keep_colours": panel.keep_strength}
        for target, widget in self.sliders.items():
            self._add_menu(widget, target)
        window.pipeline.lorasLoaded.connect(self._hook_loras)
        window.pipeline.adaptersLoaded.connect(self._hook_adapters)  # after the list made its rows
        self.menu = window.menuBar().addMenu("&MIDI")
        self.menu.aboutToShow.connect(self._fill_menu)

    # ---- ports ----------------------------------------------------------------------------------------

    def open(self, port: str | None = None) -> None:
        """Listen to the input ports (--midi PORT: those whose name contains it; else all)."""
        from app.live.midi import input_names, open_input

        names, self.why = input_names(port)
        for name in names:
            try:
                self.ports.append(open_input(name, self._incoming))
            except Exception as e:
                self.why = f"could not open MIDI input {name!r}: {e}"
                log.warning("%s", self.why)
        if self.ports:
            self.why = ""
            log.info("MIDI: listening to %s", ", ".join(p.name for p in self.ports))
        elif port:  # asked for with --midi: say why not; otherwise the Learn MIDI entries say it when looked at
            log.warning("MIDI: %s", self.why)
        else:
            log.debug("MIDI: %s", self.why)

    def close(self) -> None:
        for p in self.ports:
            p.close()
        self.ports = []

    def _incoming(self, msg) -> None:  # mido's thread
        first = not self._queue
        self._queue.append(msg)
        if first:
            self.arrived.emit()

    # ---- messages -------------------------------------------------------------------------------------

    @Slot()
    def _drain(self) -> None:
        msgs = []
        while self._queue:
            msgs.append(self._queue.popleft())
        newest = {}  # a knob's burst is one move: the newest value per control (order of first arrival kept)
        for i, m in enumerate(msgs):
            key = ("cc", m.channel, m.control) if m.type == "control_change" and self.map.learning is None else i
            newest[key] = m
        for m in newest.values():
            self.feed(m)

    def feed(self, msg) -> None:
        """One MIDI message (a mido.Message): learn, move a slider or press a button."""
        w, learning = self.w, self.map.learning
        for target, value in self.map.feed(msg):
            if target == "learned":
                b = self.map.get(learning)
                w.saved.midi = self.map.to_json()
                w.statusBar().showMessage(f"MIDI: {b.describe()} now moves {self.label(b.target)}", 8000)
            elif target == "seed/new":
                w.panel.roll_seed()
            elif target == "snapshot":
                w.actions.act_snapshot.trigger()
            elif target == "record":
                w.actions.act_record.toggle()
            else:
                self._move(target, value)

    def _move(self, target: str, fraction: float) -> None:
        widget = self._widget(target)
        if widget is None:
            return  # a LoRA that is not loaded now
        value = on_range(fraction, widget.minimum(), widget.maximum())
        widget.setValue(round(value) if isinstance(widget.value(), int) else round(value, 2))

    def _widget(self, target: str) -> QWidget | None:
        if target.startswith("lora/"):
            rows = {row.label.text(): row for row in self.w.panel.styles.rows.values()}
            row = rows.get(target[5:])
            return row.slider if row is not None else None
        if target.startswith("adapter/"):
            row = self.w.panel.adapters.rows.get(target[8:])
            return row.slider if row is not None else None
        return self.sliders.get(target)

    # ---- learn, show, forget --------------------------------------------------------------------------

    def learn(self, target: str) -> None:
        self.map.learn(target)
        kind = "a pad, key or button" if is_trigger(target) else "a knob or fader"
        self.w.statusBar().showMessage(f"MIDI learn: move {kind} for {self.label(target)}...", 15000)

    def forget(self, target: str) -> None:
        if self.map.remove(target) is not None:
            self.w.saved.midi = self.map.to_json()
            self.w.statusBar().showMessage(f"MIDI: {self.label(target)} is no longer mapped", 5000)

    @staticmethod
    def label(target: str) -> str:
        if target.startswith("lora/"):
            return f"LoRA {target[5:]}"
        if target.startswith("adapter/"):
            return f"adapter {target[8:]}"
        if target == "keep_colours":
            return "Keep colours"
        return TRIGGERS.get(target) or target.capitalize()

    def entries(self, menu: QMenu, target: str) -> None:
        """The MIDI lines of a context menu: Learn (or why not), the binding, Forget."""
        if self.map.learning == target:
            menu.addAction("Cancel MIDI learn", self.map.cancel)
        else:
            learn = menu.addAction(f"Learn MIDI for {self.label(target)}" if not self.why else f"Learn MIDI ({self.why})",
                                   lambda: self.learn(target))
            learn.setEnabled(not self.why)
        b = self.map.get(target)
        if b is not None:
            menu.addAction(f"Mapped to {b.describe()}").setEnabled(False)
            menu.addAction("Forget MIDI mapping", lambda: self.forget(target))

    def _add_menu(self, widget: QWidget, target: str) -> None:
        widget.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        widget.customContextMenuRequested.connect(lambda pos, wd=widget, t=target: self._context(wd, t, pos))

    def _context(self, widget: QWidget, target: str, pos: QPoint) -> None:
        menu = QMenu(widget)
        self.entries(menu, target)
        menu.popup(widget.mapToGlobal(pos))

    @Slot(object)
    def _hook_loras(self, loaded: list) -> None:
        for row in self.w.panel.styles.rows.values():
            if not row.slider.property("midi"):
                row.slider.setProperty("midi", True)
                self._add_menu(row.slider, f"lora/{row.label.text()}")

    @Slot(object)
    def _hook_adapters(self, loaded: list) -> None:
        for name, row in self.w.panel.adapters.rows.items():
            if not row.slider.property("midi"):
                row.slider.setProperty("midi", True)
                self._add_menu(row.slider, f"adapter/{name}")

    def _fill_menu(self) -> None:
        m = self.menu
        m.clear()
        listening = ", ".join(p.name for p in self.ports)
        m.addAction(f"Listening to {listening}" if listening else self.why).setEnabled(False)
        m.addSeparator()
        for target in TRIGGERS:
            sub = m.addMenu(self.label(target))
            self.entries(sub, target)
        m.addSeparator()
        m.addAction("Sliders: right-click one > Learn MIDI").setEnabled(False)
