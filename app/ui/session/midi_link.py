"""The window's side of MIDI learn (app.live.midi): right-click a slider (strength, transition, Keep colours,
a LoRA's weight, an adapter's strength) > Learn MIDI, move a knob or fader, and it moves the session's
field over its range in models.bounds (the slider follows the session); the MIDI menu learns pads or keys
for New seed, Snapshot and Record. Bindings show in those menus, can be forgotten, and are remembered.

mido calls back from its own thread; the messages wait in a deque and one queued signal brings them to the
GUI thread, where a knob's burst of values is one move (the newest per control) before the slider moves.
"""

from __future__ import annotations

import collections
import logging

from PySide6.QtCore import QObject, QPoint, Qt, Signal, Slot
from PySide6.QtWidgets import QMenu, QWidget

from app.live.midi import TRIGGERS, MidiMap, is_trigger
from app.ui.session.bindings import SessionBridge
from app.ui.session.settings import Persisted
from models.bounds import BOUNDS

log = logging.getLogger(__name__)


# a slider target -> the session field it moves and that field's bound
FIELDS = {"strength": ("strength", "strength"), "transition": ("transition", "transition"),
          "keep_colours": ("keep_colours", "keep_colours")}


class MidiLink(QObject):
    """MIDI learn for one session: its bindings, the open input ports and the panel's context menus."""

    arrived = Signal()  # emitted from mido's thread; queued to the GUI thread
    said = Signal(str, int)  # a line for the status bar, and for how many milliseconds

    def __init__(self, bridge: SessionBridge, panel, saved: Persisted):
        super().__init__(panel)
        self.session, self.panel, self.saved = bridge.session, panel, saved
        self.map = MidiMap.from_json(saved.midi)
        self.ports: list = []  # open mido input ports
        self.why = "MIDI inputs are opened when the app starts"  # why there is no input ("" once one is open)
        self._queue: collections.deque = collections.deque(maxlen=10000)
        self.arrived.connect(self._drain, Qt.ConnectionType.QueuedConnection)
        self.sliders: dict[str, QWidget] = {"strength": panel.strength, "transition": panel.transition,
                                            "keep_colours": panel.keep_strength}
        for target, widget in self.sliders.items():
            self._add_menu(widget, target)
        bridge.changed.connect(self._session_changed)  # new LoRA and adapter rows get their menus
        self.menu = QMenu("&MIDI")  # the window puts it in its menu bar
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
        """One MIDI message (a mido.Message): learn, move a session field or press a button."""
        s, learning = self.session, self.map.learning
        for target, value in self.map.feed(msg):
            if target == "learned":
                b = self.map.get(learning)
                self.saved.midi = self.map.to_json()
                self.said.emit(f"MIDI: {b.describe()} now moves {self.label(b.target)}", 8000)
            elif target == "seed/new":
                s.roll_seed()  # any seed in 0..2**64-1, unless locked
            elif target == "snapshot":
                s.snapshot()
            elif target == "record":
                s.set(recording=not s.recording)
            else:
                self._move(target, value)

    def _move(self, target: str, fraction: float) -> None:
        """A knob's 0..1 over the field's range in models.bounds, written to the session."""
        s = self.session
        if target.startswith("lora/"):
            spec = s.lora_names().get(target[5:])
            if spec is not None:  # else a LoRA that is not loaded now
                s.set_lora_weight(spec, BOUNDS["lora_weight"].on_range(fraction))
        elif target.startswith("adapter/"):
            if any(a.name == target[8:] for a in s.adapters_loaded):
                s.set_adapter_strength(target[8:], BOUNDS["adapter_strength"].on_range(fraction))
        elif target in FIELDS:
            name, bound = FIELDS[target]
            s.set({name: BOUNDS[bound].on_range(fraction)})

    # ---- learn, show, forget --------------------------------------------------------------------------

    def learn(self, target: str) -> None:
        self.map.learn(target)
        kind = "a pad, key or button" if is_trigger(target) else "a knob or fader"
        self.said.emit(f"MIDI learn: move {kind} for {self.label(target)}...", 15000)

    def forget(self, target: str) -> None:
        if self.map.remove(target) is not None:
            self.saved.midi = self.map.to_json()
            self.said.emit(f"MIDI: {self.label(target)} is no longer mapped", 5000)

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
    def _session_changed(self, names: frozenset[str]) -> None:
        if "loras_loaded" in names:
            self._hook_loras()
        if "adapters_loaded" in names:
            self._hook_adapters()

    def _hook_loras(self, *_) -> None:
        for row in self.panel.styles.rows.values():
            if not row.slider.property("midi"):
                row.slider.setProperty("midi", True)
                self._add_menu(row.slider, f"lora/{row.label.text()}")

    def _hook_adapters(self, *_) -> None:
        for name, row in self.panel.adapters.rows.items():
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
