"""The Model group's adapter list: the control adapters the engine holds, each with a live strength (0..2) and
a remove button, and "Add adapter..." (a folder, a hub id, or the demo's adapters). Bound to the session
(app.live.session): the rows are its adapters_loaded, their strengths LiveSettings.adapters; the window
sends the requests to the worker (app/ui/worker.py) and writes back what the engine holds.

A strength move goes to the engine at once (engine.set_adapter_strength in the worker: a buffer fill, no
reload). The list is remembered as {spec: strength} (Persisted.adapters) and given back to the next load.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.live.session import LoadedAdapter
from app.ui.panel.widgets import ValueRow, ask_spec
from app.ui.session.bindings import SessionBridge
from models.bounds import BOUNDS
from models.options import COLOUR_HINTS, adapter_arg

__all__ = ["COLOUR_HINTS", "LoadedAdapter", "AdapterList", "adapter_args", "loaded_adapters", "spec_args", "use_adapters"]


def spec_args(strengths: dict[str, float]) -> tuple[str, ...]:
    """{spec: strength} -> ("SPEC:STRENGTH", ...) as --controlnet takes them (a strength of 1 is left out)."""
    return tuple(adapter_arg(spec, strength) for spec, strength in strengths.items())


def loaded_adapters(engine: Any) -> list[LoadedAdapter]:
    """The adapters an engine holds, in order, with their strength and condition."""
    strengths, specs = engine.adapter_strengths, engine.adapter_specs
    return [LoadedAdapter(name=a.name, spec=specs[a.name], strength=strengths[a.name], condition=a.info.condition)
            for a in engine.adapters]


def adapter_args(engine: Any) -> tuple[str, ...]:
    """The engine's adapters as SPEC[:STRENGTH] each (what loading them again takes)."""
    return spec_args({a.spec: a.strength for a in loaded_adapters(engine)})


def use_adapters(engine: Any, args: tuple[str, ...], progress=None) -> None:
    """Make the engine hold exactly these adapters (SPEC[:STRENGTH]), in order: nothing reloads when the specs
    are those held (only the strengths change), else every adapter is loaded anew."""
    from models.loading import expand_adapter_spec
    from models.options import parse_adapter_arg

    wanted = [(s, strength) for spec, strength in map(parse_adapter_arg, args) for s in expand_adapter_spec(spec)]
    held = list(engine.adapter_specs.items())
    if [s for s, _ in wanted] != [s for _, s in held]:
        for name, _ in held:
            engine.remove_adapter(name)
        for spec, strength in wanted:
            engine.add_adapter(spec, strength, progress)
        return
    for (name, _), (_, strength) in zip(held, wanted, strict=True):
        engine.set_adapter_strength(name, strength)



class AdapterRow(ValueRow):
    """One loaded adapter: name (and what it follows) on its own line, slider, number, remove."""

    def __init__(self, bridge: SessionBridge, a: LoadedAdapter):
        b = BOUNDS["adapter_strength"]
        super().__init__(bridge, "adapters", a.name, b.low, b.high,
                         f"How strongly {a.name} steers the picture: 1 as trained, 0 off (double-click: 1)",
                         f"{a.name}'s strength (0..2)", f"Remove this adapter ({a.spec})")
        self.name, self.spec, self.condition = a.name, a.spec, a.condition
        col = QVBoxLayout(self)  # the name on its own line: adapter names are long (a folder, a hub id)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(0)
        self.label = QLabel(f"{a.name} <span style='color: gray'>· {a.condition}</span>")
        self.label.setToolTip(f"{a.spec}: follows {a.condition}")
        col.addWidget(self.label)
        lay = QHBoxLayout()
        col.addLayout(lay)
        for w in (self.slider, self.number, self.remove):
            lay.addWidget(w)
        lay.setStretch(0, 1)
        self.set_strength(a.strength)

    @property
    def strength(self) -> float:
        return self.value

    def set_strength(self, strength: float) -> None:
        """Show a strength without sending it (the session's, when it changes, is shown by the binding)."""
        self.pair.show(strength)


class AdapterList(QWidget):
    """The adapter rows and "Add adapter..." (inside the panel's Model group)."""

    addRequested = Signal(str)  # load this adapter spec (SPEC[:STRENGTH]) into the engine
    removeRequested = Signal(str)  # take the adapter of this name out
    listChanged = Signal()  # the engine's adapters changed (rows added or removed)

    def __init__(self, bridge: SessionBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge, self.session = bridge, bridge.session
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        self.rows_box = QVBoxLayout()
        col.addLayout(self.rows_box)
        self.empty = QLabel("No adapter: the prompt alone makes the picture. Add one to follow a sketch or a camera.")
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: gray; font-size: 8.5pt")
        col.addWidget(self.empty)
        self.remote_note = QLabel()  # while on a remote engine: why adding and removing are not offered
        self.remote_note.setWordWrap(True)
        self.remote_note.setStyleSheet("color: gray; font-size: 8.5pt")
        self.remote_note.hide()
        col.addWidget(self.remote_note)
        self.remote = False  # the rows are a remote engine's: their strengths go to it, nothing is added or removed
        self.add_button = QPushButton("Add adapter...")
        self.add_button.setToolTip("Load a control adapter (ControlNet) next to those loaded: a folder, a hub id or the demo's")
        self.rows: dict[str, AdapterRow] = {}  # name -> row, in the engine's order
        self.recent: list[str] = []  # adapters used before, newest first (Persisted.recent_adapters)
        self.menu = QMenu(self.add_button)
        self.menu.aboutToShow.connect(self._fill_menu)
        self._fill_menu()
        self.add_button.setMenu(self.menu)
        col.addWidget(self.add_button)
        bridge.changed.connect(lambda names: self._rows() if "adapters_loaded" in names else None)

    def _fill_menu(self) -> None:
        """Folder, hub id, the demo's, and the recent adapters that are not loaded now (built as it opens)."""
        menu = self.menu
        menu.clear()
        menu.addAction("Folder...", self.pick_folder)
        menu.addAction("Hub id or path...", self._type_spec)
        menu.addAction("Demo adapters (sketch and colour)", lambda: self.request("demo"))
        loaded = {row.spec for row in self.rows.values()}
        recent = [spec for spec in self.recent if spec not in loaded]
        if recent:
            menu.addSection("Recent")
            for spec in recent:
                menu.addAction(spec, lambda spec=spec: self.request(spec))

    def set_recent(self, recent: str) -> None:
        """The recent adapters, newest first ("\n"-separated, as Persisted keeps them)."""
        self.recent = [x for x in recent.split("\n") if x]

    def set_loaded(self, loaded: list[LoadedAdapter]) -> None:
        """What the engine holds now, into the session: a kept adapter keeps its live strength (a move may not
        have reached the engine yet), a new one comes at the engine's; the rows follow the session."""
        live = self.session.live.adapters
        self.session.set(adapters_loaded=tuple(loaded), adapters={a.name: live.get(a.name, a.strength) for a in loaded})

    def _rows(self) -> None:
        """One row per adapter of the session's adapters_loaded, in the engine's order."""
        loaded = self.session.adapters_loaded
        names = [a.name for a in loaded]
        for name in [n for n in self.rows if n not in names]:
            self.rows.pop(name).deleteLater()
        for a in loaded:
            row = self.rows.get(a.name)
            if row is None or row.spec != a.spec:
                if row is not None:
                    row.deleteLater()
                row = AdapterRow(self.bridge, a)
                row.removeRequested.connect(self._remove)
                row.remove.setEnabled(not self.remote)
                self.rows[a.name] = row
                row.set_strength(self.session.live.adapters.get(a.name, a.strength))
            self.rows_box.addWidget(row)  # (again) in the engine's order
        ordered = {n: self.rows[n] for n in names}
        self.rows.clear()  # in place: a caller holding the dict sees the engine's order
        self.rows.update(ordered)
        self.empty.setVisible(not self.rows)
        self.listChanged.emit()

    def strengths(self) -> dict[str, float]:
        """{spec: strength} of every adapter the engine holds, in order, at its live strength (what the window
        remembers and a reload is given)."""
        live = self.session.live.adapters
        return {a.spec: live.get(a.name, a.strength) for a in self.session.adapters_loaded}

    def conditions(self) -> list[str]:
        return [a.condition for a in self.session.adapters_loaded]

    def has_colour(self) -> bool:
        """A colour-hint adapter is loaded."""
        return self.session.has_colour()

    def request(self, spec: str) -> None:
        """Ask for an adapter (the worker loads it; a row appears once it has)."""
        spec = spec.strip()
        if spec:
            self.addRequested.emit(spec)

    def _remove(self, name: str) -> None:
        row = self.rows.pop(name, None)
        if row is not None:
            row.deleteLater()
        self.empty.setVisible(not self.rows)
        self.session.set(adapters_loaded=tuple(a for a in self.session.adapters_loaded if a.name != name),
                         adapters={k: v for k, v in self.session.live.adapters.items() if k != name})
        self.removeRequested.emit(name)

    def set_busy(self, busy: bool) -> None:
        self.add_button.setEnabled(not busy and not self.remote)

    def set_remote(self, note: str) -> None:
        """On a remote engine (note: one line saying why adding and removing are not offered), or local ("")."""
        self.remote = bool(note)
        self.empty.setText("The engine server has no adapter: the prompt alone makes the picture." if self.remote else
                           "No adapter: the prompt alone makes the picture. Add one to follow a sketch or a camera.")
        self.remote_note.setText(note)
        self.remote_note.setVisible(self.remote)
        self.add_button.setEnabled(not self.remote)
        for row in self.rows.values():
            row.remove.setEnabled(not self.remote)

    def pick_folder(self) -> None:
        self.request(QFileDialog.getExistingDirectory(self, "Choose an adapter folder (with config.json)"))

    def _type_spec(self) -> None:
        self.request(ask_spec(self, "Add adapter", "Hugging Face id, folder, demo-sketch or demo-colour (:STRENGTH optional):", "IDKiro/sdxs-512-dreamshaper-sketch"))
